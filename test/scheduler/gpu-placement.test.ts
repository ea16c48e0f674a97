// Sessions placed on GPUs, per-GPU budgets and the fall back to the CPU, on real worker threads. There
// is no GPU here: QUIVER_FAKE_GPUS' probe stands in (a fake GPU's sessions run on the CPU, their device
// memory counted as the file's size, and a quarter more after the first run), and one test asks the
// real CUDA provider, which is not installed here, to see the fall back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InsufficientMemoryError } from '../../src/errors';
import { ModelRegistry } from '../../src/models/registry';
import { ModelScheduler } from '../../src/scheduler/scheduler';
import type { DeviceProbe } from '../../src/workers/device-probe';
import { cudaProviderLibrary, probeDevices } from '../../src/workers/device-probe';
import { WorkerPool } from '../../src/workers/pool';
import { scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { tempDir } from '../fixtures/server';

const N = 512; // 1 MiB of weights
const MiB = 2 ** 20;
/** The model file's size: what a fake GPU counts a session as holding. */
let FILE = 0;

const request = () => ({
  body: Buffer.from(JSON.stringify({ x: [Array.from({ length: N }, (_, i) => (i === 0 ? 1 : 0))] })),
  contentType: 'application/json', requestId: 't', enqueuedAt: Date.now(),
});

function setup(o: { gpuBudget: number; workers?: number; probe?: DeviceProbe; fake?: boolean }) {
  const store = tempDir('gpu-store');
  const devices = o.probe ?? probeDevices([], { QUIVER_FAKE_GPUS: '2x1GiB' });
  const gpuIds = devices.gpus.map((g) => g.id);
  const pool = new WorkerPool(o.workers ?? 2, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e7, preprocessBackend: 'auto', heapLimitMb: 0, gpuIds, fakeGpus: o.fake ?? true });
  const scheduler = new ModelScheduler(new ModelRegistry(), pool, {
    modelStore: store, workDir: tempDir('gpu-work'), maxArchiveBytes: 1e8, defaultWorkersPerModel: 1, maxWorkerThreads: o.workers ?? 2,
    jobQueueSize: 100, devices, gpuBudgets: gpuIds.map((id) => ({ id, bytes: o.gpuBudget })), housekeepingMs: 100,
  });
  const add = (k: number, config: object = {}) => {
    writeModelFolder(path.join(store, `m${k}`), scaleModel(N, k), config);
    FILE = fs.statSync(path.join(store, `m${k}`, 'model.onnx')).size;
  };
  const answer = async (name: string) => JSON.parse((await scheduler.infer(name, undefined, request())).body).y[0][0] as number;
  return { scheduler, add, answer };
}

