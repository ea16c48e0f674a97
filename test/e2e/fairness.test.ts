// Across models, a worker thread is shared fairly: a small model never queues behind a big one's
// backlog. Each model gets a thread of its own while the pool may grow; where threads are shared,
// per-model lanes take turns by thread time used.
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

const SLOW = { 'X-Amzn-SageMaker-Custom-Attributes': 'sleep=250' };

async function serve(flags: Record<string, string>): Promise<TestServer> {
  const s = await startServer({ workers: '1', ...flags });
  writeFaultyModel(s.store, 'slow', { responseTimeoutS: 30 });
  writeModelFolder(path.join(s.store, 'small'), addModel([10]));
  for (const name of ['slow', 'small']) {
    const r = await fetch(`${s.management}/models?url=${name}&model_name=${name}`, { method: 'POST' });
    expect(r.status).toBe(200);
  }
  return s;
}

/** Queues `n` slow requests, then one small one; returns when each finished, in ms from the start. */
async function race(s: TestServer, n: number): Promise<{ slow: number[]; small: number }> {
  const t0 = performance.now();
  const slow = Array.from({ length: n }, () => postJson(`${s.inference}/predictions/slow`, { x: [[1000]] }, SLOW).then(async (r) => {
    expect(await json(r)).toEqual({ y: 1001 });
    return performance.now() - t0;
  }));
  // Let the slow requests reach the worker first.
  await new Promise((r) => setTimeout(r, 50));
  const small = await postJson(`${s.inference}/predictions/small`, { x: [[1]] }).then(async (r) => {
    expect(await json(r)).toEqual({ y: [[11]] });
    return performance.now() - t0;
  });
  return { slow: (await Promise.all(slow)).sort((a, b) => a - b), small };
}

describe('fair scheduling across models', () => {
  test('each model gets a thread of its own while the pool may grow, and the small one is not held up', async () => {
    const s = await serve({ 'max-worker-threads': '4' });
    try {
      const threads = await Promise.all(['slow', 'small'].map(async (m) => (await json(await fetch(`${s.management}/models/${m}`))).workers.map((w: { id: string }) => w.id)));
      expect(threads[0]).toHaveLength(1);
      expect(threads[1]).toHaveLength(1);
      expect(threads[0][0]).not.toBe(threads[1][0]);
      const { slow, small } = await race(s, 4);
      // The small model's thread is free: it answers before even the first slow request.
      expect(small).toBeLessThan(slow[0]);
    } finally {
      await s.close();
    }
  });

  test('on a shared thread the small model waits for one run of the big one at most, not its whole queue', async () => {
    const s = await serve({ 'max-worker-threads': '1' });
    try {
      const threads = await Promise.all(['slow', 'small'].map(async (m) => (await json(await fetch(`${s.management}/models/${m}`))).workers[0].id));
      expect(threads[0]).toBe(threads[1]);
      const { slow, small } = await race(s, 4);
      // First in first out would answer it after all four (about 1 s); fair turns after the first.
      expect(small).toBeLessThan(slow[1]);
    } finally {
      await s.close();
    }
  });
});
