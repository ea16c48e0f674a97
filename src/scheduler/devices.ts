// Where a model's sessions run (CPU or a GPU) and which worker threads may hold them: pure functions
// over the device probe's answer, tested without threads or GPUs.
import { DeviceProbe, gpuOfWorker } from '../workers/device-probe';
import type { WorkerLoad } from './placement';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export const DEVICE_REQUESTS: readonly DeviceRequest[] = ['auto', 'cpu', 'cuda'];

export interface DeviceChoice {
  kind: 'cpu' | 'cuda';
  /** Why a model that could have run on a GPU (auto, cuda) runs on the CPU. */
  reason?: string;
}

/**
 * `cpu`: the CPU. `auto` and `cuda`: a GPU when there is one and onnxruntime's CUDA provider is
 * installed, else the CPU with the reason (a model asked onto `cuda` still serves, as TorchServe's do
 * on a machine without GPUs).
 */
export function chooseDevice(requested: DeviceRequest, probe: DeviceProbe): DeviceChoice {
  if (requested === 'cpu') return { kind: 'cpu' };
  if (probe.gpus.length === 0) return { kind: 'cpu', reason: `no GPU: ${probe.noGpuReason ?? 'none was found'}` };
  if (!probe.cudaProvider.available) return { kind: 'cpu', reason: probe.cudaProvider.reason ?? 'onnxruntime\'s CUDA provider is not available' };
  return { kind: 'cuda' };
}

/** A GPU's budget: `percent` of its memory less `reserveBytes` (CUDA's context and libraries), at least 0. */
export function gpuBudgetBytes(totalBytes: number, percent: number, reserveBytes: number): number {
  return Math.max(0, Math.floor((totalBytes * percent) / 100) - reserveBytes);
}

/**
 * The GPU worker threads a CUDA copy may go on, best first: the GPU with the most budget left, then the
 * least loaded thread on it; threads that host the model already are skipped.
 */
export function gpuCandidates(
  workers: readonly WorkerLoad[],
  gpuIds: readonly number[],
  freeBytes: (gpu: number) => number,
  alreadyHosting: ReadonlySet<number>,
): { worker: number; gpu: number }[] {
  return workers
    .filter((w) => !alreadyHosting.has(w.id) && gpuOfWorker(w.id, gpuIds) !== undefined)
    .map((w) => ({ w, gpu: gpuOfWorker(w.id, gpuIds)! }))
    .sort((a, b) => freeBytes(b.gpu) - freeBytes(a.gpu) || a.w.bytes - b.w.bytes || a.w.models - b.w.models || a.w.id - b.w.id)
    .map(({ w, gpu }) => ({ worker: w.id, gpu }));
}
