// The worker threads. Each slot is a piscina pool of exactly one thread, so the scheduler decides
// which thread runs a task (only threads that host a model get its requests) and each thread keeps
// its own queue, one lane per model served in fair turns. piscina gives us the thread's life (start,
// replacement on exit, termination); tasks cross on a port of the slot's own (task-port.ts).
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { ClientDisconnectedError, InferenceTimeoutError, WorkerFailedError, fromWireError } from '../errors';
import { MAX_TASKS_ON_THREAD, activatedTime, chargedTime, mayPrefetch, nextLane, serviceEstimate } from '../scheduler/fair-share';
import type { Abortable } from './cancel-signal';
import { gpuOfWorker } from './device-probe';
import { NativeGate, closeNativeGate, newNativeGate, openNativeGate } from './native-gate';
import type {
  ConnectResult, ConnectTask, InferBatchResult, InferRequest, InferResult, LoadResult, LoadTask, ModelSpec, SessionsResult, SessionsTask, UnloadResult, UnloadTask,
  WarmUpResult, WarmUpTask, WorkerInit, WorkerResult, WorkerTask,
} from './messages';
import { TaskPort } from './task-port';

const WORKER_FILE = path.join(__dirname, 'worker.js');

/** What the scheduler asks of a slot; the slot sends requests to the thread by key (see InferTask). */
export type SlotTask = LoadTask | UnloadTask | WarmUpTask | SessionsTask
  | { kind: 'infer'; model: ModelSpec; request: InferRequest }
  | { kind: 'inferBatch'; model: ModelSpec; requests: InferRequest[]; maxRows: number };

type ResultOf<T extends SlotTask> = T extends { kind: 'infer' } ? InferResult
  : T extends { kind: 'inferBatch' } ? InferBatchResult
  : T extends LoadTask ? LoadResult
  : T extends UnloadTask ? UnloadResult
  : T extends WarmUpTask ? WarmUpResult
  : T extends SessionsTask ? SessionsResult
  : never;

export interface WorkerEvents {
  /** A thread was started in place of one that exited. */
  restarted?(slot: number): void;
  /** A thread failed outside any task. */
  failed?(slot: number, error: Error): void;
}

interface Waiting {
  task: SlotTask;
  transferList: ArrayBuffer[];
  signal?: Abortable;
  seq: number;
  /** Sent again once already: a task sent ahead whose thread ended before it started. */
  resent?: boolean;
  /** A task sent ahead moves its bodies to the thread; this copy is sent instead if the thread ends before it starts. */
  resend?: { task: SlotTask; transferList: ArrayBuffer[] };
  settle(outcome: { result?: WorkerResult; error?: unknown; cancelled?: boolean }): void;
}

/** One model's tasks on this thread, first in first out, the thread time it has used and one run's expected time. */
interface Lane {
  waiting: Waiting[];
  usedMs: number;
  expectedMs?: number;
  /** A paced model's thread waits until then before its next task (cpu-share.ts). */
  heldUntil?: number;
  /** Pace its runs owe, paid in holds (held()); below zero, a late timer's credit. */
  debtMs?: number;
}

/** What a model used on this thread since the last reading: the CPU pacer's input (cpu-share.ts). */
export interface LaneUsage {
  busyMs: number;
  requests: number;
  waiting: number;
}

/** A task handed to the thread; `ahead` while the task before it still runs (it was sent ahead, fair-share.ts). */
interface Posted {
  entry: Waiting;
  key: string;
  lane: Lane;
  ahead: boolean;
}

function laneKey(task: SlotTask): string {
  switch (task.kind) {
    case 'warmUp':
    case 'sessions':
      return '';
    case 'unload':
      return task.key;
    default:
      return task.model.key;
  }
}

const isInfer = (task: SlotTask) => task.kind === 'infer' || task.kind === 'inferBatch';

/** Tasks on the thread at once: the running one and those sent ahead (fair-share.ts). The worker runs them in turn. */
const PIPELINE_DEPTH = MAX_TASKS_ON_THREAD;
/** The shortest hold of a paced lane (pool.ts held()). */
const HOLD_QUANTUM_MS = 4;
/** How long close() waits for a run in progress: past it, the thread is ended anyway (its process is exiting). */
const CLOSE_WAIT_MS = 30_000;

