// Device choice, GPU placement and per-GPU budgets as pure functions and with a fake host: no threads, no GPU.
import { InsufficientMemoryError, InvalidConfigError } from '../../src/errors';
import { chooseDevice, gpuBudgetBytes, gpuCandidates } from '../../src/scheduler/devices';
import { DeviceBudgets, GpuCopy } from '../../src/scheduler/device-budgets';
import type { ResidentModel } from '../../src/scheduler/eviction';
import { cudaProviderLibrary, DeviceProbe, gpuOfWorker, parseFakeGpus, parseGpuIds, probeDevices, selectGpus } from '../../src/workers/device-probe';
import { loadNative } from '../../src/preprocess/native';

const MiB = 2 ** 20;
const probe = (gpus: number, provider = true): DeviceProbe => ({
  gpus: Array.from({ length: gpus }, (_, id) => ({ id, totalBytes: 1024 * MiB })),
  noGpuReason: gpus === 0 ? 'the addon was built without CUDA (npm run build:cuda)' : undefined,
  cudaProvider: provider ? { available: true } : { available: false, reason: 'onnxruntime\'s CUDA provider is not installed' },
  fake: true,
});

describe('where a model runs', () => {
  test('cpu stays on the CPU; auto and cuda take a GPU only with a GPU and the CUDA provider, and say why not', () => {
    expect(chooseDevice('cpu', probe(2))).toEqual({ kind: 'cpu' });
    expect(chooseDevice('auto', probe(2))).toEqual({ kind: 'cuda' });
    expect(chooseDevice('cuda', probe(1))).toEqual({ kind: 'cuda' });
    const noGpu = chooseDevice('cuda', probe(0));
    expect(noGpu.kind).toBe('cpu');
    expect(noGpu.reason).toMatch(/no GPU: the addon was built without CUDA/);
    const noProvider = chooseDevice('auto', probe(2, false));
    expect(noProvider.kind).toBe('cpu');
    expect(noProvider.reason).toMatch(/CUDA provider is not installed/);
  });

  test('worker threads are spread over the GPUs in turn', () => {
    expect([0, 1, 2, 3, 4].map((w) => gpuOfWorker(w, [0, 1]))).toEqual([0, 1, 0, 1, 0]);
    expect([0, 1, 2].map((w) => gpuOfWorker(w, [3]))).toEqual([3, 3, 3]);
    expect(gpuOfWorker(0, [])).toBeUndefined();
  });

  test('a GPU budget is its percent less the reserve, never below 0', () => {
    expect(gpuBudgetBytes(1000 * MiB, 90, 100 * MiB)).toBe(800 * MiB);
    expect(gpuBudgetBytes(100 * MiB, 50, 200 * MiB)).toBe(0);
  });

  test('a CUDA copy goes to the GPU with the most budget left, then the least loaded of its threads, never to one that hosts it', () => {
    const workers = [0, 1, 2, 3].map((id) => ({ id, models: id === 0 ? 1 : 0, bytes: id === 0 ? 50 : 0 }));
    const free = new Map([[0, 500], [1, 100]]);
    const order = gpuCandidates(workers, [0, 1], (g) => free.get(g)!, new Set([2]));
    // GPU 0 holds workers 0 and 2 (2 already hosts the model); GPU 1 holds 1 and 3.
    expect(order).toEqual([{ worker: 0, gpu: 0 }, { worker: 1, gpu: 1 }, { worker: 3, gpu: 1 }]);
    expect(gpuCandidates(workers, [], () => 0, new Set())).toEqual([]);
  });
});

