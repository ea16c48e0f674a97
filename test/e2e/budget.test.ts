// The memory budget: loads past it evict idle models, evicted models come back on their next request,
// and a model that cannot fit gets 507 from the SageMaker API and 503 from MMS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

const N = 1024; // 4 MiB of weights per model
const MiB = 2 ** 20;

function answerOf(body: { y: number[][] }): number {
  return body.y[0][0];
}

describe('memory budget', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ workers: '1', 'memory-budget': String(14 * MiB), 'eviction-policy': 'gdsf' });
    for (let k = 1; k <= 6; k++) writeModelFolder(path.join(s.store, `m${k}`), scaleModel(N, k));
  });
  afterAll(async () => s.close());

  const predict = (k: number) => postJson(`${s.inference}/predictions/m${k}`, { x: [Array.from({ length: N }, (_, i) => (i === 0 ? 1 : 0))] });
  // A copy's measured size (RSS growth, noisy) can pass what its load was admitted at: the budget check
  // that follows a load evicts until the copies fit again. The status once it has had a few seconds to.
  const settledStatus = async () => {
    let status = await json(await fetch(`${s.management}/status`));
    for (let i = 0; i < 50 && status.budget.usedBytes > status.budget.bytes; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await json(await fetch(`${s.management}/status`));
    }
    return status;
  };

  test('registering more than fits evicts idle models; every model still answers, reloaded on demand', async () => {
    for (let k = 1; k <= 6; k++) {
      const r = await fetch(`${s.management}/models?url=m${k}`, { method: 'POST' });
      expect(r.status).toBe(200);
    }
    const status = await settledStatus();
    expect(status.budget).toMatchObject({ bytes: 14 * MiB, policy: 'gdsf' });
    expect(status.budget.usedBytes).toBeLessThanOrEqual(14 * MiB);
    expect(status.models).toHaveLength(6);
    expect(status.models.filter((m: { status: string }) => m.status === 'EVICTED').length).toBeGreaterThan(0);

    for (const k of [1, 2, 3, 4, 5, 6, 1, 6, 3]) {
      const r = await predict(k);
      expect(r.status).toBe(200);
      expect(answerOf(await json(r))).toBe(k);
      const after = await settledStatus();
      expect(after.budget.usedBytes).toBeLessThanOrEqual(14 * MiB);
    }
    const metrics = await (await fetch(`${s.management}/metrics`)).text();
    const evictions = metrics.split('\n').filter((l) => l.startsWith('quiver_model_evictions_total{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    expect(evictions).toBeGreaterThan(0);
  });

  test('a load\'s peak is measured: it holds the parsed file for a moment above what it keeps', async () => {
    const r = await predict(2);
    expect(r.status).toBe(200);
    const d = await json(await fetch(`${s.management}/models/m2`));
    expect(d.status).toBe('READY');
    const [worker] = d.workers;
    // 4 MiB of weights: kept once, and about twice while onnxruntime builds the session from the file.
    // (memoryUsage is never below what an earlier copy of the file measured, so it is not this load's own.)
    expect(worker.memoryUsage).toBeGreaterThanOrEqual(4 * MiB);
    expect(worker.loadPeakBytes).toBeGreaterThan(6 * MiB);
  });

  test('an evicted model\'s Triton config still says how it batches (perf_analyzer reads shapes by it)', async () => {
    writeModelFolder(path.join(s.store, 'batched'), scaleModel(N, 7));
    expect((await fetch(`${s.management}/models?url=batched&batch_size=4&max_batch_delay=5`, { method: 'POST' })).status).toBe(200);
    const configOf = async () => json(await fetch(`${s.inference}/v2/models/batched/config`));
    const loaded = await configOf();
    expect(loaded).toMatchObject({ max_batch_size: 4, input: [{ name: 'x', dims: [N] }], dynamic_batching: expect.any(Object) });
    let status = '';
    for (let i = 0; i < 24 && status !== 'EVICTED'; i++) {
      expect((await predict((i % 6) + 1)).status).toBe(200);
      status = (await json(await fetch(`${s.management}/models/batched`))).status;
    }
    expect(status).toBe('EVICTED');
    expect(await configOf()).toEqual(loaded);
    expect((await json(await fetch(`${s.inference}/v2/models/batched`))).inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, N] }]);
  });

  test('describe shows the prediction and the measured cost', async () => {
    const d = await json(await fetch(`${s.management}/models/m6`));
    expect(d.predictedBytes).toBeGreaterThan(4 * MiB);
    if (d.status === 'READY') expect(d.memoryBytes).toBeGreaterThanOrEqual(4 * MiB);
  });
});

describe('a model that cannot fit', () => {
  test('gets 507 on the SageMaker API (so SageMaker unloads others and retries) and 503 on MMS', async () => {
    for (const mode of ['sagemaker', 'mms'] as const) {
      const s = await startServer({ mode, workers: '1', 'memory-budget': String(2 * MiB) });
      try {
        writeModelFolder(path.join(s.store, 'big'), scaleModel(N, 1));
        const r = mode === 'sagemaker'
          ? await postJson(`${s.inference}/models`, { model_name: 'big', url: path.join(s.store, 'big') })
          : await fetch(`${s.management}/models?url=big`, { method: 'POST' });
        expect(r.status).toBe(mode === 'sagemaker' ? 507 : 503);
        expect(await json(r)).toMatchObject({ type: 'InsufficientMemoryException', message: expect.stringMatching(/budget/) });
        // Nothing half-loaded stays behind.
        const listed = await json(await fetch(`${mode === 'sagemaker' ? s.inference : s.management}/models`));
        expect(listed.models).toEqual([]);
        expect(fs.existsSync(s.store)).toBe(true);
      } finally {
        await s.close();
      }
    }
  });
});

describe('SageMaker multi-model endpoint with more models than the budget holds', () => {
  test('every model, invoked in turn through /invocations, answers correctly; the budget holds', async () => {
    const s = await startServer({ mode: 'sagemaker', workers: '2', 'memory-budget': String(14 * MiB) });
    try {
      const models = 8; // 4 MiB of weights each: about three fit
      for (let k = 1; k <= models; k++) writeModelFolder(path.join(s.store, `m${k}`), scaleModel(N, k));
      const x = [Array.from({ length: N }, (_, i) => (i === 0 ? 1 : 0))];
      for (const round of [1, 2]) {
        for (let k = 1; k <= models; k++) {
          const r = await postJson(`${s.inference}/invocations`, { x }, { 'X-Amzn-SageMaker-Target-Model': `m${k}` });
          expect({ round, k, status: r.status }).toEqual({ round, k, status: 200 });
          expect(answerOf(await json(r))).toBe(k);
          const status = await json(await fetch(`${s.inference}/status`));
          expect(status.budget.usedBytes).toBeLessThanOrEqual(14 * MiB);
        }
      }
      const status = await json(await fetch(`${s.inference}/status`));
      expect(status.models).toHaveLength(models);
      expect(status.models.filter((m: { status: string }) => m.status === 'EVICTED').length).toBeGreaterThanOrEqual(models - 3);
    } finally {
      await s.close();
    }
  });
});
