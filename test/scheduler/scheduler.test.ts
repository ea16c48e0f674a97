// The scheduler with a real worker pool: placement, routing, concurrent loads, failures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelRegistry } from '../../src/models/registry';
import { ModelScheduler } from '../../src/scheduler/scheduler';
import { WorkerPool } from '../../src/workers/pool';
import { deadlineSignal } from '../../src/workers/cancel-signal';
import { InvalidModelArchiveError, ModelNotFoundError, NoWorkerAvailableError, QueueFullError } from '../../src/errors';
import { addModel, scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { tempDir } from '../fixtures/server';

function request(x: number[][]) {
  return { body: Buffer.from(JSON.stringify({ x })), contentType: 'application/json', requestId: 't', enqueuedAt: Date.now() };
}

function setup(workers = 3, jobQueueSize = 100) {
  const store = tempDir('store');
  const pool = new WorkerPool(workers, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e7, preprocessBackend: 'auto', heapLimitMb: 0 });
  const scheduler = new ModelScheduler(new ModelRegistry(), pool, {
    modelStore: store, workDir: tempDir('work'), maxArchiveBytes: 1e8, defaultWorkersPerModel: 1, jobQueueSize,
  });
  return { store, pool, scheduler };
}

describe('ModelScheduler', () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx.scheduler.close());

  test('places a model on initial_workers workers and routes only to them', async () => {
    ctx = setup(3);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([100, 200]));
    writeModelFolder(path.join(ctx.store, 'b'), addModel([1, 2]));
    await ctx.scheduler.register({ url: 'a', initialWorkers: 2 });
    await ctx.scheduler.register({ url: 'b' });
    const a = ctx.scheduler.describe('a');
    const b = ctx.scheduler.describe('b');
    expect(a.workers).toHaveLength(2);
    expect(b.workers).toHaveLength(1);
    // b goes to the worker a left free.
    expect(a.workers.map((w) => w.id)).not.toContain(b.workers[0].id);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ctx.scheduler.infer('a', undefined, request([[i, i]]))));
    answers.forEach((r, i) => expect(JSON.parse(r.body)).toEqual({ y: [[100 + i, 200 + i]] }));
    // Only a's hosts ever ran its tasks: b's worker finished none of them.
    const bWorker = ctx.pool.slot(Number(b.workers[0].id));
    expect(bWorker.inFlight).toBe(0);
  });

  test('moves request bodies to the worker instead of copying them', async () => {
    ctx = setup(1);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a' });
    const body = new Uint8Array(new TextEncoder().encode(JSON.stringify({ x: [[1]] })));
    const result = await ctx.scheduler.infer('a', undefined, { body, contentType: 'application/json', requestId: 't', enqueuedAt: Date.now() });
    expect(JSON.parse(result.body)).toEqual({ y: [[2]] });
    expect(body.byteLength).toBe(0); // detached: its memory moved to the worker
  });

  test('a body that can no longer be sent fails its request, and the thread goes on serving', async () => {
    ctx = setup(1);
    writeModelFolder(path.join(ctx.store, 'a'), scaleModel(256, 2));
    await ctx.scheduler.register({ url: 'a' });
    const json = JSON.stringify({ x: Array.from({ length: 96 }, () => Array.from({ length: 256 }, () => 1)) });
    const request = (body: Uint8Array) => ({ body, contentType: 'application/json', requestId: 't', enqueuedAt: Date.now() });
    // One buffer for several requests: the first moves it to the thread, and the others' copies fail.
    const shared = Buffer.from(json);
    const outcomes = await Promise.allSettled(Array.from({ length: 24 }, () => ctx.scheduler.infer('a', undefined, request(shared))));
    expect(outcomes[0].status).toBe('fulfilled');
    expect(outcomes.slice(1).every((o) => o.status === 'rejected')).toBe(true);
    // The thread still serves.
    expect(JSON.parse((await ctx.scheduler.infer('a', undefined, request(new TextEncoder().encode(json)))).body).y[0][0]).toBe(2);
  });

  test('requests that arrive while a model loads wait for that one load', async () => {
    ctx = setup(2);
    writeModelFolder(path.join(ctx.store, 'slow'), addModel([5]));
    const registering = ctx.scheduler.register({ name: 'slow', url: 'slow', synchronous: false });
    const early = ctx.scheduler.infer('slow', undefined, request([[1]]));
    await registering;
    expect(JSON.parse((await early).body)).toEqual({ y: [[6]] });
  });

  test('concurrent first-use loads of one target share one load', async () => {
    ctx = setup(2);
    writeModelFolder(path.join(ctx.store, 'target'), addModel([1]));
    await Promise.all(Array.from({ length: 5 }, () => ctx.scheduler.ensureLoaded('target', 'target')));
    expect(ctx.scheduler.modelCount()).toBe(1);
    expect(ctx.scheduler.describe('target').workers).toHaveLength(1);
  });

  test('a failed load fails every waiting request with the same error and leaves nothing behind', async () => {
    ctx = setup(2);
    fs.mkdirSync(path.join(ctx.store, 'broken'));
    fs.writeFileSync(path.join(ctx.store, 'broken', 'model.onnx'), 'this is not onnx');
    const registering = ctx.scheduler.register({ name: 'broken', url: 'broken', synchronous: false });
    const waiting = [ctx.scheduler.infer('broken', undefined, request([[1]])), ctx.scheduler.infer('broken', undefined, request([[1]]))];
    await registering;
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(InvalidModelArchiveError);
    expect(ctx.scheduler.hasModel('broken')).toBe(false);
    // The name is free again and a good artifact under it loads.
    fs.writeFileSync(path.join(ctx.store, 'broken', 'model.onnx'), addModel([2]));
    await ctx.scheduler.register({ name: 'broken', url: 'broken' });
    expect(JSON.parse((await ctx.scheduler.infer('broken', undefined, request([[1]]))).body)).toEqual({ y: [[3]] });
  });

  test('scales up and down, and a model with no workers answers 503', async () => {
    ctx = setup(3);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a', initialWorkers: 0 });
    await expect(ctx.scheduler.infer('a', undefined, request([[1]]))).rejects.toBeInstanceOf(NoWorkerAvailableError);
    await ctx.scheduler.scale('a', 3);
    expect(ctx.scheduler.describe('a').workers).toHaveLength(3);
    await ctx.scheduler.scale('a', 1);
    expect(ctx.scheduler.describe('a').workers).toHaveLength(1);
    expect(JSON.parse((await ctx.scheduler.infer('a', undefined, request([[1]]))).body)).toEqual({ y: [[2]] });
  });

  test('requests are served first come, first served: none waits behind later ones', async () => {
    ctx = setup(1);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a' });
    const waits: number[] = [];
    const end = Date.now() + 1000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < end) waits.push((await ctx.scheduler.infer('a', undefined, request([[1]]))).timings.queueMs);
      }),
    );
    // With four closed loops a request waits for at most the three before it, a few milliseconds.
    expect(waits.length).toBeGreaterThan(50);
    expect(Math.max(...waits)).toBeLessThan(150);
  });

  test('a finished task leaves nothing listening on its signal (answers are not kept until the timeout)', async () => {
    ctx = setup(1);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a' });
    const spec = ctx.scheduler.describe('a');
    expect(spec.status).toBe('READY');
    const deadline = deadlineSignal(60_000);
    const slot = ctx.pool.slot(0);
    // The same worker path the scheduler uses, with a signal that outlives the task.
    await ctx.scheduler.infer('a', undefined, request([[1]]));
    await slot.run({ kind: 'unload', key: 'none' }, [], deadline.signal);
    expect(deadline.signal.listenerCount).toBe(0);
    deadline.clear();
  });

  test('a full queue answers 503 at once', async () => {
    ctx = setup(1, 2);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a' });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => ctx.scheduler.infer('a', undefined, request([[1]]))));
    const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(rejected).toHaveLength(4);
    rejected.forEach((r) => expect(r.reason).toBeInstanceOf(QueueFullError));
  });

  test('unregistering lets in-flight requests finish, then the model is gone', async () => {
    ctx = setup(1);
    writeModelFolder(path.join(ctx.store, 'a'), addModel([1]));
    await ctx.scheduler.register({ url: 'a' });
    const inFlight = Array.from({ length: 5 }, (_, i) => ctx.scheduler.infer('a', undefined, request([[i]])));
    await ctx.scheduler.unregister('a');
    const answers = await Promise.all(inFlight);
    answers.forEach((r, i) => expect(JSON.parse(r.body)).toEqual({ y: [[i + 1]] }));
    await expect(ctx.scheduler.infer('a', undefined, request([[1]]))).rejects.toBeInstanceOf(ModelNotFoundError);
  });
});
