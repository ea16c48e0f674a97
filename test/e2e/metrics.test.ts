// GET /metrics under load: the counters move and the histograms fill.
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { postJson, startServer, TestServer } from '../fixtures/server';

/** Reads one sample of a metric from the Prometheus text format. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[4]);
  }
  return undefined;
}

describe('metrics', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ workers: '2' });
    writeModelFolder(path.join(s.store, 'adder'), addModel([1]));
    writeModelFolder(path.join(s.store, 'dies'), addModel([1]), { handler: 'handler.js' }, {
      'handler.js': 'module.exports = { postprocess(o) { if (o.y.data[0] === 1000) process.exit(3); return { y: o.y.data[0] }; } };',
    });
    for (const url of ['adder', 'dies']) await fetch(`${s.management}/models?url=${url}`, { method: 'POST' });
  });
  afterAll(async () => s.close());

  const scrape = async () => (await fetch(`${s.management}/metrics`)).text();

  test('requests, stage histograms, loads, memory and queue depth', async () => {
    const before = await scrape();
    expect(sample(before, 'quiver_model_loads_total', { model: 'adder', outcome: 'success' })).toBe(1);
    expect(sample(before, 'quiver_models_loaded')).toBe(2);
    expect(sample(before, 'quiver_memory_in_use_bytes', { device: 'host' })).toBeGreaterThan(0);

    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => postJson(`${s.inference}/predictions/adder`, { x: [[i]] })));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    await postJson(`${s.inference}/predictions/ghost`, { x: [[1]] });
    const after = await scrape();
    expect(sample(after, 'quiver_requests_total', { api: 'inference', model: 'adder', status: '200' })).toBe(30);
    expect(sample(after, 'quiver_requests_total', { api: 'inference', model: '', status: '404' })).toBe(1);
    for (const stage of ['queue', 'preprocess', 'inference', 'postprocess']) {
      expect(sample(after, 'quiver_inference_stage_duration_seconds_count', { model: 'adder', stage })).toBe(30);
    }
    expect(sample(after, 'quiver_request_duration_seconds_count', { api: 'inference', model: 'adder' })).toBe(30);
    expect(sample(after, 'quiver_batch_size_count', { model: 'adder' })).toBe(30);
    expect(sample(after, 'quiver_queue_depth', { model: 'adder' })).toBe(0);
    expect(sample(after, 'quiver_model_evictions_total')).toBeUndefined(); // no evictions happened: no sample yet
    expect(after).toMatch(/^# TYPE quiver_model_evictions_total counter$/m);
    expect(sample(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('a worker that dies is counted as a restart', async () => {
    const r = await postJson(`${s.inference}/predictions/dies`, { x: [[999]] });
    expect(r.status).toBe(500);
    // The replacement thread starts asynchronously.
    let restarts: number | undefined;
    for (let i = 0; i < 50 && !restarts; i++) {
      restarts = sample(await scrape(), 'quiver_worker_restarts_total');
      if (!restarts) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(restarts).toBe(1);
  });

  test('only on the management port in MMS mode', async () => {
    expect((await fetch(`${s.inference}/metrics`)).status).toBe(404);
  });
});
