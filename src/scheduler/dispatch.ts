// Dispatch: runs a leased request on its generation's copies, through the batcher when the version
// batches, else on the least busy copy; counts each copy's running tasks so a scale-down can wait for them.
import { log } from '../log';
import type { QuiverMetrics } from '../metrics';
import type { ModelRecord } from '../models/registry';
import type { InferBatchResult, InferRequest, InferResult } from '../workers/messages';
import { WorkerPool, deadlineSignal, transferableBody } from '../workers/pool';
import { ModelBatcher } from './batcher';
import { canBatch } from './batching';
import type { Placement } from './model-description';
import { pickWorker } from './placement';

export interface DispatchHost {
  pool: WorkerPool;
  metrics?: QuiverMetrics;
  /** A copy's first run kept `bytes` (onnxruntime's arena): its cost grows by them. */
  firstRun(placement: Placement, host: number, bytes: number): void;
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
    dispatch: (id, requests, signal): Promise<InferBatchResult> =>
      counted(placement, id, async () => {
        const moved = requests.map((r) => ({ r, ...transferableBody(r.body) }));
        const result = await pool.slot(id).run(
          { kind: 'inferBatch', model: placement.spec, requests: moved.map(({ r, body }) => ({ ...r, body })) },
          moved.flatMap((m) => m.transfer),
          signal,
        );
        if (result.firstRunBytes !== undefined) host.firstRun(placement, id, result.firstRunBytes);
        return result;
      }),
    observeBatch: (size) => metrics?.batchSize.observe({ model: record.name }, size),
  });
}

/**
 * One request on a generation, within `remainingMs`. `cancel` (the client went away) drops it while
 * it is still queued; once it runs, it runs to its end.
 */
export async function dispatch(placement: Placement, request: InferRequest, remainingMs: number, host: DispatchHost, cancel?: AbortSignal): Promise<InferResult> {
  if (placement.batcher) return placement.batcher.submit(request, remainingMs, cancel);
  const hosts = [...placement.hosts.keys()].map((id) => ({ id, inFlight: host.pool.slot(id).inFlight }));
  const id = pickWorker(hosts, placement.cursor++)!;
  return counted(placement, id, async () => {
    const { body, transfer } = transferableBody(request.body);
    const timer = deadlineSignal(remainingMs);
    let result: InferResult;
    try {
      result = await host.pool.slot(id).run({ kind: 'infer', model: placement.spec, request: { ...request, body } }, transfer, timer.signal, cancel);
    } finally {
      timer.clear();
    }
    if (result.firstRunBytes !== undefined) host.firstRun(placement, id, result.firstRunBytes);
    host.metrics?.batchSize.observe({ model: placement.spec.name }, 1);
    return result;
  });
}
