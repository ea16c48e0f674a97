// Entry of a pool worker thread: runs load, unload and infer tasks against its own sessions, taken on its task port.
// Every failure is returned as data, so a bad request never takes the thread down.
import { workerData } from 'piscina';
import { useNativeGate } from './native-gate';
import { toWireError } from '../errors';
import { kernelsForSession, selectImageKernels } from '../preprocess/kernels';
import { loadNative, releaseFreeMemory } from '../preprocess/native';
import { peakResidentBytes, residentBytes, resetPeakResident } from './process-memory';
import { runBatch, runInference } from './inference';
import type { MessagePort } from 'node:worker_threads';
import type {
  ConnectResult, ConnectTask, InferBatchResult, InferResult, LoadResult, PortAnswer, PortTask, WorkerInit, WorkerResult, WorkerTask,
} from './messages';
import { LoadedModel, SessionCache } from './session-cache';
import { transferableOutputs } from './transfer';
import { currentThreadId } from './thread-cpu';

const init = workerData as WorkerInit;
useNativeGate(init.nativeGate);
const sessions = new SessionCache({ intraOpThreads: init.intraOpThreads, interOpThreads: init.interOpThreads, gpu: init.gpu, fakeGpu: init.fakeGpus });
const imageKernels = selectImageKernels(init.preprocessBackend, init.fakeGpus ? undefined : init.gpu);
process.on('exit', () => imageKernels.close());
const tid = currentThreadId();

/**
 * What this thread's GPU has in use, less this thread's preprocessing buffers (counted apart): the whole
 * device's as CUDA reports it, so a delta also holds what other threads on that GPU did meanwhile; a fake
 * GPU's sessions' count.
 */
function gpuUsedBytes(): number {
  if (init.gpu === undefined) return 0;
  if (init.fakeGpus) return sessions.fakeGpuBytes();
  const info = loadNative().binding?.cudaMemoryInfo?.(init.gpu);
  return info ? info.total - info.free - imageKernels.deviceBytes() : 0;
}

/** A session's image path: its GPU's stream for a CUDA session, the CPU kernels otherwise. */
function kernelsFor(model: LoadedModel) {
  return kernelsForSession(imageKernels, model.device);
}

async function load(task: Extract<WorkerTask, { kind: 'load' }>): Promise<LoadResult> {
  await sessions.warmUp();
  // Freed pages go back first and after, so the difference is what the session holds, not the load's peak.
  releaseFreeMemory();
  const rssBefore = residentBytes();
  const gpuBefore = gpuUsedBytes();
  const peakKnown = resetPeakResident();
  const started = performance.now();
  const model = await sessions.ensure(task.model);
  const loadMs = performance.now() - started;
  const peak = peakKnown ? peakResidentBytes() : undefined;
  releaseFreeMemory();
  return {
    ok: true,
    kind: 'load',
    inputs: model.inputs,
    outputs: model.outputs,
    rssDeltaBytes: Math.max(0, residentBytes() - rssBefore),
    peakDeltaBytes: peak === undefined ? undefined : Math.max(0, peak - rssBefore),
    loadMs,
    preprocessing: kernelsFor(model).description,
    deviceBytes: imageKernels.deviceBytes(),
    device: model.device,
    ...(model.device === 'cuda' ? { gpu: init.gpu } : {}),
    ...(model.deviceFallback ? { deviceFallback: model.deviceFallback } : {}),
    gpuDeltaBytes: model.device === 'cuda' ? Math.max(0, gpuUsedBytes() - gpuBefore) : 0,
  };
}

/** A session's first run keeps memory (onnxruntime's arena grows to what the run needed): measured once. */
async function measuredFirstRun<T extends InferResult | InferBatchResult>(model: LoadedModel, run: () => Promise<T>): Promise<T> {
  if (model.ranOnce) return run();
  releaseFreeMemory();
  const before = residentBytes();
  const gpuBefore = gpuUsedBytes();
  const result = await run();
  model.ranOnce = true;
  // A fake GPU's arena grows on the first run as a real one does: by a quarter of the weights.
  if (model.fakeGpuBytes !== undefined) model.fakeGpuBytes += Math.round(model.fakeGpuBytes / 4);
  releaseFreeMemory();
  const gpu = model.device === 'cuda' ? { firstRunGpuBytes: Math.max(0, gpuUsedBytes() - gpuBefore) } : {};
  return { ...result, firstRunBytes: Math.max(0, residentBytes() - before), ...gpu };
}

// The pool sends short tasks ahead while one runs (pool.ts): tasks run one after another, in the order sent.
let turn: Promise<unknown> = Promise.resolve();

function handleTaskInTurn(task: WorkerTask): Promise<WorkerResult> {
  const result = turn.then(() => handleTask(task));
  turn = result;
  return result;
}

/** piscina's task: from now on this thread's tasks come on `port` (task-port.ts). */
export default function connect(task: ConnectTask): ConnectResult {
  task.port.on('message', (message: PortTask) => void answer(task.port, message));
  return { ok: true, kind: 'connect' };
}

async function answer(port: MessagePort, { id, task }: PortTask): Promise<void> {
  const result = await handleTaskInTurn(task);
  try {
    try {
      port.postMessage({ id, result } satisfies PortAnswer, transferableOutputs(result));
    } catch {
      // A buffer that cannot move (one the runtime still owns) goes as a copy.
      port.postMessage({ id, result } satisfies PortAnswer);
    }
  } catch (err) {
    port.postMessage({ id, result: { ok: false, error: toWireError(err, 'InferenceFailed') } } satisfies PortAnswer);
  }
}

async function handleTask(task: WorkerTask): Promise<WorkerResult> {
  try {
    switch (task.kind) {
      case 'load':
        return await load(task);
      case 'warmUp':
        await sessions.warmUp();
        releaseFreeMemory();
        return { ok: true, kind: 'warmUp' };
      case 'sessions':
        return { ok: true, kind: 'sessions', count: sessions.size };
      case 'unload': {
        const released = await sessions.release(task.key);
        releaseFreeMemory();
        return { ok: true, kind: 'unload', released };
      }
      case 'infer': {
        const model = await sessions.forTask(task.key, task.model);
        const result = await measuredFirstRun(model, () => runInference(model, task.request, { maxImagePixels: init.maxImagePixels, kernels: kernelsFor(model).kernels }));
        if (tid !== undefined) result.tid = tid;
        return result;
      }
      case 'inferBatch': {
        const model = await sessions.forTask(task.key, task.model);
        const results = () => runBatch(model, task.requests, { maxImagePixels: init.maxImagePixels, kernels: kernelsFor(model).kernels }, task.maxRows);
        return await measuredFirstRun(model, async () => ({ ok: true as const, kind: 'inferBatch' as const, ...await results(), ...(tid !== undefined ? { tid } : {}) }));
      }
    }
  } catch (err) {
    return { ok: false, error: toWireError(err, task.kind === 'infer' || task.kind === 'inferBatch' ? 'InferenceFailed' : 'ModelLoadFailed') };
  }
}