describe('GPU placement with a fake device probe', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  test('a cuda model runs on a GPU thread; its device memory is measured at the load and the first run, and counted on that GPU', async () => {
    const ctx = setup({ gpuBudget: 100 * MiB });
    close = () => ctx.scheduler.close();
    ctx.add(1);
    await ctx.scheduler.register({ url: 'm1', device: 'cuda', initialWorkers: 2 });
    let d = ctx.scheduler.describe('m1');
    expect(d).toMatchObject({ device: 'cuda', deviceRequested: 'cuda' });
    expect(d.deviceReason).toBeUndefined();
    // Two copies, one on each GPU (worker 0 on GPU 0, worker 1 on GPU 1).
    expect(d.workers.map((w) => w.device).sort()).toEqual(['cuda:0', 'cuda:1']);
    expect(d.workers.every((w) => w.gpu && w.gpuMemoryUsage! >= FILE)).toBe(true);
    expect(await ctx.answer('m1')).toBe(1);
    expect(await ctx.answer('m1')).toBe(1);
    d = ctx.scheduler.describe('m1');
    const ran = d.workers.filter((w) => w.gpuMemoryUsage! > FILE);
    expect(ran.length).toBeGreaterThan(0);
    expect(ran[0].gpuMemoryUsage).toBe(FILE + Math.round(FILE / 4));
    const gpus = ctx.scheduler.status().budget.gpus;
    expect(gpus.map((g) => g.gpu)).toEqual([0, 1]);
    expect(gpus.reduce((a, g) => a + g.usedBytes, 0)).toBe(d.workers.reduce((a, w) => a + w.gpuMemoryUsage!, 0));
    expect(ctx.scheduler.memoryInUse().gpu).toBeGreaterThanOrEqual(2 * FILE);
  });

  test('more cuda models than a GPU holds: idle ones on that GPU are evicted, and every model still answers rightly', async () => {
    // Each GPU holds two copies after their first runs (1.25 MiB each), not three.
    const ctx = setup({ gpuBudget: Math.round(2.8 * MiB) });
    close = () => ctx.scheduler.close();
    for (let k = 1; k <= 6; k++) {
      ctx.add(k);
      await ctx.scheduler.register({ url: `m${k}`, device: 'cuda' });
      expect(await ctx.answer(`m${k}`)).toBe(k);
    }
    const check = () => {
      for (const g of ctx.scheduler.status().budget.gpus) expect(g.usedBytes).toBeLessThanOrEqual(g.bytes);
    };
    check();
    const states = ctx.scheduler.status().models.map((m) => m.status);
    expect(states.filter((s) => s === 'EVICTED').length).toBeGreaterThanOrEqual(2);
    for (let round = 0; round < 2; round++) {
      for (let k = 6; k >= 1; k--) expect(await ctx.answer(`m${k}`)).toBe(k);
      check();
    }
    // Host memory has no budget here: only the GPUs' evicted models.
    expect(ctx.scheduler.status().budget.bytes).toBe(0);
  });

  test('a model too big for any GPU: `cuda` is refused with the numbers, `auto` runs on the CPU and says why', async () => {
    const ctx = setup({ gpuBudget: Math.round(0.5 * MiB) });
    close = () => ctx.scheduler.close();
    ctx.add(1);
    ctx.add(2, { device: 'auto' });
    const refused = ctx.scheduler.register({ url: 'm1', device: 'cuda' });
    await expect(refused).rejects.toBeInstanceOf(InsufficientMemoryError);
    await expect(refused).rejects.toThrow(/more than any GPU's budget \(the largest: 1 MiB/);
    await ctx.scheduler.register({ url: 'm2' });
    const d = ctx.scheduler.describe('m2');
    expect(d).toMatchObject({ device: 'cpu', deviceRequested: 'auto' });
    expect(d.deviceReason).toMatch(/more than any GPU's budget/);
    expect(d.workers[0].device).toBe('cpu');
    expect(await ctx.answer('m2')).toBe(2);
    expect(ctx.scheduler.status().budget.gpus.every((g) => g.usedBytes === 0)).toBe(true);
  });

  test('cpu models stay off the GPUs, and without the CUDA provider cuda models run on the CPU with the reason', async () => {
    const ctx = setup({ gpuBudget: 100 * MiB, probe: probeDevices([], { QUIVER_FAKE_GPUS: '1x1GiB,no-provider' }) });
    close = () => ctx.scheduler.close();
    ctx.add(1, { device: 'cpu' });
    ctx.add(2);
    await ctx.scheduler.register({ url: 'm1' });
    await ctx.scheduler.register({ url: 'm2', device: 'cuda' });
    expect(ctx.scheduler.describe('m1')).toMatchObject({ device: 'cpu', deviceRequested: 'cpu' });
    expect(ctx.scheduler.describe('m1').deviceReason).toBeUndefined();
    const d = ctx.scheduler.describe('m2');
    expect(d).toMatchObject({ device: 'cpu', deviceRequested: 'cuda' });
    expect(d.deviceReason).toMatch(/CUDA provider is not installed/);
    expect(await ctx.answer('m1')).toBe(1);
    expect(await ctx.answer('m2')).toBe(2);
    expect(ctx.scheduler.status().budget.gpus).toEqual([{ gpu: 0, bytes: 100 * MiB, usedBytes: 0 }]);
    // The snapshot keeps what the registration asked for (m1's cpu came from its model config).
    expect(ctx.scheduler.snapshotModels().map((m) => m.device)).toEqual([undefined, 'cuda']);
  });

  test('the snapshot keeps what a copy measured on its GPU, and a restore predicts the next load from it', async () => {
    const ctx = setup({ gpuBudget: 10 * MiB });
    close = () => ctx.scheduler.close();
    ctx.add(4);
    await ctx.scheduler.register({ url: 'm4', device: 'cuda' });
    expect(await ctx.answer('m4')).toBe(4);
    const entry = ctx.scheduler.snapshotModels()[0];
    expect(entry.measured?.gpu).toEqual({ copyBytes: FILE, firstRunBytes: Math.round(FILE / 4) });
    // Restored with a device cost above every GPU budget: refused before anything is loaded.
    const next = setup({ gpuBudget: 10 * MiB });
    const before = close;
    close = async () => {
      await before?.();
      await next.scheduler.close();
    };
    next.add(4);
    const refused = next.scheduler.register({ url: 'm4', device: 'cuda', measured: { copyBytes: FILE, gpu: { copyBytes: 40 * MiB } } });
    await expect(refused).rejects.toThrow(/needs about 40 MiB of GPU memory per copy, more than any GPU's budget/);
  });

  test('a GPU the probe reports but whose CUDA provider cannot load: the copy runs on the CPU, says why, and answers; later loads go to the CPU at once', async () => {
    // Not fake: the worker really asks onnxruntime-node for its CUDA provider. Without its library (this
    // machine, CI) that fails; where it is installed on a GPU machine the copy really runs on the GPU.
    const probe: DeviceProbe = { gpus: [{ id: 0, totalBytes: 2 ** 30 }], cudaProvider: { available: true }, fake: false };
    const ctx = setup({ gpuBudget: 100 * MiB, workers: 1, probe, fake: false });
    close = () => ctx.scheduler.close();
    ctx.add(3);
    ctx.add(5);
    await ctx.scheduler.register({ url: 'm3', device: 'cuda' });
    expect(await ctx.answer('m3')).toBe(3);
    if (cudaProviderLibrary() !== undefined && probeDevices([]).gpus.length > 0) {
      expect(ctx.scheduler.describe('m3').device).toBe('cuda');
      return;
    }
    const d = ctx.scheduler.describe('m3');
    expect(d.device).toBe('cpu');
    expect(d.workers[0]).toMatchObject({ device: 'cpu', gpu: false });
    expect(d.workers[0].deviceFallback).toMatch(/CUDA provider failed on GPU 0/);
    expect(d.deviceReason).toMatch(/CUDA provider failed on GPU 0/);
    expect(ctx.scheduler.status().budget.gpus[0].usedBytes).toBe(0);
    // The next cuda model is placed on the CPU before its load, with the same reason.
    await ctx.scheduler.register({ url: 'm5', device: 'cuda' });
    const next = ctx.scheduler.describe('m5');
    expect(next.device).toBe('cpu');
    expect(next.workers[0].deviceFallback).toBeUndefined();
    expect(next.deviceReason).toMatch(/CUDA provider failed on GPU 0/);
    expect(await ctx.answer('m5')).toBe(5);
  });

  test('the copies of one model spread over the GPUs: each goes where the most budget is left after the ones before it', async () => {
    const ctx = setup({ gpuBudget: 100 * MiB, workers: 4 });
    close = () => ctx.scheduler.close();
    ctx.add(1);
    ctx.add(2);
    await ctx.scheduler.register({ url: 'm1', device: 'cuda' });
    expect(ctx.scheduler.describe('m1').workers.map((w) => w.device)).toEqual(['cuda:0']);
    // GPU 1 has more room; after m2's first copy there, the GPUs are even and the second goes to GPU 0.
    await ctx.scheduler.register({ url: 'm2', device: 'cuda', initialWorkers: 2 });
    expect(ctx.scheduler.describe('m2').workers.map((w) => w.device).sort()).toEqual(['cuda:0', 'cuda:1']);
    expect(await ctx.answer('m2')).toBe(2);
  });
});
