// The scheduler collects the main thread's garbage once a copy is unloaded (unregistered or evicted),
// with V8's gc extension when the process has it (the supervisor starts the server with --expose-gc).
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { startServer, tempDir } from '../fixtures/server';

const global = globalThis as { gc?: unknown };

test('unregistering a loaded model runs an incremental major collection', async () => {
  const calls: unknown[] = [];
  const saved = global.gc;
  global.gc = (options: unknown) => calls.push(options);
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'adder'), addModel([1]));
  const s = await startServer({ 'model-store': store, workers: '1' });
  try {
    expect((await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST' })).status).toBe(200);
    const r = await fetch(`${s.inference}/predictions/adder`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[[1]]}' });
    expect(r.status).toBe(200);
    expect(calls).toEqual([]);
    expect((await fetch(`${s.management}/models/adder`, { method: 'DELETE' })).status).toBe(200);
    for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual([{ type: 'major', execution: 'async' }]);
  } finally {
    await s.close();
    global.gc = saved;
  }
});
