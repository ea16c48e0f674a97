// Dynamic batching over HTTP: requests share onnxruntime runs and never get each other's answers.
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { onnx } from 'onnx-proto';
import * as fs from 'node:fs';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

/** y = x + 0 with a fixed batch dimension of 1: must never be batched. */
function fixedBatchModel(): Uint8Array {
  const info = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }] } } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'fixed', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }], input: [info('x')], output: [info('y')] },
  })).finish();
}

beforeAll(async () => {
  s = await startServer({ workers: '2' });
  // The handler takes 10 ms per run, so requests arriving meanwhile queue up and batch.
  writeModelFolder(path.join(s.store, 'echo'), addModel([0, 1000]), { handler: 'handler.js' }, {
    'handler.js': `module.exports = { postprocess(outputs) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      const { dims, data } = outputs.y;
      return { y: Array.from({ length: dims[0] }, (_, r) => Array.from(data.subarray(r * dims[1], (r + 1) * dims[1]))) };
    } };`,
  });
  fs.mkdirSync(path.join(s.store, 'fixed'));
  fs.writeFileSync(path.join(s.store, 'fixed', 'model.onnx'), fixedBatchModel());
  for (const q of ['url=echo&batch_size=8&max_batch_delay=20&initial_workers=2', 'url=fixed&batch_size=8&max_batch_delay=20']) {
    expect((await fetch(`${s.management}/models?${q}`, { method: 'POST' })).status).toBe(200);
  }
});

afterAll(async () => s.close());

function sample(text: string, line: RegExp): number {
  const match = text.split('\n').find((l) => line.test(l));
  return match ? Number(match.split(' ').pop()) : NaN;
}

describe('dynamic batching', () => {
  test('64 concurrent requests are batched and each gets its own answer', async () => {
    const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => postJson(`${s.inference}/predictions/echo`, { x: [[i, -i]] })));
    for (const [i, r] of answers.entries()) {
      expect(r.status).toBe(200);
      expect(await json(r)).toEqual({ y: [[i, 1000 - i]] });
    }
    const metrics = await (await fetch(`${s.management}/metrics`)).text();
    const runs = sample(metrics, /^quiver_batch_size_count\{model="echo"\}/);
    const requests = sample(metrics, /^quiver_batch_size_sum\{model="echo"\}/);
    expect(requests).toBe(64);
    expect(runs).toBeLessThan(64); // several requests shared a run
  });

  test('a bad request fails alone inside a batch; a request of two rows gets both its rows', async () => {
    const calls = [
      postJson(`${s.inference}/predictions/echo`, { x: [[1, 1]] }),
      postJson(`${s.inference}/predictions/echo`, { x: [[1, 2, 3]] }),
      postJson(`${s.inference}/predictions/echo`, { x: [[2, 2], [3, 3]] }),
      postJson(`${s.inference}/predictions/echo`, { nope: [[1, 1]] }),
      postJson(`${s.inference}/predictions/echo`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [4, 4] }] }),
    ];
    const [a, bad1, two, bad2, oip] = await Promise.all(calls);
    expect(await json(a)).toEqual({ y: [[1, 1001]] });
    expect(bad1.status).toBe(400);
    expect(await json(two)).toEqual({ y: [[2, 1002], [3, 1003]] });
    expect(bad2.status).toBe(400);
    // The handler answers every request in the same form, the OIP one too.
    expect(await json(oip)).toEqual({ y: [[4, 1004]] });
  });

  test('Triton\'s statistics count a batching model\'s batch entries as inferences, and its runs in entries', async () => {
    const stats = async () => (await json(await fetch(`${s.inference}/v2/models/echo/stats`))).model_stats[0];
    const entries = (st: { batch_stats: { batch_size: number; compute_infer: { count: number } }[] }) => st.batch_stats.reduce((n, b) => n + b.batch_size * b.compute_infer.count, 0);
    const before = await stats();
    const rows = [1, 2, 3];
    const answers = await Promise.all(rows.map((n) => postJson(`${s.inference}/predictions/echo`, { x: Array.from({ length: n }, (_, r) => [r, r]) })));
    for (const r of answers) expect(r.status).toBe(200);
    const after = await stats();
    expect(after.inference_count - before.inference_count).toBe(6);
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(3);
    // However the three were batched, their runs held six entries.
    expect(entries(after) - entries(before)).toBe(6);
  });

  test('no run stacks more rows than batch_size (Triton\'s max_batch_size); a bigger request runs alone', async () => {
    const stats = async () => (await json(await fetch(`${s.inference}/v2/models/echo/stats`))).model_stats[0] as { batch_stats: { batch_size: number; compute_infer: { count: number } }[] };
    const sizes = (st: { batch_stats: { batch_size: number; compute_infer: { count: number } }[] }) => new Map(st.batch_stats.map((b) => [b.batch_size, b.compute_infer.count]));
    const before = sizes(await stats());
    const rows = [...Array.from({ length: 16 }, () => 3), 10];
    const answers = await Promise.all(rows.map((n, i) => postJson(`${s.inference}/predictions/echo`, { x: Array.from({ length: n }, () => [i, i]) })));
    for (const [i, r] of answers.entries()) expect(await json(r)).toEqual({ y: Array.from({ length: rows[i] }, () => [i, 1000 + i]) });
    const after = sizes(await stats());
    const grown = [...after].filter(([size, count]) => count > (before.get(size) ?? 0)).map(([size]) => size);
    expect(grown.filter((size) => size > 8)).toEqual([10]);
  });

  test('a lone request is not held longer than max_batch_delay', async () => {
    const started = Date.now();
    expect(await json(await postJson(`${s.inference}/predictions/echo`, { x: [[5, 5]] }))).toEqual({ y: [[5, 1005]] });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a model with a fixed batch dimension of 1 is never batched', async () => {
    expect((await json(await fetch(`${s.management}/models/fixed`))).batchSize).toBe(1);
    expect((await json(await fetch(`${s.management}/models/echo`))).batchSize).toBe(8);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => postJson(`${s.inference}/predictions/fixed`, { x: [[i, i]] })));
    for (const [i, r] of answers.entries()) expect(await json(r)).toEqual({ y: [[i, i]] });
  });

  test('unregistering answers what is queued first', async () => {
    const queued = Array.from({ length: 20 }, (_, i) => postJson(`${s.inference}/predictions/echo`, { x: [[i, i]] }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await fetch(`${s.management}/models/echo`, { method: 'DELETE' })).status).toBe(200);
    const statuses = await Promise.all(queued.map(async (r) => (await r).status));
    // Answered, or refused as unknown if it arrived after the model went: never lost or hung.
    for (const status of statuses) expect([200, 404]).toContain(status);
    expect(statuses.filter((x) => x === 200).length).toBeGreaterThan(0);
  });
});
