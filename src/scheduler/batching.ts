// When a model's queued requests go to a worker as one batch: a pure function of the queue.

export interface BatchQueueState {
  queued: number;
  /** How long the oldest queued request has waited. */
  oldestWaitMs: number;
  batchSize: number;
  maxBatchDelayMs: number;
  /** Hosts of the model with no batch of it in flight. */
  idleHosts: number;
  /** Batches of the model running now (one per busy host). */
  running: number;
  /** Requests in those batches. */
  inFlight: number;
}

export type BatchDecision =
  | { action: 'dispatch'; count: number }
  | { action: 'wait'; ms: number }
  | { action: 'idle' };

/**
 * A batch goes to an idle host as soon as it holds that host's share of the work in sight: the queued
 * and in-flight requests over the model's hosts (at least one request, at most batch_size). What runs
 * elsewhere now says what arrives while this batch runs, so a host that waits past its share only
 * idles while the others work. It takes its share rounded up, so that a burst on idle hosts spreads
 * over them without leaving one request behind. A smaller batch (up to batch_size) goes when its oldest
 * request has waited max_batch_delay (MMS's rule, the bound on every wait). Nothing goes while every host is busy:
 * requests keep queueing, so the next batch is fuller, and the host that frees first takes it.
 */
export function decideBatch(s: BatchQueueState): BatchDecision {
  if (s.queued === 0 || s.idleHosts === 0) return { action: 'idle' };
  const inSight = s.queued + s.inFlight;
  const hosts = s.idleHosts + s.running;
  const enough = Math.min(s.batchSize, Math.max(1, Math.floor(inSight / hosts)));
  const count = Math.min(s.batchSize, s.queued, Math.ceil(inSight / hosts));
  // Waited long enough: whatever is queued goes, up to batch_size.
  if (s.oldestWaitMs >= s.maxBatchDelayMs) return { action: 'dispatch', count: Math.min(s.batchSize, s.queued) };
  if (s.queued >= enough) return { action: 'dispatch', count };
  return { action: 'wait', ms: s.maxBatchDelayMs - s.oldestWaitMs };
}

/**
 * A batch's requests in runs of at most `maxRows` rows together (Triton's max_batch_size bounds a run's
 * batch dimension, not its request count), consecutive, in order; a request with more rows runs alone.
 */
export function rowGroups(rows: readonly number[], maxRows: number): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let sum = 0;
  rows.forEach((n, i) => {
    if (current.length > 0 && sum + n > maxRows) {
      groups.push(current);
      current = [];
      sum = 0;
    }
    current.push(i);
    sum += n;
  });
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Batching needs a free batch dimension: every input's first dimension must be symbolic. */
export function canBatch(inputShapes: readonly (readonly (number | string)[])[]): boolean {
  return inputShapes.length > 0 && inputShapes.every((shape) => shape.length > 0 && (typeof shape[0] === 'string' || shape[0] < 0));
}

/**
 * How long past its deadline a run may go on before its thread is ended: the request is answered 504 at
 * its deadline, but a run that is merely slow (not stuck) finishes and the thread and its other models live.
 */
export function stuckGraceMs(remainingMs: number): number {
  return Math.max(1000, remainingMs * 0.25);
}
