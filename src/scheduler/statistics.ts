// Per model version, what its requests did since it was registered, in the terms of Triton's statistics
// extension: successes and failures with their total time, and the stages of the successful ones (queue,
// preprocessing as compute_input, the onnxruntime run as compute_infer, postprocessing as
// compute_output), also per size of the batch that ran them.
import type { StageTimings } from '../workers/messages';

export interface Duration {
  count: number;
  ns: number;
}

export interface BatchStatistics {
  batch_size: number;
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

export interface VersionStatistics {
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: Duration;
    fail: Duration;
    queue: Duration;
    compute_input: Duration;
    compute_infer: Duration;
    compute_output: Duration;
    cache_hit: Duration;
    cache_miss: Duration;
  };
  batch_stats: BatchStatistics[];
}

/** The run that answered a request: how many requests it held, and for a batching model, their batch entries. */
export interface RunShape {
  requests: number;
  rows?: number;
  runRows?: number;
}

const MS_TO_NS = 1e6;

const zero = (): Duration => ({ count: 0, ns: 0 });

function add(d: Duration, count: number, ms: number): void {
  d.count += count;
  d.ns += ms * MS_TO_NS;
}

/** Whole numbers, as the extension reports them (a request of a batch of n adds 1/n of one execution). */
function rounded(d: Duration): Duration {
  return { count: Math.round(d.count), ns: Math.round(d.ns) };
}

interface Tally {
  lastInference: number;
  inferences: number;
  executions: number;
  success: Duration;
  fail: Duration;
  queue: Duration;
  input: Duration;
  infer: Duration;
  output: Duration;
  batches: Map<number, { input: Duration; infer: Duration; output: Duration }>;
}

const emptyTally = (): Tally => ({
  lastInference: 0, inferences: 0, executions: 0, success: zero(), fail: zero(), queue: zero(), input: zero(), infer: zero(), output: zero(), batches: new Map(),
});

export class InferenceStatistics {
  private readonly tallies = new Map<string, Tally>();

  private tally(id: string): Tally {
    let t = this.tallies.get(id);
    if (!t) {
      t = emptyTally();
      this.tallies.set(id, t);
    }
    return t;
  }

  /**
   * A request answered after `totalMs`, run with `run.requests` requests. For a batching model (Triton's
   * max_batch_size > 0) `run.rows` are its batch entries, each an inference, and `run.runRows` the run's
   * batch size; otherwise a request is one inference and its run's batch size its request count.
   */
  success(id: string, totalMs: number, timings: StageTimings, run: RunShape, at = Date.now()): void {
    const t = this.tally(id);
    const share = 1 / Math.max(1, run.requests);
    const batchSize = run.runRows ?? run.requests;
    t.lastInference = at;
    t.inferences += run.rows ?? 1;
    t.executions += share;
    add(t.success, 1, totalMs);
    add(t.queue, 1, timings.queueMs);
    add(t.input, 1, timings.preprocessMs);
    add(t.infer, 1, timings.inferenceMs);
    add(t.output, 1, timings.postprocessMs);
    let batch = t.batches.get(batchSize);
    if (!batch) {
      batch = { input: zero(), infer: zero(), output: zero() };
      t.batches.set(batchSize, batch);
    }
    // A batch ran once for all its requests: each adds its share of that one run.
    add(batch.input, share, timings.preprocessMs * share);
    add(batch.infer, share, timings.inferenceMs * share);
    add(batch.output, share, timings.postprocessMs * share);
  }

  /** A request that failed after `totalMs` (refused, timed out, or failed in the model). */
  failure(id: string, totalMs: number): void {
    add(this.tally(id).fail, 1, totalMs);
  }

  /** Its figures go with the version (an unregistered version has none, as in Triton). */
  forget(id: string): void {
    this.tallies.delete(id);
  }

  of(id: string): VersionStatistics {
    const t = this.tallies.get(id) ?? emptyTally();
    return {
      last_inference: t.lastInference,
      inference_count: t.inferences,
      execution_count: Math.round(t.executions),
      inference_stats: {
        success: rounded(t.success), fail: rounded(t.fail), queue: rounded(t.queue),
        compute_input: rounded(t.input), compute_infer: rounded(t.infer), compute_output: rounded(t.output),
        cache_hit: zero(), cache_miss: zero(),
      },
      batch_stats: [...t.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([size, b]) => ({ batch_size: size, compute_input: rounded(b.input), compute_infer: rounded(b.infer), compute_output: rounded(b.output) })),
    };
  }
}