/**
 * A worker's young generation. V8 grows it to tens of MiB per thread while a thread allocates, and what it
 * holds shows as RSS that churn never gives back: 300 evict/reload cycles of the recogniser grew RSS 15.8%
 * with the default and 4.7% with 3 MiB, at the same speed (bench:churn, 2026-12-03). A worker's tensors
 * and images are ArrayBuffers outside the young generation.
 */
const WORKER_YOUNG_GENERATION_MB = 3;

/** The task with copies of its request bodies, and their buffers to move; undefined when a body was moved away already (its send fails too). */
function withCopiedBodies(task: SlotTask): { task: SlotTask; transferList: ArrayBuffer[] } | undefined {
  const transferList: ArrayBuffer[] = [];
  const copied = (request: InferRequest): InferRequest => {
    const body = new Uint8Array(request.body);
    transferList.push(body.buffer);
    return { ...request, body };
  };
  try {
    if (task.kind === 'infer') return { task: { ...task, request: copied(task.request) }, transferList };
    if (task.kind === 'inferBatch') return { task: { ...task, requests: task.requests.map(copied) }, transferList };
    return { task, transferList };
  } catch {
    return undefined;
  }
}

export class WorkerSlot {
  inFlight = 0;
  /**
   * Tasks wait here, in one lane per model, and the thread gets one only when it is free (or, for a
   * short task, about to be): its own queue let a task with an AbortSignal wait behind later ones for a
   * whole 3 s run (measured), and one FIFO for all models made a 2 ms classifier wait behind every 200 ms
   * detector run before it.
   */
  private readonly lanes = new Map<string, Lane>();
  private readonly posted: Posted[] = [];
  private floorMs = 0;
  private seq = 0;
  private queuedCount = 0;
  /** When the thread last finished a task: a task sent ahead starts then, not when it was sent. */
  private lastDoneAt = 0;
  /** Models the current thread has loaded: a request for one of them crosses as its key alone. */
  private readonly threadHas = new Set<string>();
  readonly startedAt = new Date();
  private readonly piscina: Piscina<ConnectTask, ConnectResult>;
  private readonly tasks: TaskPort;
  private threadsStarted = 0;
  /** The kernel id of the current thread, as its last answer said. */
  tid: number | undefined;
  private usage = new Map<string, LaneUsage>();
  /** Busy time before this was counted at the last takeUsage(). */
  private usageFrom = 0;
  private paces: ReadonlyMap<string, number> = new Map();
  private holdTimer: NodeJS.Timeout | undefined;
  /** The thread is ended only through it (native-gate.ts). */
  private readonly gate: NativeGate = newNativeGate();

