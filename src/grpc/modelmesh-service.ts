// mmesh.ModelRuntime: how KServe ModelMesh loads, sizes and unloads models on this server. Sizes are
// what Quiver measured (resident memory of the loaded copies), not a guess from the file size.
import type { ModelScheduler } from '../scheduler/scheduler';
import { BadRequestError, ClientDisconnectedError, QuiverError, ServerStartingError } from '../errors';
import { log } from '../log';
import { SERVER_VERSION } from '../version';
import { deadlineOf, unary } from './calls';
import type * as grpc from '@grpc/grpc-js';
import { LRUCache } from 'lru-cache';

export interface ModelMeshOptions {
  capacityBytes: number;
  /** Quiver's own bound on a load: the warm-up after it shares it. */
  modelLoadTimeoutMs: number;
  /** runtimeStatus's modelLoadingTimeoutMs: ModelMesh times the puller's call, its download too. */
  reportedLoadTimeoutMs: number;
  /** What ModelMesh assumes a model costs before it has a size for it. */
  defaultModelSizeBytes: number;
  /**
   * False while the server warms up. The listener is bound before that, because ModelMesh's puller gives
   * the runtime 3 s to accept a connection; until then runtimeStatus says STARTING, as the contract asks.
   */
  isStarted: () => boolean;
}

const INFERENCE = 'inference.GRPCInferenceService';

/**
 * Methods ModelMesh forwards here (its allow-list), the model id written into field 1 of each request:
 * `model_name` of ModelInferRequest, `name` of the others.
 */
const FORWARDED_METHODS = ['ModelInfer', 'ModelMetadata', 'ModelReady', 'ModelConfig', 'ModelStatistics'];

/** How long a management call without its own deadline waits for the server's warm-up. */
const STARTUP_WAIT_MS = 30_000;
const STARTUP_POLL_MS = 50;

/** Model ids whose answered size is remembered for predictModelSize (a few bytes each). */
const ANSWERED_SIZES = 10_000;

/** Kinds of failure that mean no load was tried (the request names nothing loadable). */
const NOT_ATTEMPTED = new Set(['ArtifactNotFound', 'InvalidModelArchive', 'InvalidModelName', 'UnsafePath', 'BadRequest', 'UrlNotAllowed']);

/** The model-runtime proto asks for INVALID_ARGUMENT (or FAILED_PRECONDITION) when a load was not attempted. */
function asLoadRefusal(err: unknown): unknown {
  return err instanceof QuiverError && NOT_ATTEMPTED.has(err.kind) ? new BadRequestError(err.message) : err;
}

interface LoadModelRequest {
  modelId: string;
  modelType: string;
  modelPath: string;
  modelKey: string;
}

