// `device` at registration and in the model config, gpu_ids and the GPU budgets in /status, over HTTP,
// with QUIVER_FAKE_GPUS standing in for GPUs (there are none here).
import * as path from 'node:path';
import { InvalidConfigError } from '../../src/errors';
import { scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

const N = 256;
const MiB = 2 ** 20;

describe('GPU devices over HTTP (fake GPUs)', () => {
  let s: TestServer;
  const store = tempDir('gpu-http-store');
  writeModelFolder(path.join(store, 'onGpu'), scaleModel(N, 2));
  writeModelFolder(path.join(store, 'onCpu'), scaleModel(N, 3), { device: 'cpu' });
  const saved = process.env.QUIVER_FAKE_GPUS;

  beforeAll(async () => {
    process.env.QUIVER_FAKE_GPUS = '2x1GiB';
    s = await startServer({ workers: '2', 'model-store': store, 'gpu-ids': '1', 'gpu-memory-percent': '50', 'gpu-memory-reserve': String(12 * MiB) });
  });
  afterAll(async () => {
    await s.close();
    if (saved === undefined) delete process.env.QUIVER_FAKE_GPUS;
    else process.env.QUIVER_FAKE_GPUS = saved;
  });

  const answer = async (name: string) => (await json(await postJson(`${s.inference}/predictions/${name}`, { x: [Array.from({ length: N }, (_, i) => (i === 0 ? 1 : 0))] }))).y[0][0];

  test('device=cuda at registration puts the model on the one GPU gpu_ids names; the model config\'s device=cpu keeps another off it', async () => {
    expect((await fetch(`${s.management}/models?url=onGpu&device=cuda&initial_workers=2`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${s.management}/models?url=onCpu&initial_workers=1`, { method: 'POST' })).status).toBe(200);
    const gpu = await json(await fetch(`${s.management}/models/onGpu`));
    expect(gpu).toMatchObject({ device: 'cuda', deviceRequested: 'cuda' });
    expect(gpu.workers.map((w: { device: string }) => w.device)).toEqual(['cuda:1', 'cuda:1']);
    const cpu = await json(await fetch(`${s.management}/models/onCpu`));
    expect(cpu).toMatchObject({ device: 'cpu', deviceRequested: 'cpu' });
    expect(await answer('onGpu')).toBe(2);
    expect(await answer('onCpu')).toBe(3);
    const status = await json(await fetch(`${s.management}/status`));
    // 50% of 1 GiB less 12 MiB, for GPU 1 alone.
    expect(status.budget.gpus).toHaveLength(1);
    expect(status.budget.gpus[0]).toMatchObject({ gpu: 1, bytes: 500 * MiB });
    expect(status.budget.gpus[0].usedBytes).toBeGreaterThanOrEqual(2 * N * N * 4);
  });

  test('a device that is not auto, cpu or cuda is a 400 that names the parameter', async () => {
    const r = await fetch(`${s.management}/models?url=onGpu&model_name=other&device=tpu`, { method: 'POST' });
    expect(r.status).toBe(400);
    expect((await json(r)).message).toMatch(/parameter device must be one of auto, cpu, cuda/);
  });

  test('gpu_ids that name a GPU not present, and a percent over 100, stop the start with a config error', async () => {
    await expect(startServer({ 'model-store': store, 'gpu-ids': '5' })).rejects.toThrow(/gpu_ids names 5, but the GPUs are 0, 1/);
    await expect(startServer({ 'model-store': store, 'gpu-memory-percent': '150' })).rejects.toBeInstanceOf(InvalidConfigError);
  });
});