describe('the device probe', () => {
  test('QUIVER_FAKE_GPUS sets count, memory and the provider; a bad value is a config error', () => {
    expect(parseFakeGpus('2x16GiB')).toEqual({ count: 2, totalBytes: 16 * 2 ** 30, provider: true });
    expect(parseFakeGpus('1x512MiB,no-provider')).toEqual({ count: 1, totalBytes: 512 * MiB, provider: false });
    expect(() => parseFakeGpus('two')).toThrow(InvalidConfigError);
    expect(() => parseFakeGpus('0x1GiB')).toThrow(InvalidConfigError);
    const fake = probeDevices([1], { QUIVER_FAKE_GPUS: '2x1GiB' });
    expect(fake).toMatchObject({ fake: true, gpus: [{ id: 1, totalBytes: 2 ** 30 }], cudaProvider: { available: true } });
    expect(probeDevices([], { QUIVER_FAKE_GPUS: '1x1GiB,no-provider' }).cudaProvider.reason).toMatch(/not installed/);
  });

  test('gpu_ids must name GPUs that are there', () => {
    expect(parseGpuIds(['0', '2'])).toEqual([0, 2]);
    expect(() => parseGpuIds(['cuda:0'])).toThrow(InvalidConfigError);
    const present = [{ id: 0, totalBytes: 1 }, { id: 1, totalBytes: 1 }];
    expect(selectGpus(present, []).map((g) => g.id)).toEqual([0, 1]);
    expect(selectGpus(present, [1, 1]).map((g) => g.id)).toEqual([1]);
    expect(() => selectGpus(present, [4])).toThrow(/gpu_ids names 4, but the GPUs are 0, 1/);
  });

  test('the real probe finds the GPUs the CUDA build counts, and says why when there are none', () => {
    const real = probeDevices([], {});
    expect(real.fake).toBe(false);
    const caps = loadNative().binding?.capabilities();
    const count = caps?.cuda.compiled ? caps.cuda.deviceCount : 0;
    expect(real.gpus.map((g) => g.id)).toEqual(Array.from({ length: count }, (_, i) => i));
    if (count === 0) expect(real.noGpuReason).toMatch(/addon|CUDA/);
    expect(real.cudaProvider.available).toBe(cudaProviderLibrary() !== undefined);
  });
});

describe('per-GPU budgets', () => {
  function host(copies: (GpuCopy & { id: string; busy?: boolean })[]) {
    const evicted: string[] = [];
    const live = () => copies.filter((c) => !evicted.includes(c.id));
    return {
      evicted,
      gpuCopies: () => live(),
      residents: (gpu: number, except: string): ResidentModel[] =>
        live().filter((c) => c.gpu === gpu && c.id !== except).map((c) => ({ name: c.id, bytes: c.gpuBytes, loadMs: 10, hits: 1, lastUsed: 1, busy: c.busy ?? false })),
      evict: async (id: string) => void evicted.push(id),
    };
  }

  test('room is made on the copy\'s GPU by evicting idle models there, never those on another GPU', async () => {
    const h = host([
      { id: 'a', gpu: 0, gpuBytes: 300 * MiB },
      { id: 'b', gpu: 0, gpuBytes: 300 * MiB },
      { id: 'c', gpu: 1, gpuBytes: 600 * MiB },
    ]);
    const budgets = new DeviceBudgets([{ id: 0, bytes: 700 * MiB }, { id: 1, bytes: 700 * MiB }], 'lru', h);
    expect(budgets.status()).toEqual([{ gpu: 0, bytes: 700 * MiB, usedBytes: 600 * MiB }, { gpu: 1, bytes: 700 * MiB, usedBytes: 600 * MiB }]);
    await budgets.makeRoom(0, 'new', 200 * MiB, 'new');
    expect(h.evicted).toHaveLength(1);
    expect(['a', 'b']).toContain(h.evicted[0]);
    expect(budgets.usedBytes(1)).toBe(600 * MiB);
  });

  test('a GPU whose models are all busy refuses with a message that names the GPU budget', async () => {
    const h = host([{ id: 'a', gpu: 0, gpuBytes: 600 * MiB, busy: true }]);
    const budgets = new DeviceBudgets([{ id: 0, bytes: 700 * MiB }], 'gdsf', h);
    const refused = budgets.makeRoom(0, 'new', 200 * MiB, 'new', false);
    await expect(refused).rejects.toThrow(InsufficientMemoryError);
    await expect(refused).rejects.toThrow(/GPU 0 memory budget/);
    await expect(budgets.makeRoom(0, 'huge', 800 * MiB, 'huge', false)).rejects.toThrow(/alone needs about 800 MiB, more than the whole 700 MiB GPU 0 memory budget/);
    expect(h.evicted).toEqual([]);
    expect(budgets.describeTooBig('huge', 800 * MiB)).toMatch(/more than any GPU's budget \(the largest: 700 MiB/);
  });

  test('a GPU over its budget after a first run is reported', () => {
    const h = host([{ id: 'a', gpu: 0, gpuBytes: 800 * MiB }]);
    const budgets = new DeviceBudgets([{ id: 0, bytes: 700 * MiB }, { id: 1, bytes: 700 * MiB }], 'gdsf', h);
    expect(budgets.overBudget()).toEqual([{ gpu: 0, bytes: 700 * MiB, usedBytes: 800 * MiB }]);
    expect(budgets.largestBytes()).toBe(700 * MiB);
  });
});
