// Which GPUs this process may put sessions on, and whether onnxruntime-node can: the CUDA build of the
// addon counts the devices, and onnxruntime's CUDA provider must be in its bin/ folder (its install
// script puts it there when ONNXRUNTIME_NODE_INSTALL=cuda12). QUIVER_FAKE_GPUS stands in for both where
// there is no GPU (tests, CI): a fake GPU's sessions run on the CPU and its memory is simulated.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidConfigError } from '../errors';
import { loadNative } from '../preprocess/native';

export interface GpuDevice {
  id: number;
  totalBytes: number;
}

export interface DeviceProbe {
  /** The GPUs sessions may use (gpu_ids of those present). */
  gpus: GpuDevice[];
  /** Why no GPU is used; absent when there is one. */
  noGpuReason?: string;
  /** Whether onnxruntime can create CUDA sessions here, and why not. */
  cudaProvider: { available: boolean; reason?: string };
  /** Set by QUIVER_FAKE_GPUS: the GPUs are simulated. */
  fake: boolean;
}

export const FAKE_GPUS_ENV = 'QUIVER_FAKE_GPUS';
const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** `2x16GiB`, `1x512MiB,no-provider`: count × memory per GPU, and whether the CUDA provider is "installed". */
export function parseFakeGpus(text: string): { count: number; totalBytes: number; provider: boolean } {
  const m = /^(\d+)x(\d+)(GiB|MiB)(,no-provider)?$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InvalidConfigError(`${FAKE_GPUS_ENV} must look like 2x16GiB or 1x512MiB,no-provider; got "${text}"`);
  }
  return { count: Number(m[1]), totalBytes: Number(m[2]) * (m[3] === 'GiB' ? GiB : MiB), provider: m[4] === undefined };
}

/** gpu_ids as configured: whole numbers; empty means every GPU present. */
export function parseGpuIds(items: readonly string[]): number[] {
  return items.map((item) => {
    if (!/^\d+$/.test(item)) throw new InvalidConfigError(`gpu_ids: expected whole numbers (CUDA device ordinals), got "${item}"`);
    return Number(item);
  });
}

/** The GPUs of `present` that gpu_ids names (all when it names none); an id that is not there is a config error. */
export function selectGpus(present: readonly GpuDevice[], gpuIds: readonly number[]): GpuDevice[] {
  if (gpuIds.length === 0) return [...present];
  const missing = gpuIds.filter((id) => !present.some((g) => g.id === id));
  if (missing.length > 0) {
    throw new InvalidConfigError(`gpu_ids names ${missing.join(', ')}, but ${present.length === 0 ? 'there is no GPU' : `the GPUs are ${present.map((g) => g.id).join(', ')}`}`);
  }
  return [...new Set(gpuIds)].map((id) => present.find((g) => g.id === id)!);
}

/** Worker threads are spread over the GPUs in turn: worker i is on gpuIds[i mod n]. */
export function gpuOfWorker(workerId: number, gpuIds: readonly number[]): number | undefined {
  return gpuIds.length === 0 ? undefined : gpuIds[workerId % gpuIds.length];
}

/** onnxruntime-node's CUDA provider library, where its install script puts it. */
export function cudaProviderLibrary(): string | undefined {
  try {
    const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const binary = path.join(root, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
    return fs.existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

export function probeDevices(gpuIds: readonly number[], env: NodeJS.ProcessEnv = process.env): DeviceProbe {
  const fakeText = env[FAKE_GPUS_ENV];
  if (fakeText) {
    const fake = parseFakeGpus(fakeText);
    const present = Array.from({ length: fake.count }, (_, id) => ({ id, totalBytes: fake.totalBytes }));
    return {
      gpus: selectGpus(present, gpuIds),
      cudaProvider: fake.provider ? { available: true } : { available: false, reason: `onnxruntime's CUDA provider is not installed (${FAKE_GPUS_ENV} says so)` },
      fake: true,
    };
  }
  const provider = cudaProviderLibrary()
    ? { available: true }
    : { available: false, reason: 'onnxruntime\'s CUDA provider is not installed (install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12; CUDA 12 and cuDNN 9 must be present)' };
  const { binding, error } = loadNative();
  if (!binding) return { gpus: [], noGpuReason: `the native addon did not load: ${error}`, cudaProvider: provider, fake: false };
  const cuda = binding.capabilities().cuda;
  if (!cuda.compiled || !binding.cudaMemoryInfo) {
    // Without the CUDA build there is nothing to count devices with; gpu_ids cannot be checked either.
    return { gpus: [], noGpuReason: 'the addon was built without CUDA (npm run build:cuda)', cudaProvider: provider, fake: false };
  }
  if (cuda.deviceCount === 0) {
    if (gpuIds.length > 0) selectGpus([], gpuIds);
    return { gpus: [], noGpuReason: `no CUDA device${cuda.error ? `: ${cuda.error}` : ''}`, cudaProvider: provider, fake: false };
  }
  // Only the GPUs gpu_ids names are asked for their memory: asking makes a CUDA context on that device.
  const ids = Array.from({ length: cuda.deviceCount }, (_, id) => id);
  const wanted = selectGpus(ids.map((id) => ({ id, totalBytes: 0 })), gpuIds).map((g) => g.id);
  const gpus: GpuDevice[] = [];
  const failures: string[] = [];
  for (const id of wanted) {
    try {
      gpus.push({ id, totalBytes: binding.cudaMemoryInfo(id).total });
    } catch (err) {
      failures.push(`GPU ${id}: ${(err as Error).message}`);
    }
  }
  return { gpus, ...(gpus.length === 0 ? { noGpuReason: failures.join('; ') } : {}), cudaProvider: provider, fake: false };
}
