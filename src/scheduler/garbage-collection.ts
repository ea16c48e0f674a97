// After a copy is unloaded the main thread collects its own garbage too, at most once per gap. V8 lets
// the old generation grow by at least 8 MiB past what lived at its last full collection before the next
// one, so the loads' and requests' leftovers showed as RSS that climbed for hundreds of evict/reload
// cycles (bench:churn) while the models had given their memory back. The collection is V8's incremental
// one (execution 'async'): marking runs beside the event loop, not in one pause.

/** V8's gc extension, present when the process runs with --expose-gc (the supervisor starts it so). */
export type GcFunction = (options: { type: 'major'; execution: 'async' }) => unknown;

export const MIN_GAP_MS = 5_000;

export class GarbageCollector {
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly gc: GcFunction | undefined = (globalThis as { gc?: GcFunction }).gc,
    private readonly minGapMs = MIN_GAP_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get available(): boolean {
    return this.gc !== undefined;
  }

  /** Memory was given back: collect now, or once the gap since the last collection has passed. */
  soon(): void {
    if (!this.gc || this.timer) return;
    const wait = this.lastAt + this.minGapMs - this.now();
    if (wait <= 0) {
      this.collect();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect();
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private collect(): void {
    this.lastAt = this.now();
    const done = this.gc!({ type: 'major', execution: 'async' }) as PromiseLike<void> | undefined;
    if (typeof done?.then === 'function') done.then(undefined, () => undefined);
  }
}
