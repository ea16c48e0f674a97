// mmesh.ModelRuntime: how KServe ModelMesh loads, sizes and unloads models on this server. Sizes are
// what Quiver measured (resident memory of the loaded copies), not a guess from the file size.
import type { ModelScheduler } from '../scheduler/scheduler';
import { BadRequestError, ClientDisconnectedError, ModelNotFoundError, QuiverError, ServerStartingError } from '../errors';
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

const STARTUP_POLL_MS = 50;
/** A call that cannot wait long enough hears why this long before its deadline, not just that it passed. */
const ANSWER_BEFORE_DEADLINE_MS = 100;

/** Model ids whose answered size is remembered for predictModelSize (a few bytes each). */
const ANSWERED_SIZES = 10_000;

/** Kinds of failure that mean no load was tried (the request names nothing loadable). */
const NOT_ATTEMPTED = new Set(['ArtifactNotFound', 'InvalidModelArchive', 'InvalidModelName', 'UnsafePath', 'BadRequest', 'UrlNotAllowed']);

/** The model-runtime proto asks for INVALID_ARGUMENT (or FAILED_PRECONDITION) when a load was not attempted. */
function asLoadRefusal(err: unknown): unknown {
  return err instanceof QuiverError && NOT_ATTEMPTED.has(err.kind) ? new BadRequestError(err.message) : err;
}

/** A load not yet answered; an unload of its id, or a purge, cancels it. */
interface LoadClaim {
  cancelled: boolean;
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
  // wait for the warm-up, within the load's own time, instead of failing, each failure counting against
  // the model.
  const started = async (deadline: number, wanted: () => boolean) => {
    const until = deadline - ANSWER_BEFORE_DEADLINE_MS;
    while (!options.isStarted()) {
      if (!wanted()) throw new ClientDisconnectedError('the call was cancelled while the server was starting');
      if (Date.now() >= until) throw new ServerStartingError('the server is still starting: ask again once runtimeStatus says READY');
      await new Promise((resolve) => setTimeout(resolve, STARTUP_POLL_MS));
    }
  };

  // Loads and unloads of one model id run one at a time, in the order they came. An unloadModel cancels,
  // as it arrives, every load of its id not yet answered (ModelMesh cancels a load that ran too long,
  // then unloads it): such a load undoes what it registered at its next step, and the unload, queued
  // behind it, answers once nothing of it is left.
  const claims = new Map<string, Set<LoadClaim>>();
  const turns = new Map<string, Promise<void>>();
  const inTurn = <T>(id: string, op: () => Promise<T>): Promise<T> => {
    const run = (turns.get(id) ?? Promise.resolve()).then(op);
    const done = run.then(() => undefined, () => undefined);
    turns.set(id, done);
    void done.then(() => {
      if (turns.get(id) === done) turns.delete(id);
    });
    return run;
  };
  const cancelLoads = (id?: string) => {
    for (const [key, set] of claims) if (id === undefined || key === id) for (const claim of set) claim.cancelled = true;
  };

