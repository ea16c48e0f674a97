// Dispatch: runs a leased request on its generation's copies, through the batcher when the version
// batches, else on the least busy copy; counts each copy's running tasks so a scale-down can wait for them.
import { InferenceTimeoutError } from '../errors';
import { log } from '../log';
import type { QuiverMetrics } from '../metrics';
import type { ModelRecord } from '../models/registry';
import type { InferBatchResult, InferRequest, InferResult } from '../workers/messages';
import { Abortable, deadlineSignal, eitherSignal } from '../workers/cancel-signal';
import type { WorkerPool } from '../workers/pool';
import { transferableBody } from '../workers/transfer';
import { ModelBatcher } from './batcher';
import { canBatch, stuckGraceMs } from './batching';
import type { Placement } from './model-description';
import { pickWorker } from './placement';

export interface DispatchHost {
  pool: WorkerPool;
  metrics?: QuiverMetrics;
  /** A copy's first run kept `bytes` (onnxruntime's arena): its cost grows by them. */
  firstRun(placement: Placement, host: number, bytes: number, gpuBytes?: number): void;
}

function timedOut(placement: Placement): InferenceTimeoutError {
  return new InferenceTimeoutError(`model "${placement.spec.name}" did not answer within its response_timeout; the request was dropped`);
}

/** Runs `work` counted as a task running on copy `host` of the generation. */
async function counted<T>(placement: Placement, host: number, work: () => Promise<T>): Promise<T> {
  const info = placement.hosts.get(host);
  if (info) info.running++;
  try {
    return await work();
  } finally {
    if (info) info.running--;
  }
}

/** Gives the generation a batcher when its version batches and its inputs have a free batch dimension. */
export function configureBatching(record: ModelRecord, placement: Placement, host: DispatchHost): void {
  const settings = record.settings!;
  if (settings.batchSize <= 1) return;
  if (placement.inputs.length > 0 && !canBatch(placement.inputs.map((i) => i.shape))) {
    log.info('model has a fixed batch dimension: batching is off', { model: record.name });
    record.settings = { ...settings, batchSize: 1 };
    return;
  }
  const { pool, metrics } = host;
  placement.batcher = new ModelBatcher(record.name, settings.batchSize, settings.maxBatchDelayMs, {
    hosts: () => [...placement.hosts.keys()].sort((a, b) => pool.slot(a).inFlight - pool.slot(b).inFlight),
    dispatch: (id, requests, maxRows, signal): Promise<InferBatchResult> =>
      counted(placement, id, async () => {
        const moved = requests.map((r) => ({ r, ...transferableBody(r.body) }));
        const result = await pool.slot(id).run(
          { kind: 'inferBatch', model: placement.spec, requests: moved.map(({ r, body }) => ({ ...r, body })), maxRows },
          moved.flatMap((m) => m.transfer),
          signal,
        );
        if (result.firstRunBytes !== undefined) host.firstRun(placement, id, result.firstRunBytes, result.firstRunGpuBytes);
        return result;
      }),
    observeBatch: (size) => metrics?.batchSize.observe({ model: record.name }, size),
  });
}

/**
 * One request on a generation, within `remainingMs`. `cancel` (the client went away) drops it while
 * it is still queued; once it runs, it runs to its end.
 */
export async function dispatch(placement: Placement, request: InferRequest, remainingMs: number, host: DispatchHost, cancel?: Abortable): Promise<InferResult> {
  if (placement.batcher) return placement.batcher.submit(request, remainingMs, cancel);
  const hosts = [...placement.hosts.keys()].map((id) => ({ id, inFlight: host.pool.slot(id).inFlight }));
  const id = pickWorker(hosts, placement.cursor++)!;
  // At the deadline a queued request is dropped and a running one answered 504; its thread is ended only
  // if the run is still going `stuckGraceMs` later.
  const late = deadlineSignal(remainingMs);
  const stuck = deadlineSignal(remainingMs + stuckGraceMs(remainingMs));
  const run = counted(placement, id, async () => {
    const { body, transfer } = transferableBody(request.body);
    const dropped = cancel ? eitherSignal(cancel, late.signal) : undefined;
    let result: InferResult;
    try {
      result = await host.pool.slot(id).run(
        { kind: 'infer', model: placement.spec, request: { ...request, body } }, transfer, stuck.signal, dropped?.signal ?? late.signal,
      );
    } catch (err) {
      if (late.signal.aborted && !cancel?.aborted) throw timedOut(placement);
      throw err;
    } finally {
      stuck.clear();
      dropped?.clear();
    }
    if (result.firstRunBytes !== undefined) host.firstRun(placement, id, result.firstRunBytes, result.firstRunGpuBytes);
    host.metrics?.batchSize.observe({ model: placement.spec.name }, 1);
    return result;
  });
  const answeredLate = new Promise<never>((_, reject) => late.signal.addEventListener('abort', () => reject(timedOut(placement)), { once: true }));
  answeredLate.catch(() => undefined);
  run.catch(() => undefined);
  try {
    return await Promise.race([run, answeredLate]);
  } finally {
    late.clear();
  }
}
