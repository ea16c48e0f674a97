// A model's dynamic batcher: queues its requests and hands them to an idle host as one task,
// following decideBatch; each caller gets its own answer (or error) back.
import { ClientDisconnectedError, InferenceTimeoutError, fromWireError } from '../errors';
import type { InferBatchResult, InferRequest, InferResult } from '../workers/messages';
import { decideBatch, stuckGraceMs } from './batching';
import { Abortable, deadlineSignal } from '../workers/cancel-signal';

interface Pending {
  request: InferRequest;
  /** performance.now() clock, for sub-millisecond waits. */
  enqueuedAt: number;
  deadline: number;
  resolve(result: InferResult): void;
  reject(err: Error): void;
}

export interface BatcherHost {
  /** The model's hosts now, least busy first. */
  hosts(): number[];
  /** `maxRows`: the batch size, which bounds the rows of each run the requests are stacked into. */
  dispatch(host: number, requests: InferRequest[], maxRows: number, signal: Abortable): Promise<InferBatchResult>;
  observeBatch(size: number): void;
}

export class ModelBatcher {
  private readonly queue: Pending[] = [];
  /** Hosts running a batch of this model, and its size. */
  private readonly busy = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly model: string,
    private batchSize: number,
    private maxBatchDelayMs: number,
    private readonly host: BatcherHost,
  ) {}

  configure(batchSize: number, maxBatchDelayMs: number): void {
    this.batchSize = batchSize;
    this.maxBatchDelayMs = maxBatchDelayMs;
    this.pump();
  }

  /** `cancel` (the client went away) takes the request off the queue; once sent in a batch it runs. */
  submit(request: InferRequest, timeoutMs: number, cancel?: Abortable): Promise<InferResult> {
    if (cancel?.aborted) return Promise.reject(new ClientDisconnectedError('the client went away while its request was queued; it was dropped'));
    return new Promise((resolve, reject) => {
      const now = performance.now();
      const pending: Pending = { request, enqueuedAt: now, deadline: now + timeoutMs, resolve, reject };
      if (cancel) {
        const drop = () => {
          const at = this.queue.indexOf(pending);
          if (at < 0) return;
          this.queue.splice(at, 1);
          reject(new ClientDisconnectedError('the client went away while its request was queued; it was dropped'));
        };
        cancel.addEventListener('abort', drop, { once: true });
        const settleWith = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => {
          cancel.removeEventListener('abort', drop);
          f(...a);
        };
        pending.resolve = settleWith(resolve);
        pending.reject = settleWith(reject);
      }
      this.queue.push(pending);
      this.pump();
    });
  }

  private expire(now: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].deadline <= now) {
        const [late] = this.queue.splice(i, 1);
        late.reject(new InferenceTimeoutError(`model "${this.model}" did not answer within its response_timeout; the request was dropped`));
      }
    }
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = performance.now();
    this.expire(now);
    for (;;) {
      const idle = this.host.hosts().filter((h) => !this.busy.has(h));
      const decision = decideBatch({
        queued: this.queue.length,
        oldestWaitMs: this.queue.length ? now - this.queue[0].enqueuedAt : 0,
        batchSize: this.batchSize,
        maxBatchDelayMs: this.maxBatchDelayMs,
        idleHosts: idle.length,
        running: this.busy.size,
        inFlight: [...this.busy.values()].reduce((a, b) => a + b, 0),
      });
      if (decision.action === 'wait') {
        // Wake for the batch, or sooner for a request whose response_timeout ends first.
        const firstDeadline = Math.min(...this.queue.map((p) => p.deadline));
        this.timer = setTimeout(() => this.pump(), Math.max(0, Math.min(decision.ms, firstDeadline - now)));
        // The server keeps the process alive, not a batch's timer.
        this.timer.unref();
        return;
      }
      if (decision.action === 'idle') {
        // Requests left waiting on busy hosts still expire on time.
        if (this.queue.length) {
          this.timer = setTimeout(() => this.pump(), Math.max(1, this.queue[0].deadline - now));
          this.timer.unref();
        }
        return;
      }
      this.send(idle[0], this.queue.splice(0, decision.count));
    }
  }

  /**
   * A batch runs to its latest member's deadline: a member whose own deadline passes first fails alone
   * (504) and the rest still get their answers; the thread is ended only for a run still going stuckGraceMs past them all.
   */
  private send(host: number, batch: Pending[]): void {
    this.busy.set(host, batch.length);
    const now = performance.now();
    const settled = new Set<Pending>();
    const settle = (p: Pending, outcome: () => void) => {
      if (settled.has(p)) return;
      settled.add(p);
      outcome();
    };
    const timeout = () => new InferenceTimeoutError(`model "${this.model}" did not answer within its response_timeout; the request was dropped`);
    const timers = batch.map((p) => {
      const t = setTimeout(() => settle(p, () => p.reject(timeout())), Math.max(1, p.deadline - now));
      t.unref();
      return t;
    });
    const latest = Math.max(1, Math.max(...batch.map((p) => p.deadline)) - now);
    const deadline = deadlineSignal(latest + stuckGraceMs(latest));
    this.host
      .dispatch(host, batch.map((p) => p.request), this.batchSize, deadline.signal)
      .then(
        (result) => {
          for (const size of result.runs) this.host.observeBatch(size);
          result.results.forEach((r, i) => settle(batch[i], () => (r.ok ? batch[i].resolve(r) : batch[i].reject(fromWireError(r.error)))));
        },
        (err: Error) => {
          const error = err instanceof InferenceTimeoutError ? timeout() : err;
          for (const p of batch) settle(p, () => p.reject(error));
        },
      )
      .finally(() => {
        for (const t of timers) clearTimeout(t);
        deadline.clear();
        this.busy.delete(host);
        this.pump();
      });
  }

  /** Requests waiting for a batch. */
  get queued(): number {
    return this.queue.length;
  }

  /** Sends what is queued without waiting for fuller batches, and resolves when nothing is left in flight. */
  async drain(): Promise<void> {
    this.maxBatchDelayMs = 0;
    this.pump();
    while (this.queue.length > 0 || this.busy.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
