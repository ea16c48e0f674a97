// The holes of a model's life under churn: admission and deadlines from arrival, unregistering an
// evicted model, snapshots while a model reloads, a batch's deadline. Real worker threads.
import * as path from 'node:path';
import { InferenceTimeoutError, ModelLoadFailedError, ModelNotFoundError, QueueFullError } from '../../src/errors';
import { ModelRegistry } from '../../src/models/registry';
import { ModelScheduler } from '../../src/scheduler/scheduler';
import { WorkerPool } from '../../src/workers/pool';
import { addModel, scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { tempDir } from '../fixtures/server';

const N = 1024; // 4 MiB of weights
const MiB = 2 ** 20;

function request(x: number[][]) {
  return { body: Buffer.from(JSON.stringify({ x })), contentType: 'application/json', requestId: 't', enqueuedAt: Date.now() };
}

const unit = (k: number): number[][] => [Array.from({ length: N }, (_, i) => (i === 0 ? k / k : 0))];

function setup(options: { jobQueueSize?: number; budget?: number; loadTimeoutS?: number } = {}) {
  const store = tempDir('store');
  const pool = new WorkerPool(1, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e7, preprocessBackend: 'auto', heapLimitMb: 0 });
  let changes = 0;
  const scheduler: ModelScheduler = new ModelScheduler(new ModelRegistry(), pool, {
    modelStore: store, workDir: tempDir('work'), maxArchiveBytes: 1e8, defaultWorkersPerModel: 1, maxWorkerThreads: 1,
    jobQueueSize: options.jobQueueSize ?? 100, memoryBudgetBytes: options.budget, modelLoadTimeoutS: options.loadTimeoutS,
    persist: () => void changes++,
  });
  return { store, scheduler, changes: () => changes };
}

/** 4 MiB models under a budget that holds a few: registering them all evicts some; returns an evicted one. */
async function withEvicted(options: { jobQueueSize?: number } = {}) {
  const ctx = setup({ ...options, budget: 14 * MiB });
  for (let k = 1; k <= 5; k++) {
    writeModelFolder(path.join(ctx.store, `m${k}`), scaleModel(N, k));
    await ctx.scheduler.register({ url: `m${k}` });
  }
  const evicted = ctx.scheduler.status().models.find((m) => m.status === 'EVICTED');
  expect(evicted).toBeDefined();
  const k = Number(evicted!.modelName.slice(1));
  return { ...ctx, name: evicted!.modelName, k };
}

