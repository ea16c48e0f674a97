// When a model's queued requests go to a worker as one batch: a pure function of the queue.

export interface BatchQueueState {
  queued: number;
  /** How long the oldest queued request has waited. */
  oldestWaitMs: number;
  batchSize: number;
  maxBatchDelayMs: number;
  /** Hosts of the model with no batch of it in flight. */
  idleHosts: number;
  /** Batches of the model running now. */
  running: number;
}

export type BatchDecision =
  | { action: 'dispatch'; count: number }
  | { action: 'wait'; ms: number }
  | { action: 'idle' };

/**
 * A full batch goes at once. A partial one goes at once when nothing of the model is running (waiting
 * would only add latency to an idle model), else when its oldest request has waited max_batch_delay
 * (MMS's rule). Nothing goes while every host is busy: requests keep queueing, so the next batch is
 * fuller, and the host that frees first takes it.
 */
export function decideBatch(s: BatchQueueState): BatchDecision {
  if (s.queued === 0 || s.idleHosts === 0) return { action: 'idle' };
  if (s.queued >= s.batchSize) return { action: 'dispatch', count: s.batchSize };
  if (s.running === 0 || s.oldestWaitMs >= s.maxBatchDelayMs) return { action: 'dispatch', count: s.queued };
  return { action: 'wait', ms: s.maxBatchDelayMs - s.oldestWaitMs };
}

/** Batching needs a free batch dimension: every input's first dimension must be symbolic. */
export function canBatch(inputShapes: readonly (readonly (number | string)[])[]): boolean {
  return inputShapes.length > 0 && inputShapes.every((shape) => shape.length > 0 && (typeof shape[0] === 'string' || shape[0] < 0));
}
