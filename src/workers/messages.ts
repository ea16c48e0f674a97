// Every message that crosses the thread boundary between the server and a pool worker.
import type { MessagePort } from 'node:worker_threads';
import type { PreprocessBackend } from '../config/schema';
import type { WireError } from '../errors';
import type { ModelConfig } from '../models/model-config';
import type { TensorInfo } from '../preprocess/tensor-types';
import type { OipFraming } from '../oip/request';

/** Given to each worker at start (piscina workerData). */
export interface WorkerInit {
  intraOpThreads: number;
  interOpThreads: number;
  maxImagePixels: number;
  preprocessBackend: PreprocessBackend;
  /** V8 old-generation limit of each worker thread in MiB; 0 keeps Node's default. */
  heapLimitMb: number;
  /** The GPUs worker threads are spread over (worker i on gpuIds[i mod n]); empty: none. */
  gpuIds?: number[];
  /** QUIVER_FAKE_GPUS: a CUDA session runs on the CPU and its device memory is counted, not allocated. */
  fakeGpus?: boolean;
  /** This thread's GPU, set per worker from gpuIds. */
  gpu?: number;
  /** Held by the thread across onnxruntime's native calls (native-gate.ts), set per worker. */
  nativeGate?: Int32Array;
}

/** All a worker needs to load a model by itself, also after it was replaced. */
export interface ModelSpec {
  /** Unique per registration, so a re-registered model never meets a stale session. */
  key: string;
  name: string;
  version: string;
  modelPath: string;
  config: ModelConfig;
  labels?: string[];
  handlerPath?: string;
  /** Where its sessions run: `cuda` on the worker's GPU (the CPU when that fails, with the reason); absent: the CPU. */
  device?: 'cpu' | 'cuda';
}

export interface InferRequest {
  body: Uint8Array;
  contentType: string;
  customAttributes?: string;
  requestId: string;
  /** Epoch ms when the server handed the task to the pool, to measure time in the queue. */
  enqueuedAt: number;
  /** An Open Inference Protocol request: tensors in, tensors out (the model's own outputs). */
  oip?: OipFraming;
}

export interface LoadTask {
  kind: 'load';
  model: ModelSpec;
}

export interface UnloadTask {
  kind: 'unload';
  key: string;
}

/** Sets onnxruntime up on the thread, so that the server's fixed cost is paid before any model loads. */
export interface WarmUpTask {
  kind: 'warmUp';
}

/** How many sessions the thread holds: checked against what the lifecycle says is loaded. */
export interface SessionsTask {
  kind: 'sessions';
}

/**
 * A request names its model by key: the spec (config, labels: kilobytes to clone) crosses only with
 * the load, or once more to a thread that replaced one that exited.
 */
export interface InferTask {
  kind: 'infer';
  key: string;
  model?: ModelSpec;
  request: InferRequest;
}

/** Several requests for one model, run together when their inputs stack. */
export interface InferBatchTask {
  kind: 'inferBatch';
  key: string;
  model?: ModelSpec;
  requests: InferRequest[];
  /** The model's batch size: no run stacks more rows than this. */
  maxRows: number;
}

/** piscina's one task: the thread takes its tasks on `port` from now on (task-port.ts). */
export interface ConnectTask {
  kind: 'connect';
  port: MessagePort;
}

export interface ConnectResult {
  ok: true;
  kind: 'connect';
}

/** A task on a thread's port, answered by a PortAnswer with the same id. */
export interface PortTask {
  id: number;
  task: WorkerTask;
}

export interface PortAnswer {
  id: number;
  result: WorkerResult;
}

export type WorkerTask = LoadTask | UnloadTask | WarmUpTask | SessionsTask | InferTask | InferBatchTask;

export interface LoadResult {
  ok: true;
  kind: 'load';
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Growth of the process's resident memory while the session was created (loads are serialized). */
  rssDeltaBytes: number;
  /** Highest resident memory during the load above where it started; undefined where it cannot be read. */
  peakDeltaBytes?: number;
  loadMs: number;
  /** Which path image requests take on this worker (native-cuda, native-cpu, sharp+typescript). */
  preprocessing: string;
  /** Device memory the worker's preprocessing holds (CUDA staging), 0 on the CPU. */
  deviceBytes: number;
  /** Where the session runs: `cuda` only when it was created on the worker's GPU. */
  device: 'cpu' | 'cuda';
  gpu?: number;
  /** Why a session asked onto the GPU runs on the CPU (its CUDA provider failed). */
  deviceFallback?: string;
  /** Growth of the GPU's used memory across the load (loads are serialized), 0 on the CPU. */
  gpuDeltaBytes: number;
}

export interface UnloadResult {
  ok: true;
  kind: 'unload';
  released: boolean;
}

export interface SessionsResult {
  ok: true;
  kind: 'sessions';
  count: number;
}

export interface WarmUpResult {
  ok: true;
  kind: 'warmUp';
}

export interface StageTimings {
  queueMs: number;
  preprocessMs: number;
  inferenceMs: number;
  postprocessMs: number;
}

export type PreprocessPath = 'image:native-cuda' | 'image:native-cpu' | 'image:typescript' | 'tensor-json' | 'tensor-oip' | 'handler';

export interface InferResult {
  ok: true;
  kind: 'infer';
  contentType: string;
  /** JSON text; with `binary`, the JSON header that describes its sections. */
  body: string;
  /** OIP binary tensor data: the output sections that follow the header, in its order. */
  binary?: Uint8Array;
  timings: StageTimings;
  /** Which preprocessing path turned the body into tensors. */
  preprocessPath: PreprocessPath;
  /** Requests in the onnxruntime run that answered this one. */
  batchSize: number;
  /** This request's rows along dimension 0 of its first input (by name), and the whole run's: what Triton counts as inferences of a batching model. */
  rows?: number;
  runRows?: number;
  /** On a session's first run only: the memory that run kept (its arena's first chunks). */
  firstRunBytes?: number;
  /** On a CUDA session's first run only: the device memory that run kept. */
  firstRunGpuBytes?: number;
  /** The kernel id of the thread that ran it, so the pool can read its CPU time (cpu-share.ts). */
  tid?: number;
}

export interface FailedResult {
  ok: false;
  error: WireError;
}

export interface InferBatchResult {
  ok: true;
  kind: 'inferBatch';
  /** One per request, in order; a request that failed alone carries its error. */
  results: (InferResult | FailedResult)[];
  /** Requests in each onnxruntime run the batch took (batch_size bounds a run's rows). */
  runs: number[];
  /** On a session's first run only: the memory that run kept. */
  firstRunBytes?: number;
  firstRunGpuBytes?: number;
  tid?: number;
}

export type WorkerResult = LoadResult | UnloadResult | WarmUpResult | SessionsResult | InferResult | InferBatchResult | FailedResult;
