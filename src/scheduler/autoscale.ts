// Workers between min_worker and max_worker: a pure policy. A version with more queued work than its
// copies can run and idle threads to spare grows by one copy; one left idle for a while shrinks by one;
// one below min_worker is brought back up.

export interface AutoscaleView {
  copies: number;
  minWorkers: number;
  maxWorkers: number;
  /** Requests counted in (queued, waiting or running). */
  queued: number;
  /** Threads that host no copy of it and run nothing now. */
  idleThreads: number;
  /** Whether one more copy fits the memory budget without evicting anything. */
  fitsOneMore: boolean;
  /** Milliseconds since it last had a request counted in. */
  idleForMs: number;
}

/** How long a version above min_worker stays idle before it gives a copy back. */
export const SHRINK_AFTER_MS = 30_000;

/** +1: add a copy; -1: remove one; 0: leave it. */
export function autoscaleStep(v: AutoscaleView): -1 | 0 | 1 {
  // Below min_worker (a scale lost against a reload, a copy that failed to load): back up when it fits.
  if (v.copies < v.minWorkers) return v.idleThreads > 0 && v.fitsOneMore ? 1 : 0;
  if (v.copies < v.maxWorkers && v.queued > v.copies && v.idleThreads > 0 && v.fitsOneMore) return 1;
  if (v.copies > v.minWorkers && v.queued === 0 && v.idleForMs >= SHRINK_AFTER_MS) return -1;
  return 0;
}
