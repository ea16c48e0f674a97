// What GET /models/{name} says about a model: MMS's describe fields plus where it is placed, what it
// costs, and how its requests are preprocessed. A pure function of the registry record and placement.
import { redactedUrl } from '../models/remote-artifact';
import type { ModelRecord } from '../models/registry';
import type { TensorInfo } from '../preprocess/tensor-types';
import type { InferResult, ModelSpec } from '../workers/messages';
import type { ModelBatcher } from './batcher';
import type { DeviceChoice } from './devices';

export interface HostInfo {
  memoryBytes: number;
  /** The load's peak above where it started (it holds the parsed file for a moment); undefined if unknown. */
  loadPeakBytes?: number;
  loadMs: number;
  loadedAt: Date;
  preprocessing: string;
  deviceBytes: number;
  /** Where this copy's session runs: `cuda` on `gpu`. */
  device: 'cpu' | 'cuda';
  gpu?: number;
  /** Device memory the copy holds (its load and first run), 0 on the CPU. */
  gpuBytes: number;
  /** Why a copy asked onto the GPU runs on the CPU. */
  deviceFallback?: string;
  /** Tasks of this generation sent to that thread and not yet answered (a scale-down waits for them). */
  running: number;
}

/** One generation of a model version: one load's copies on their threads, and their batcher. */
export interface Placement {
  /** Which load of the version this is; the worker sessions' key carries it. */
  generation: number;
  spec: ModelSpec;
  /** Present when the model batches (batch_size > 1 and a free batch dimension). */
  batcher?: ModelBatcher;
  hosts: Map<number, HostInfo>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Requests that hold a lease on this generation (src/scheduler/lifecycle.ts). */
  leases: number;
  cursor: number;
  lastPreprocessPath?: InferResult['preprocessPath'];
  /** Requests answered since it was loaded, and when the last one came (for eviction). */
  hits: number;
  lastUsed: number;
  /** What the load was predicted to cost, before it was measured. */
  predictedBytes: number;
  /** Where its copies were asked to run, and why the CPU when a GPU was asked for. */
  device: DeviceChoice;
}

export interface WorkerDescription {
  id: string;
  startTime: string;
  status: 'READY';
  gpu: boolean;
  /** `cpu`, or `cuda:<id>`. */
  device: string;
  memoryUsage: number;
  /** Device memory of the copy, when on a GPU. */
  gpuMemoryUsage?: number;
  /** Why it runs on the CPU though a GPU was asked for. */
  deviceFallback?: string;
  loadPeakBytes?: number;
  loadTimeMs: number;
  preprocessing: string;
}

export interface ModelDescription {
  modelName: string;
  modelVersion: string;
  modelUrl: string;
  engine: 'onnxruntime';
  runtime: 'node';
  status: string;
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  maxBatchDelay: number;
  responseTimeout: number;
  loadedAtStartup: boolean;
  modelBytes: number;
  memoryBytes: number;
  /** The prediction made before the load (from the file size, or an earlier measurement). */
  predictedBytes: number;
  lastUsed?: string;
  hits: number;
  inFlight: number;
  preprocessing: string;
  lastPreprocessPath?: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  workers: WorkerDescription[];
  /** Where it runs (`cpu` or `cuda`), as asked (`auto`, `cpu`, `cuda`) and chosen. */
  device: string;
  deviceRequested: string;
  /** Why it runs on the CPU though it could have run on a GPU. */
  deviceReason?: string;
  /** Why a lazy registration's load failed. */
  error?: string;
}

/** `predictedBytes`: what the next load would be predicted to cost, shown while the model is not placed. */
/**
 * `explainCpu`: give the reason a model runs on the CPU (when it asked for cuda, or the server has GPUs;
 * a CPU-only server says once at start-up why `auto` models run on the CPU).
 */
export function describeModel(record: ModelRecord, placement: Placement | undefined, predictedBytes = 0, unplacedDevice?: DeviceChoice, explainCpu = true): ModelDescription {
  const settings = record.settings;
  const workers = placement
    ? [...placement.hosts].map(([id, host]) => ({
        id: String(id),
        startTime: host.loadedAt.toISOString(),
        status: 'READY' as const,
        gpu: host.device === 'cuda',
        device: host.device === 'cuda' ? `cuda:${host.gpu}` : 'cpu',
        memoryUsage: host.memoryBytes,
        ...(host.device === 'cuda' ? { gpuMemoryUsage: host.gpuBytes } : {}),
        ...(host.deviceFallback ? { deviceFallback: host.deviceFallback } : {}),
        loadPeakBytes: host.loadPeakBytes,
        loadTimeMs: Math.round(host.loadMs * 10) / 10,
        preprocessing: host.preprocessing,
      }))
    : [];
  return {
    modelName: record.name,
    modelVersion: record.version ?? record.pkg?.version ?? '',
    modelUrl: redactedUrl(record.url),
    engine: 'onnxruntime',
    runtime: 'node',
    status: record.state.toUpperCase(),
    minWorkers: settings?.minWorkers ?? 0,
    maxWorkers: settings?.maxWorkers ?? 0,
    batchSize: settings?.batchSize ?? 1,
    maxBatchDelay: settings?.maxBatchDelayMs ?? 0,
    responseTimeout: settings?.responseTimeoutS ?? 0,
    loadedAtStartup: record.loadedAtStartup,
    modelBytes: record.pkg?.modelBytes ?? 0,
    memoryBytes: workers.reduce((sum, w) => sum + w.memoryUsage, 0),
    predictedBytes: placement?.predictedBytes ?? predictedBytes,
    lastUsed: placement && placement.lastUsed > 0 ? new Date(placement.lastUsed).toISOString() : undefined,
    hits: placement?.hits ?? 0,
    inFlight: placement?.leases ?? 0,
    preprocessing: !record.pkg?.config.image ? 'none' : workers[0]?.preprocessing ?? 'unplaced',
    lastPreprocessPath: placement?.lastPreprocessPath,
    inputs: placement?.inputs ?? [],
    outputs: placement?.outputs ?? [],
    workers,
    ...deviceFields(settings?.device ?? 'auto', placement, unplacedDevice, explainCpu),
    ...(record.error !== undefined ? { error: record.error } : {}),
  };
}


/** Where a version runs: its copies' device, else what its next load would choose. */
function deviceFields(requested: string, placement: Placement | undefined, unplaced: DeviceChoice | undefined, explainCpu: boolean): Pick<ModelDescription, 'device' | 'deviceRequested' | 'deviceReason'> {
  const hosts = placement ? [...placement.hosts.values()] : [];
  const choice = placement?.device ?? unplaced ?? { kind: 'cpu' as const };
  const onGpu = hosts.length > 0 ? hosts.some((h) => h.device === 'cuda') : choice.kind === 'cuda';
  const fallback = hosts.find((h) => h.deviceFallback)?.deviceFallback;
  const reason = onGpu || !explainCpu ? undefined : choice.reason ?? fallback;
  return { device: onGpu ? 'cuda' : 'cpu', deviceRequested: requested, ...(reason ? { deviceReason: reason } : {}) };
}