export function modelMeshService(scheduler: ModelScheduler, options: ModelMeshOptions): grpc.UntypedServiceImplementation {
  // ModelMesh starts from an empty runtime: each runtimeStatus (its model-mesh container started, or
  // restarted) drops every model first.
  // What threads started for a model's copy hold: ModelMesh counts it in that model's size.
  const threadBytes = new Map<string, number>();
  const sizeOf = (id: string) => scheduler.describe(id).memoryBytes + (threadBytes.get(id) ?? 0);
  // The size each model id was answered at, kept past its unload: behind the puller, predictModelSize gets
  // the remote path (the load gets a local one), so a model loaded before is sized by its id.
  const answered = new LRUCache<string, number>({ max: ANSWERED_SIZES });
  const gone = (err: unknown) => {
    if (!(err instanceof QuiverError && err.kind === 'ModelNotFound')) throw err;
  };
  const purge = () => Promise.all(scheduler.modelNames().map((name) => scheduler.unregisterAll(name).catch(gone))).then(() => threadBytes.clear());
  const concurrency = (name: string) => {
    const d = scheduler.describe(name);
    return Math.max(1, d.minWorkers) * Math.max(1, d.batchSize);
  };
  // After a restart of this container alone, ModelMesh (which saw READY before) sends loads at once: they
  // wait for the warm-up instead of failing, each failure counting against the model.
  const started = async (deadline: number) => {
    const until = Math.min(deadline, Date.now() + STARTUP_WAIT_MS);
    while (!options.isStarted()) {
      if (Date.now() >= until) throw new ServerStartingError('the server is still starting: ask again once runtimeStatus says READY');
      await new Promise((resolve) => setTimeout(resolve, STARTUP_POLL_MS));
    }
  };
  // An unloadModel may come while its model's load is still on its way (ModelMesh cancelled that load):
  // each unload moves its id's generation on, a load that sees the move undoes itself, and the unload
  // answers only once that load has settled, so the model is not left loaded behind its back.
  const generations = new Map<string, number>();
  const loads = new Map<string, Promise<unknown>>();

  /** One load, checked to still be wanted (`current`) after each wait; the model's size and concurrency. */
  const loadOne = async (req: LoadModelRequest, callDeadline: number, current: () => boolean): Promise<{ sizeInBytes: number; maxConcurrency: number }> => {
    // ModelMesh times the whole call against the modelLoadingTimeoutMs it was given: the warm-up too.
    const deadline = Math.min(callDeadline, Date.now() + options.modelLoadTimeoutMs);
    await started(deadline);
    const wanted = () => {
      if (!current()) throw new ClientDisconnectedError(`the load of "${req.modelId}" was cancelled`);
    };
    wanted();
    const threadsBefore = scheduler.threadOverheadBytes();
    // One copy, never evicted here: ModelMesh counts it as loaded with the size answered below, and
    // makes room in its own cache (unloadModel) when it wants another model.
    const held = scheduler.registration(req.modelId);
    const ours = held !== undefined && held.pinned && held.urls.length === 1 && held.urls[0] === req.modelPath;
    if (held && !ours) {
      // Another model under that name (registered through another API, whatever its version): ModelMesh's
      // goes in its place, or requests routed to the id would reach that one.
      log.warn('ModelMesh: a model of the same name, not from this path, is replaced', { model: req.modelId, urls: held.urls });
      await scheduler.unregisterAll(req.modelId).catch(gone);
      wanted();
    }
    try {
      if (!ours) await scheduler.register({ name: req.modelId, url: req.modelPath, synchronous: true, pinned: true, initialWorkers: 1, maxWorkers: 1 });
    } catch (err) {
      // A load of the same id that started meanwhile (ModelMesh retried): it is what was asked for.
      if (!(err instanceof QuiverError && err.kind === 'ModelAlreadyExists')) throw asLoadRefusal(err);
    }
    wanted();
    // ModelMesh may retry a load it lost track of: the model it asked for is there, or on its way.
    await scheduler.signature(req.modelId);
    // ModelMesh asks modelSize only when this says 0: the size it keeps is this one, so it includes a
    // first run's arena (a detector's is ~20× its load).
    await scheduler.warmUp(req.modelId, deadline);
    wanted();
    // A thread started for it is memory its load took (loads come one at a time): in its size, so that
    // ModelMesh's sum of sizes stays within the capacity the budget gives.
    threadBytes.set(req.modelId, Math.max(threadBytes.get(req.modelId) ?? 0, scheduler.threadOverheadBytes() - threadsBefore));
    const sizeInBytes = sizeOf(req.modelId);
    answered.set(req.modelId, sizeInBytes);
    return { sizeInBytes, maxConcurrency: concurrency(req.modelId) };
  };

  return {
    runtimeStatus: unary(async () => {
      if (!options.isStarted()) return { status: 'STARTING' };
      try {
        await purge();
      } catch (err) {
        // Never READY with models ModelMesh does not know of. STARTING, not FAILING: model-mesh polls again
        // only while a runtime says STARTING (SidecarModelMesh.waitForModelServerStart), and the purge is
        // tried again then; FAILING would stop it from starting at all.
        log.error('ModelMesh: a model could not be purged; runtimeStatus says STARTING until one succeeds', { error: (err as Error).message });
        return { status: 'STARTING' };
      }
      return {
        status: 'READY',
        capacityInBytes: options.capacityBytes,
        // Loads are serialized so each one's memory can be measured.
        maxLoadingConcurrency: 1,
        modelLoadingTimeoutMs: options.reportedLoadTimeoutMs,
        defaultModelSizeInBytes: options.defaultModelSizeBytes,
        runtimeVersion: SERVER_VERSION,
        methodInfos: Object.fromEntries(FORWARDED_METHODS.map((m) => [`${INFERENCE}/${m}`, { idInjectionPath: [1] }])),
        allowAnyMethod: false,
        limitModelConcurrency: false,
      };
    }),
    loadModel: unary(async (req: LoadModelRequest, _md, call) => {
      const generation = generations.get(req.modelId) ?? 0;
      const current = () => !call.cancelled && (generations.get(req.modelId) ?? 0) === generation;
      const load = loadOne(req, deadlineOf(call), current);
      loads.set(req.modelId, load);
      try {
        return await load;
      } catch (err) {
        if (current()) throw err;
        // What a cancelled load got as far as registering goes, before its unload is answered.
        await scheduler.unregisterAll(req.modelId).catch(gone);
        threadBytes.delete(req.modelId);
        throw new ClientDisconnectedError(`the load of "${req.modelId}" was cancelled (ModelMesh gave up on it, or unloaded it)`);
      } finally {
        if (loads.get(req.modelId) === load) loads.delete(req.modelId);
      }
    }, 'mesh-load'),
    unloadModel: unary(async (req: { modelId: string }, _md, call) => {
      await started(deadlineOf(call));
      generations.set(req.modelId, (generations.get(req.modelId) ?? 0) + 1);
      if (scheduler.hasModel(req.modelId)) await scheduler.unregisterAll(req.modelId).catch(gone);
      await loads.get(req.modelId)?.catch(() => undefined);
      if (scheduler.hasModel(req.modelId)) await scheduler.unregisterAll(req.modelId).catch(gone);
      threadBytes.delete(req.modelId);
      return {};
    }),
    // ModelMesh waits 500 ms for this: a local file's size and earlier measurements only, never a download or unpack.
    predictModelSize: unary(async (req: LoadModelRequest) => ({
      sizeInBytes: answered.get(req.modelId) ?? (await scheduler.quickPrediction(req.modelPath)) ?? options.defaultModelSizeBytes,
    })),
    modelSize: unary(async (req: { modelId: string }, _md, call) => {
      await started(deadlineOf(call));
      return { sizeInBytes: sizeOf(req.modelId) };
    }),
  };
}
