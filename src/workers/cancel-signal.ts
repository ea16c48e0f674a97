// A cheap stand-in for AbortSignal. Each request carries two or three (its client going away, its
// deadline, its thread's end): AbortController (an EventTarget) and AbortSignal.any cost the main
// thread ~0.05 ms and ~6 KB of garbage per request (CPU and allocation profiles of bench:fairness's
// classifier at c=1). It has the part of AbortSignal that piscina and the scheduler read.

/** What a task's cancel or deadline offers: an AbortSignal or a CancelSignal. */
export interface Abortable {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Listeners run once, on the first abort(); a listener added after it never runs (check `aborted`). */
export class CancelSignal implements Abortable {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] = [];

  // Every listener is once: a signal aborts once.
  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  get listenerCount(): number {
    return this.listeners.length;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error('aborted');
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }
}

/**
 * A signal that aborts after `ms`, and `clear` to drop its timer once the work is done (a pending
 * timer keeps what listens to it alive until it fires).
 */
export function deadlineSignal(ms: number): { signal: CancelSignal; clear(): void } {
  const signal = new CancelSignal();
  const timer = setTimeout(() => signal.abort(new Error(`timed out after ${ms} ms`)), ms);
  timer.unref();
  return { signal, clear: () => clearTimeout(timer) };
}

/** A signal that aborts when any of `sources` does; `clear` detaches it from them. */
export function eitherSignal(...sources: Abortable[]): { signal: CancelSignal; clear(): void } {
  const signal = new CancelSignal();
  const abort = () => signal.abort(sources.find((s) => s.aborted)?.reason);
  for (const source of sources) {
    if (source.aborted) abort();
    else source.addEventListener('abort', abort, { once: true });
  }
  return { signal, clear: () => sources.forEach((s) => s.removeEventListener('abort', abort)) };
}
