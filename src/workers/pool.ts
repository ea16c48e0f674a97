// The worker threads. Each slot is a piscina pool of exactly one thread, so the scheduler decides
// which thread runs a task (only threads that host a model get its requests) and each thread keeps
// its own FIFO queue. piscina still gives us the thread lifecycle, replacement on exit and transfers.
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { InferenceTimeoutError, WorkerFailedError, fromWireError } from '../errors';
import type {
  InferBatchResult, InferBatchTask, InferResult, InferTask, LoadResult, LoadTask, UnloadResult, UnloadTask, WarmUpResult, WarmUpTask, WorkerInit,
  WorkerResult, WorkerTask,
} from './messages';

const WORKER_FILE = path.join(__dirname, 'worker.js');

type ResultOf<T extends WorkerTask> = T extends InferTask ? InferResult
  : T extends InferBatchTask ? InferBatchResult
  : T extends LoadTask ? LoadResult
  : T extends UnloadTask ? UnloadResult
  : T extends WarmUpTask ? WarmUpResult
  : never;

export interface WorkerEvents {
  /** A thread was started in place of one that exited. */
  restarted?(slot: number): void;
  /** A thread failed outside any task. */
  failed?(slot: number, error: Error): void;
}

interface Waiting {
  task: WorkerTask;
  transferList: ArrayBuffer[];
  signal?: AbortSignal;
  settle(outcome: { result?: WorkerResult; error?: unknown }): void;
}

export class WorkerSlot {
  inFlight = 0;
  /**
   * Tasks wait here, first in first out, and piscina gets one only when the thread is free: its own
   * queue let a task with an AbortSignal wait behind later ones for a whole 3 s run (measured).
   */
  private readonly waiting: Waiting[] = [];
  private busy = false;
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
    return this.waiting.length;
  }

  /**
   * Runs a task on this worker's thread, after the tasks before it. When `signal` aborts, a waiting
   * task is dropped and a running one ends with its thread (piscina starts a new one), so a stuck task
   * never blocks the next.
   */
  async run<T extends WorkerTask>(task: T, transferList: ArrayBuffer[] = [], signal?: AbortSignal): Promise<ResultOf<T>> {
    this.inFlight++;
    let outcome: { result?: WorkerResult; error?: unknown };
    let drop: (() => void) | undefined;
    try {
      outcome = await new Promise((settle) => {
        const entry: Waiting = { task, transferList, signal, settle };
        if (signal) {
          drop = () => {
            const at = this.waiting.indexOf(entry);
            if (at >= 0) {
              this.waiting.splice(at, 1);
              settle({ error: signal.reason ?? new Error('aborted') });
            }
          };
          if (signal.aborted) return settle({ error: signal.reason ?? new Error('aborted') });
          signal.addEventListener('abort', drop, { once: true });
        }
        this.waiting.push(entry);
        this.next();
      });
    } finally {
      this.inFlight--;
      // The listener holds the task and its result: left on a signal that outlives the task, it kept
      // every answer of the last response_timeout seconds in memory.
      if (drop) signal!.removeEventListener('abort', drop);
    }
    if (outcome.error !== undefined || !outcome.result) {
      if (signal?.aborted) throw new InferenceTimeoutError(String(signal.reason ?? 'the task was aborted'));
      // The thread itself failed (it exited or ran out of heap); piscina starts a new one.
      throw new WorkerFailedError(`worker ${this.id} failed while running a ${task.kind} task: ${(outcome.error as Error)?.message ?? 'no result'}`);
    }
    if (!outcome.result.ok) throw fromWireError(outcome.result.error);
    return outcome.result as ResultOf<T>;
  }

  private next(): void {
    if (this.busy) return;
    const entry = this.waiting.shift();
    if (!entry) return;
    this.busy = true;
    this.piscina.run(entry.task, { transferList: entry.transferList, signal: entry.signal }).then(
      (result: WorkerResult) => entry.settle({ result }),
      (error: unknown) => entry.settle({ error }),
    ).finally(() => {
      this.busy = false;
      this.next();
    });
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}

export class WorkerPool {
  readonly slots: WorkerSlot[];

  constructor(
    size: number,
    private readonly init: WorkerInit,
    private readonly events: WorkerEvents = {},
  ) {
    this.slots = Array.from({ length: size }, (_, id) => new WorkerSlot(id, init, events));
  }

  /** Starts threads until there are `size` (each warmed up before it is used), as MMS starts a process per worker. */
  async growTo(size: number): Promise<void> {
    const added: WorkerSlot[] = [];
    while (this.slots.length < size) {
      const slot = new WorkerSlot(this.slots.length, this.init, this.events);
      this.slots.push(slot);
      added.push(slot);
    }
    await Promise.all(added.map((s) => s.run({ kind: 'warmUp' })));
  }

  slot(id: number): WorkerSlot {
    const slot = this.slots[id];
    if (!slot) throw new WorkerFailedError(`there is no worker ${id}`);
    return slot;
  }

  /** Sets onnxruntime up on every thread now, so that its fixed cost is in the server's idle memory. */
  async warmUp(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.run({ kind: 'warmUp' })));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}

/**
 * A signal that aborts after `ms`, and `clear` to drop its timer once the work is done (a pending
 * AbortSignal.timeout keeps what listens to it alive until it fires).
 */
export function deadlineSignal(ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms`)), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
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