  /** One load, checked to be still wanted after each wait; the model's size and concurrency. */
  const loadOne = async (req: LoadModelRequest, callDeadline: number, wanted: () => boolean): Promise<{ sizeInBytes: number; maxConcurrency: number }> => {
    // ModelMesh times the whole call against the modelLoadingTimeoutMs it was given: the warm-up too.
    const deadline = Math.min(callDeadline, Date.now() + options.modelLoadTimeoutMs);
    const check = () => {
      if (!wanted()) throw new ClientDisconnectedError(`the load of "${req.modelId}" was cancelled (ModelMesh gave up on it, or unloaded it)`);
    };
    await started(deadline, wanted);
    check();
    let registeredHere = false;
    try {
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
        check();
      }
      const register = () => scheduler.register({ name: req.modelId, url: req.modelPath, synchronous: true, pinned: true, initialWorkers: 1, maxWorkers: 1 });
      if (!ours) {
        try {
          await register();
        } catch (err) {
          if (!(err instanceof QuiverError && err.kind === 'ModelAlreadyExists')) throw asLoadRefusal(err);
          // Another API registered the name meanwhile (ModelMesh's own loads of an id take turns): that
          // model gives way, as one found before the load does, once.
          log.warn('ModelMesh: a model of the same name registered meanwhile is replaced', { model: req.modelId });
          await scheduler.unregisterAll(req.modelId).catch(gone);
          check();
          await register().catch((again: unknown) => {
            throw asLoadRefusal(again);
          });
        }
        registeredHere = true;
      }
      check();
      // A load ModelMesh retried finds its model there (loads of an id take turns).
      await scheduler.signature(req.modelId);
      check();
      // ModelMesh asks modelSize only when this says 0: the size it keeps is this one, so it includes a
      // first run's arena (a detector's is ~20× its load).
      await scheduler.warmUp(req.modelId, deadline);
      check();
      // A thread started for it is memory its load took (loads come one at a time): in its size, so that
      // ModelMesh's sum of sizes stays within the capacity the budget gives.
      threadBytes.set(req.modelId, Math.max(threadBytes.get(req.modelId) ?? 0, scheduler.threadOverheadBytes() - threadsBefore));
      const sizeInBytes = sizeOf(req.modelId);
      answered.set(req.modelId, sizeInBytes);
      return { sizeInBytes, maxConcurrency: concurrency(req.modelId) };
    } catch (err) {
      if (wanted()) throw err;
      // Cancelled: what this load registered goes before its turn ends (the unload behind it answers after).
      if (registeredHere) {
        await scheduler.unregisterAll(req.modelId).catch(gone);
        threadBytes.delete(req.modelId);
      }
      throw err instanceof ClientDisconnectedError ? err : new ClientDisconnectedError(`the load of "${req.modelId}" was cancelled (ModelMesh gave up on it, or unloaded it)`);
    }
  };

  return {
    runtimeStatus: unary(async () => {
      if (!options.isStarted()) return { status: 'STARTING' };
      // ModelMesh (re)started: loads it sent before are nobody's now.
      cancelLoads();
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
      const claim: LoadClaim = { cancelled: false };
      const mine = claims.get(req.modelId) ?? new Set<LoadClaim>();
      mine.add(claim);
      claims.set(req.modelId, mine);
      try {
        return await inTurn(req.modelId, () => loadOne(req, deadlineOf(call), () => !claim.cancelled && !call.cancelled));
      } finally {
        mine.delete(claim);
        if (mine.size === 0 && claims.get(req.modelId) === mine) claims.delete(req.modelId);
      }
    }, 'mesh-load'),
    unloadModel: unary(async (req: { modelId: string }) => {
      const loading = (claims.get(req.modelId)?.size ?? 0) > 0;
      cancelLoads(req.modelId);
      // A cancelled load still queued or loading in the scheduler would hold the loads after it: dropping
      // its registration now makes the scheduler give it up at its turn. The unload's own turn comes after.
      if (loading && options.isStarted() && scheduler.hasModel(req.modelId)) {
        scheduler.unregisterAll(req.modelId).catch(gone).catch((err: Error) => log.warn('ModelMesh: a cancelled load could not be dropped at once', { model: req.modelId, error: err.message }));
      }
      return inTurn(req.modelId, async () => {
        // Before the warm-up ends nothing of ModelMesh's is loaded (loads wait for it): nothing to do.
        if (options.isStarted() && scheduler.hasModel(req.modelId)) await scheduler.unregisterAll(req.modelId).catch(gone);
        threadBytes.delete(req.modelId);
        return {};
      });
    }),
    // ModelMesh waits 500 ms for this: a local file's size and earlier measurements only, never a download or unpack.
    predictModelSize: unary(async (req: LoadModelRequest) => ({
      sizeInBytes: answered.get(req.modelId) ?? (await scheduler.quickPrediction(req.modelPath)) ?? options.defaultModelSizeBytes,
    })),
    modelSize: unary(async (req: { modelId: string }) => {
      // During the warm-up no model of ModelMesh's is here (its loads wait for the warm-up).
      if (!options.isStarted()) throw new ModelNotFoundError(`model "${req.modelId}" is not loaded: the server is still starting`);
      return { sizeInBytes: sizeOf(req.modelId) };
    }),
  };
}
