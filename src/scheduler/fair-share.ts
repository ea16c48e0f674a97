// Which model a shared worker thread runs next: per-model lanes served by least thread time used
// (start-time fair queueing, as Linux CFS shares a core). A model of 2 ms runs is served before one of
// 200 ms runs that already had its turn, and each busy model gets an equal share of the thread, so no
// model waits behind another's queue: at most behind one run in progress. Pure functions over plain data.

export interface LaneState {
  key: string;
  /** Tasks waiting in the lane. */
  queued: number;
  /** Thread time the lane has used, in ms divided by its weight (its virtual time). */
  usedMs: number;
  /** Arrival order of the lane's first waiting task, to break ties first come first served. */
  headSeq: number;
}

/** The lane to run next: the least virtual time among lanes with work; ties go to the oldest task. */
export function nextLane(lanes: readonly LaneState[]): string | undefined {
  let best: LaneState | undefined;
  for (const lane of lanes) {
    if (lane.queued === 0) continue;
    if (!best || lane.usedMs < best.usedMs || (lane.usedMs === best.usedMs && lane.headSeq < best.headSeq)) best = lane;
  }
  return best?.key;
}

/**
 * The virtual time of a lane that starts waiting again: idle time is not banked, so a model back from
 * idle starts level with the thread's clock (`floor`, the virtual time of the last lane picked), not
 * so far behind that it would hold the thread for a burst.
 */
export function activatedTime(usedMs: number, floor: number): number {
  return Math.max(usedMs, floor);
}

/** A lane's virtual time after one of its tasks held the thread for `ms`. */
export function chargedTime(usedMs: number, ms: number, weight = 1): number {
  return usedMs + Math.max(0, ms) / Math.max(weight, 1e-9);
}

/**
 * Past this expected run time a task is not sent to a thread that other models share while it is busy
 * with another. A task sent ahead starts the moment the one before it ends, instead of after that one's
 * answer has crossed to the main thread and the next task back, which on a loaded machine costs a short
 * model more than its run; but a model that arrives meanwhile waits behind both, so on a shared thread
 * only short tasks go ahead. A thread that serves one model has nobody to delay: any task goes ahead.
 */
export const PREFETCH_MAX_MS = 10;

/** Tasks on a thread at once, the running one included. */
export const MAX_TASKS_ON_THREAD = 4;

/**
 * How much work a thread that serves one model keeps sent ahead: the time the main thread may take to
 * send the next task on a loaded machine (a CFS slice, a few ms), so that a short model's thread does not
 * sleep meanwhile and give its share of the cores to the others.
 */
export const AHEAD_COVER_MS = 4;

/**
 * Whether a lane's next task may be sent to its thread while `ahead` tasks already wait there behind the
 * running one. On a shared thread one short task at most; on a thread of its own, while those waiting
 * cover less than AHEAD_COVER_MS.
 */
export function mayPrefetch(expectedMs: number | undefined, threadShared = true, ahead = 0): boolean {
  if (expectedMs === undefined || ahead + 1 >= MAX_TASKS_ON_THREAD) return false;
  if (threadShared) return ahead === 0 && expectedMs <= PREFETCH_MAX_MS;
  return ahead === 0 || ahead * expectedMs < AHEAD_COVER_MS;
}

/** A lane's expected run time after one more run of `ms` (a moving average that follows changes within a few runs). */
export function serviceEstimate(previous: number | undefined, ms: number): number {
  return previous === undefined ? ms : previous * 0.75 + ms * 0.25;
}