  constructor(readonly id: number, init: WorkerInit, events: WorkerEvents = {}) {
    this.piscina = new Piscina({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // Its one task per thread is the hand-over of the task port, and a thread waiting in Atomics.wait would not hear the port.
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      recordTiming: false,
      workerData: { ...init, gpu: gpuOfWorker(id, init.gpuIds ?? []), nativeGate: this.gate },
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB, ...(init.heapLimitMb > 0 ? { maxOldGenerationSizeMb: init.heapLimitMb } : {}) },
    });
    this.tasks = new TaskPort((port) => this.piscina.run({ kind: 'connect', port }, { transferList: [port] }));
    this.piscina.on('workerCreate', () => {
      openNativeGate(this.gate);
      this.tasks.threadStarted();
      if (++this.threadsStarted > 1) {
        // A new thread has no sessions: the next request of each model carries its spec again.
        this.threadHas.clear();
        events.restarted?.(id);
      }
    });
    // piscina reports a thread's failure outside a task as an 'error' event; unheard, it would end the process.
    this.piscina.on('error', (err: Error) => events.failed?.(id, err));
  }

  get threadId(): number | undefined {
    return this.piscina.threads[0]?.threadId;
  }

  get queued(): number {
    return this.queuedCount;
  }

  /**
   * Runs a task on this worker's thread, after the same model's tasks before it and in fair turns with
   * other models' (fair-share.ts). When `signal` aborts, a waiting task is dropped and a running one ends
   * with its thread (piscina starts a new one), so a stuck task never blocks the next.
   */
  async run<T extends SlotTask>(task: T, transferList: ArrayBuffer[] = [], signal?: Abortable, cancel?: Abortable): Promise<ResultOf<T>> {
    this.inFlight++;
    let outcome: { result?: WorkerResult; error?: unknown; cancelled?: boolean };
    let onSignal: (() => void) | undefined;
    let dropCancelled: (() => void) | undefined;
    try {
      outcome = await new Promise((settle) => {
        const entry: Waiting = { task, transferList, signal, settle, seq: this.seq++ };
        const key = laneKey(task);
        const dequeue = (why: { error: unknown; cancelled?: boolean }): boolean => {
          const lane = this.lanes.get(key);
          const at = lane ? lane.waiting.indexOf(entry) : -1;
          if (!lane || at < 0) return false;
          lane.waiting.splice(at, 1);
          this.queuedCount--;
          settle(why);
          return true;
        };
        if (signal) {
          onSignal = () => {
            if (!dequeue({ error: signal.reason ?? new Error('aborted') })) this.endIfRunning(entry);
          };
          if (signal.aborted) return settle({ error: signal.reason ?? new Error('aborted') });
          signal.addEventListener('abort', onSignal, { once: true });
        }
        // Unlike `signal`, a cancel only takes a task off the queue: a running one is never ended for it.
        if (cancel) {
          dropCancelled = () => void dequeue({ error: cancel.reason, cancelled: true });
          if (cancel.aborted) return settle({ error: cancel.reason, cancelled: true });
          cancel.addEventListener('abort', dropCancelled, { once: true });
        }
        let lane = this.lanes.get(key);
        if (!lane) {
          lane = { waiting: [], usedMs: this.floorMs };
          this.lanes.set(key, lane);
        } else if (lane.waiting.length === 0) {
          lane.usedMs = activatedTime(lane.usedMs, this.floorMs);
        }
        lane.waiting.push(entry);
        this.queuedCount++;
        this.next();
      });
    } finally {
      this.inFlight--;
      // The listener holds the task and its result: left on a signal that outlives the task, it kept
      // every answer of the last response_timeout seconds in memory.
      if (onSignal) signal!.removeEventListener('abort', onSignal);
      if (dropCancelled) cancel!.removeEventListener('abort', dropCancelled);
    }
    if (outcome.cancelled) throw new ClientDisconnectedError('the client went away while its request was queued; it was dropped');
    if (outcome.error !== undefined || !outcome.result) {
      if (signal?.aborted) throw new InferenceTimeoutError(String(signal.reason ?? 'the task was aborted'));
      // The thread itself failed (it exited or ran out of heap); piscina starts a new one.
      throw new WorkerFailedError(`worker ${this.id} failed while running a ${task.kind} task: ${(outcome.error as Error)?.message ?? 'no result'}`);
    }
    if (!outcome.result.ok) throw fromWireError(outcome.result.error);
    return outcome.result as ResultOf<T>;
  }

  /** Ends the thread when `entry` is the task it runs (piscina starts a new one); a task sent ahead waits for it. */
  private endIfRunning(entry: Waiting): void {
    const head = this.posted[0];
    if (head?.entry === entry && !head.ahead) void this.endThread();
  }

  /** Ends the thread once it is outside onnxruntime (native-gate.ts); piscina starts a new one. */
  private async endThread(): Promise<void> {
    const thread = this.piscina.threads[0];
    if (!thread) return;
    if (await closeNativeGate(this.gate, Infinity, () => this.piscina.threads[0] === thread)) await thread.terminate();
  }

  /** The wire message: requests by key, with the spec only where this thread has not loaded the model. */
  private toWire(task: SlotTask): WorkerTask {
    if (task.kind === 'infer') {
      return { kind: 'infer', key: task.model.key, model: this.threadHas.has(task.model.key) ? undefined : task.model, request: task.request };
    }
    if (task.kind === 'inferBatch') {
      return { kind: 'inferBatch', key: task.model.key, model: this.threadHas.has(task.model.key) ? undefined : task.model, requests: task.requests, maxRows: task.maxRows };
    }
    return task;
  }

  /** Hands the thread its next tasks: one when it is free, a second, short inference behind a running one. */
  private next(): void {
    while (this.posted.length < PIPELINE_DEPTH) {
      const now = performance.now();
      const ahead = this.posted.length > 0;
      let heldUntil = Infinity;
      const key = nextLane([...this.lanes].map(([k, lane]) => {
        const held = lane.waiting.length > 0 && this.held(k, lane, now);
        if (held && lane.heldUntil !== undefined) heldUntil = Math.min(heldUntil, lane.heldUntil);
        return { key: k, queued: held ? 0 : lane.waiting.length, usedMs: lane.usedMs, headSeq: lane.waiting[0]?.seq ?? Infinity };
      }));
      if (key === undefined) {
        if (heldUntil < Infinity && !this.holdTimer) {
          this.holdTimer = setTimeout(() => {
            this.holdTimer = undefined;
            this.next();
          }, heldUntil - now);
        }
        return;
      }
      const lane = this.lanes.get(key)!;
      if (ahead && !(this.posted.every((p) => isInfer(p.entry.task)) && isInfer(lane.waiting[0].task) && mayPrefetch(lane.expectedMs, this.modelsServed() > 1, this.posted.length - 1))) return;
      const entry = lane.waiting.shift()!;
      this.queuedCount--;
      this.floorMs = Math.max(this.floorMs, lane.usedMs);
      this.post({ entry, key, lane, ahead });
    }
  }

  /** Models with a lane on this thread (a lane goes with its model's unload). */
  private modelsServed(): number {
    let n = 0;
    for (const key of this.lanes.keys()) if (key !== '') n++;
    return n;
  }

  private post(posted: Posted): void {
    const { entry, lane, key } = posted;
    const task = entry.task;
    if (!posted.ahead) this.lastDoneAt = performance.now();
    this.posted.push(posted);
    // A task sent ahead keeps a copy of its bodies, made here (one memcpy; a structured clone of the body
    // cost 0.05–0.08 ms a task more), until it starts: if its thread ends first, the copy is sent again.
    if (posted.ahead) entry.resend = withCopiedBodies(task);
    this.tasks.send(this.toWire(task), entry.transferList).then(
      (result: WorkerResult) => {
        if (result.ok && (task.kind === 'load' || task.kind === 'infer' || task.kind === 'inferBatch')) this.threadHas.add(task.model.key);
        if (result.ok && (result.kind === 'infer' || result.kind === 'inferBatch') && result.tid !== undefined) this.tid = result.tid;
        if (task.kind === 'unload') this.threadHas.delete(task.key);
        this.done(posted, true);
        entry.settle({ result });
      },
      (error: unknown) => {
        // The port fails a task only when its thread ended (it exited, or endIfRunning ended it): the
        // replacement has no sessions.
        this.threadHas.clear();
        this.done(posted, false);
        if (posted.ahead && !entry.signal?.aborted && !entry.resent) {
          // It never started: back in its lane in arrival order (the tasks sent ahead of it fail in turn),
          // for the new thread. Once: a task the port refuses itself (a body that cannot be cloned) would
          // otherwise be sent again for ever.
          entry.resent = true;
          if (entry.resend) Object.assign(entry, entry.resend, { resend: undefined });
          const at = lane.waiting.findIndex((w) => w.seq > entry.seq);
          lane.waiting.splice(at < 0 ? lane.waiting.length : at, 0, entry);
          this.queuedCount++;
          if (!this.lanes.has(key)) this.lanes.set(key, lane);
        } else {
          entry.settle({ error });
        }
      },
    ).finally(() => this.next());
  }

  /** Takes a finished task off the thread, charging its lane the time the thread spent on it. */
  private done(posted: Posted, finished: boolean): void {
    const at = this.posted.indexOf(posted);
    if (at >= 0) this.posted.splice(at, 1);
    const now = performance.now();
    const ms = now - this.lastDoneAt;
    this.lastDoneAt = now;
    const { lane, key, entry } = posted;
    lane.usedMs = chargedTime(lane.usedMs, ms);
    if (isInfer(entry.task) && finished) {
      lane.expectedMs = serviceEstimate(lane.expectedMs, ms);
      this.account(key, lane, now - Math.max(now - ms, this.usageFrom), ms, entry.task.kind === 'inferBatch' ? entry.task.requests.length : 1);
    }
    // The task behind it starts now: it will not be sent again.
    if (finished && this.posted[0]) {
      this.posted[0].ahead = false;
      this.posted[0].entry.resend = undefined;
    }
    if (entry.task.kind === 'unload' && lane.waiting.length === 0) this.lanes.delete(key);
  }

  /** Counts a finished run for the pacer and, when its model is paced, adds the run's pace to what its lane owes. */
  private account(key: string, lane: Lane, busyMs: number, ms: number, requests: number): void {
    this.addUsage(key, busyMs, requests);
    const pace = this.paces.get(key) ?? 0;
    if (pace > 0) lane.debtMs = (lane.debtMs ?? 0) + pace * ms;
  }

  private addUsage(key: string, busyMs: number, requests: number): void {
    const used = this.usage.get(key);
    if (used) {
      used.busyMs += busyMs;
      used.requests += requests;
    } else {
      this.usage.set(key, { busyMs, requests, waiting: 0 });
    }
  }

  /**
   * Whether a paced lane waits now. What it owes is paid in holds of at least HOLD_QUANTUM_MS, once none
   * of its tasks is on the thread: timers do not keep sub-millisecond times, and a timer's lateness is
   * credited to the next hold.
   */
  private held(key: string, lane: Lane, now: number): boolean {
    if (lane.heldUntil !== undefined) {
      if (lane.heldUntil > now) return true;
      lane.debtMs = Math.max(-HOLD_QUANTUM_MS, (lane.debtMs ?? 0) - (now - lane.heldUntil));
      lane.heldUntil = undefined;
    }
    if ((lane.debtMs ?? 0) < HOLD_QUANTUM_MS) return false;
    if (this.posted.some((p) => p.key === key)) return true;
    lane.heldUntil = now + lane.debtMs!;
    lane.debtMs = 0;
    return true;
  }

  /** What each model used on this thread since the last call, with its tasks waiting now. */
  takeUsage(): Map<string, LaneUsage> {
    // A run still going is counted up to now: a 200 ms model under contention finishes less often than it is read.
    const now = performance.now();
    const running = this.posted[0];
    if (running && isInfer(running.entry.task)) this.addUsage(running.key, now - Math.max(this.lastDoneAt, this.usageFrom), 0);
    this.usageFrom = now;
    const usage = this.usage;
    this.usage = new Map();
    for (const [key, lane] of this.lanes) {
      if (key === '' || lane.waiting.length === 0) continue;
      const used = usage.get(key);
      if (used) used.waiting = lane.waiting.length;
      else usage.set(key, { busyMs: 0, requests: 0, waiting: lane.waiting.length });
    }
    return usage;
  }

  /** Sets how long each model's thread waits after its runs, as a fraction of the run (cpu-share.ts). */
  setPaces(paces: ReadonlyMap<string, number>): void {
    this.paces = paces;
    for (const [key, lane] of this.lanes) {
      if ((paces.get(key) ?? 0) > 0) continue;
      lane.heldUntil = undefined;
      lane.debtMs = undefined;
    }
    this.next();
  }

  /** Ends the thread, after the onnxruntime call it is in, if any, returns (within `CLOSE_WAIT_MS`). */
  async close(): Promise<void> {
    clearTimeout(this.holdTimer);
    await closeNativeGate(this.gate, CLOSE_WAIT_MS);
    this.tasks.close();
    await this.piscina.destroy();
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