describe('model lifecycle', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  test('a burst to an evicted model is admitted from arrival: job_queue_size answers, the rest refused before the load ends', async () => {
    const ctx = await withEvicted({ jobQueueSize: 50 });
    close = () => ctx.scheduler.close();
    const events: string[] = [];
    const all = Array.from({ length: 500 }, () =>
      ctx.scheduler.infer(ctx.name, undefined, request(unit(1))).then(
        (r) => {
          expect(JSON.parse(r.body).y[0][0]).toBe(ctx.k);
          events.push('answer');
        },
        (err) => {
          expect(err).toBeInstanceOf(QueueFullError);
          // Refused while the model still loads, not once it is back.
          expect(ctx.scheduler.describe(ctx.name).status).toBe('LOADING');
          events.push('refused');
        },
      ),
    );
    await Promise.all(all);
    expect(events.filter((e) => e === 'answer')).toHaveLength(50);
    expect(events.filter((e) => e === 'refused')).toHaveLength(450);
    // Every refusal came before the first answer: none of those bodies waited for the load.
    expect(events.slice(0, 450).every((e) => e === 'refused')).toBe(true);
  });

  test('response_timeout runs from arrival: a request still waiting for its model\'s load gets 504', async () => {
    const ctx = setup();
    close = () => ctx.scheduler.close();
    // A handler whose module takes 2.5 s to load: the model's load takes that long.
    writeModelFolder(path.join(ctx.store, 'slowload'), addModel([1]), { handler: 'handler.js', responseTimeoutS: 1 }, {
      'handler.js': 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);\nmodule.exports = {};\n',
    });
    await ctx.scheduler.register({ url: 'slowload', synchronous: false });
    const started = Date.now();
    await expect(ctx.scheduler.infer('slowload', undefined, request([[1]]))).rejects.toBeInstanceOf(InferenceTimeoutError);
    expect(Date.now() - started).toBeLessThan(2300);
  });

  test('model_load_timeout bounds a load: it fails with the reason, and the thread serves again after', async () => {
    const ctx = setup({ loadTimeoutS: 1 });
    close = () => ctx.scheduler.close();
    writeModelFolder(path.join(ctx.store, 'slowload'), addModel([1]), { handler: 'handler.js' }, {
      'handler.js': 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);\nmodule.exports = {};\n',
    });
    writeModelFolder(path.join(ctx.store, 'quick'), addModel([5]));
    const started = Date.now();
    const failed = ctx.scheduler.register({ url: 'slowload' });
    await expect(failed).rejects.toBeInstanceOf(ModelLoadFailedError);
    await expect(failed).rejects.toThrow(/within 1 s \(model_load_timeout\)/);
    expect(Date.now() - started).toBeLessThan(3500);
    expect(ctx.scheduler.status().models).toEqual([]);
    await ctx.scheduler.register({ url: 'quick' });
    expect(JSON.parse((await ctx.scheduler.infer('quick', undefined, request([[1]]))).body)).toEqual({ y: [[6]] });
  });

  test('a lazy registration whose load fails later stays visible with its error until registered again', async () => {
    const ctx = setup();
    close = () => ctx.scheduler.close();
    writeModelFolder(path.join(ctx.store, 'broken'), new TextEncoder().encode('not an ONNX model'));
    await ctx.scheduler.register({ url: 'broken', synchronous: false });
    for (let i = 0; i < 100 && ctx.scheduler.describe('broken').status !== 'FAILED'; i++) await new Promise((r) => setTimeout(r, 20));
    const d = ctx.scheduler.describe('broken');
    expect(d.status).toBe('FAILED');
    expect(d.error).toMatch(/could not be loaded by onnxruntime/);
    expect(ctx.scheduler.snapshotModels()).toEqual([]);
    writeModelFolder(path.join(ctx.store, 'broken'), addModel([2]));
    await ctx.scheduler.register({ url: 'broken' });
    expect(ctx.scheduler.describe('broken').status).toBe('READY');
    expect(ctx.scheduler.describe('broken').error).toBeUndefined();
  });

  test('a request whose default version is unregistered while it waits for that version\'s load is answered by the new default', async () => {
    const ctx = setup();
    close = () => ctx.scheduler.close();
    writeModelFolder(path.join(ctx.store, 'two'), addModel([2]));
    // Version 1.0 takes 1.5 s to load: its handler module waits.
    writeModelFolder(path.join(ctx.store, 'one'), addModel([1]), { handler: 'handler.js' }, {
      'handler.js': 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);\nmodule.exports = { postprocess: (o) => o };\n',
    });
    await ctx.scheduler.register({ url: 'two', name: 'm', version: '2.0' });
    await ctx.scheduler.register({ url: 'one', name: 'm', version: '1.0', synchronous: false });
    ctx.scheduler.setDefault('m', '1.0');
    const answer = ctx.scheduler.infer('m', undefined, request([[0]]));
    await new Promise((r) => setTimeout(r, 200));
    expect(ctx.scheduler.describe('m', '1.0').status).toBe('LOADING');
    ctx.scheduler.setDefault('m', '2.0');
    await ctx.scheduler.unregister('m', '1.0');
    expect(JSON.parse((await answer).body)).toEqual({ y: [[2]] });
    // A request that named the version it wanted still gets 404 when that version goes.
    writeModelFolder(path.join(ctx.store, 'three'), addModel([3]), { handler: 'handler.js' }, {
      'handler.js': 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);\nmodule.exports = { postprocess: (o) => o };\n',
    });
    await ctx.scheduler.register({ url: 'three', name: 'm', version: '3.0', synchronous: false });
    const named = ctx.scheduler.infer('m', '3.0', request([[0]]));
    await new Promise((r) => setTimeout(r, 200));
    await ctx.scheduler.unregister('m', '3.0');
    await expect(named).rejects.toBeInstanceOf(ModelNotFoundError);
  });

  test('unregistering an evicted model drops it from the snapshot and its counts', async () => {
    const ctx = await withEvicted();
    close = () => ctx.scheduler.close();
    const before = ctx.changes();
    await ctx.scheduler.unregister(ctx.name);
    expect(ctx.changes()).toBeGreaterThan(before);
    const others = ['m1', 'm2', 'm3', 'm4', 'm5'].filter((n) => n !== ctx.name);
    expect(ctx.scheduler.snapshotModels().map((m) => m.name).sort()).toEqual(others);
    expect(ctx.scheduler.status().models.map((m) => m.modelName).sort()).toEqual(others);
  });

  test('a snapshot taken while a model reloads after an eviction still lists it', async () => {
    const ctx = await withEvicted();
    close = () => ctx.scheduler.close();
    const reload = ctx.scheduler.infer(ctx.name, undefined, request(unit(1)));
    expect(ctx.scheduler.describe(ctx.name).status).toBe('LOADING');
    expect(ctx.scheduler.snapshotModels().map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(JSON.parse((await reload).body).y[0][0]).toBe(ctx.k);
  });
});
