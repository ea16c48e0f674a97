// The worker threads. Each slot is a piscina pool of exactly one thread, so the scheduler decides
// which thread runs a task (only threads that host a model get its requests) and each thread keeps
// its own FIFO queue. piscina still gives us the thread lifecycle, replacement on exit and transfers.
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { InferenceTimeoutError, WorkerFailedError, fromWireError } from '../errors';
import type {
  InferBatchResult, InferBatchTask, InferResult, InferTask, LoadResult, LoadTask, UnloadResult, UnloadTask, WorkerInit, WorkerResult, WorkerTask,
} from './messages';

const WORKER_FILE = path.join(__dirname, 'worker.js');

type ResultOf<T extends WorkerTask> = T extends InferTask ? InferResult
  : T extends InferBatchTask ? InferBatchResult
  : T extends LoadTask ? LoadResult
  : T extends UnloadTask ? UnloadResult
  : never;

export interface WorkerEvents {
  /** A thread was started in place of one that exited. */
  restarted?(slot: number): void;
  /** A thread failed outside any task. */
  failed?(slot: number, error: Error): void;
}

export class WorkerSlot {
  inFlight = 0;
  readonly startedAt = new Date();
  private readonly piscina: Piscina<WorkerTask, WorkerResult>;
  private threadsStarted = 0;

  constructor(readonly id: number, init: WorkerInit, events: WorkerEvents = {}) {
    this.piscina = new Piscina({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      concurrentTasksPerWorker: 1,
      workerData: init,
      ...(init.heapLimitMb > 0 ? { resourceLimits: { maxOldGenerationSizeMb: init.heapLimitMb } } : {}),
    });
    this.piscina.on('workerCreate', () => {
      if (++this.threadsStarted > 1) events.restarted?.(id);
    });
    // piscina reports a thread's failure outside a task as an 'error' event; unheard, it would end the process.
    this.piscina.on('error', (err: Error) => events.failed?.(id, err));
  }

  get threadId(): number | undefined {
    return this.piscina.threads[0]?.threadId;
  }

  get queued(): number {
    return this.piscina.queueSize;
  }

  /**
   * Runs a task on this worker's thread. When `signal` aborts, a queued task is dropped and a running
   * one ends with its thread (piscina starts a new one), so a stuck task never blocks the next.
   */
  async run<T extends WorkerTask>(task: T, transferList: ArrayBuffer[] = [], signal?: AbortSignal): Promise<ResultOf<T>> {
    this.inFlight++;
    let result: WorkerResult;
    try {
      result = await this.piscina.run(task, { transferList, signal });
    } catch (err) {
      if (signal?.aborted) throw new InferenceTimeoutError(String(signal.reason ?? 'the task was aborted'));
      // The thread itself failed (it exited or ran out of heap); piscina starts a new one.
      throw new WorkerFailedError(`worker ${this.id} failed while running a ${task.kind} task: ${(err as Error).message}`);
    } finally {
      this.inFlight--;
    }
    if (!result.ok) throw fromWireError(result.error);
    return result as ResultOf<T>;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}

export class WorkerPool {
  readonly slots: WorkerSlot[];

  constructor(size: number, init: WorkerInit, events: WorkerEvents = {}) {
    this.slots = Array.from({ length: size }, (_, id) => new WorkerSlot(id, init, events));
  }

  slot(id: number): WorkerSlot {
    const slot = this.slots[id];
    if (!slot) throw new WorkerFailedError(`there is no worker ${id}`);
    return slot;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}

/** The body's memory can move to the worker only when the Buffer owns all of it (not a pooled slice). */
export function transferableBody(body: Uint8Array): { body: Uint8Array; transfer: ArrayBuffer[] } {
  if (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer) {
    return { body, transfer: [body.buffer] };
  }
  const copy = new Uint8Array(body.byteLength);
  copy.set(body);
  return { body: copy, transfer: [copy.buffer] };
}
