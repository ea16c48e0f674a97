// Applies the placement policy: registers models (resolve, reserve, place on workers), scales and
// unregisters them, and routes each request to a worker that hosts its model.
import {
  BadRequestError, InferenceTimeoutError, ModelLoadFailedError, InsufficientMemoryError, ModelNotFoundError, NoWorkerAvailableError, QueueFullError, QuiverError,
} from '../errors';
import type { ModelConfig } from '../models/model-config';
import * as fsp from 'node:fs/promises';
import { ModelPackage, ModelSourceOptions, localModelFile, openModelPackage, storeUrlFor } from '../models/model-source';
import type { ClassifierFormat } from '../postprocess/classify';
import { validateModelName, validateRelativePath } from '../models/model-name';
import { ModelRecord, ModelRegistry, ModelSettings } from '../models/registry';
import type { SnapshotModel } from '../models/snapshot';
import type { CacheStatus } from '../models/download-cache';
import { log } from '../log';
import type { QuiverMetrics } from '../metrics';
import type { InferRequest, InferResult, LoadResult, ModelSpec } from '../workers/messages';
import type { TensorInfo } from '../preprocess/tensor-types';
import { WorkerPool, deadlineSignal, transferableBody } from '../workers/pool';
import { ModelBatcher } from './batcher';
import { HostInfo, ModelDescription, Placement, describeModel } from './model-description';
import { canBatch } from './batching';
import type { EvictionPolicyName, ResidentModel } from './eviction';
import { MemoryBudget } from './memory-budget';
import { chooseRemovals, pickWorker, placeModel, threadsToAdd, WorkerLoad } from './placement';
import { LoadCostModel } from './cost-model';

export interface RegisterRequest {
  url: string;
  name?: string;
  initialWorkers?: number;
  batchSize?: number;
  maxBatchDelayMs?: number;
  responseTimeoutS?: number;
  /** Wait until the model is loaded on its workers (MMS `synchronous`). */
  synchronous?: boolean;
  loadedAtStartup?: boolean;
  /** The name is a SageMaker target model, a relative path already checked as one. */
  nameIsTargetPath?: boolean;
}

/** A model's tensors and serving settings, as protocol metadata and Triton's model config report them. */
export interface ModelSignature {
  name: string;
  version: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Requests run together (1: no dynamic batching). */
  batchSize: number;
  maxBatchDelayMs: number;
  workers: number;
  modelFile: string;
}

/** An answer, and whether it waited for its model to load. */
export type InferOutcome = InferResult & { coldStart: boolean };

export interface SchedulerOptions extends ModelSourceOptions {
  defaultWorkersPerModel: number;
  /** Threads the pool may grow to when copies of a model ask for more than it has (at least its size). */
  maxWorkerThreads?: number;
  /** Requests one model may have queued or running. */
  jobQueueSize: number;
  /** Requests all models together may have queued or running. */
  maxQueuedRequests?: number;
  defaultResponseTimeoutS?: number;
  /** Seconds one copy's load may take; the thread is ended past it. */
  modelLoadTimeoutS?: number;
  metrics?: QuiverMetrics;
  /** Bytes the placed models may take together (measured); 0 or absent: no budget. */
  memoryBudgetBytes?: number;
  evictionPolicy?: EvictionPolicyName;
  /** The answer of top-k classifiers whose model config does not choose one. */
  classifierFormat?: ClassifierFormat;
  /**
   * Writes the snapshot of the registered models; throws (SnapshotWriteError) when it cannot, and the
   * change that asked for it is then not made.
   */
  persist?: (models: SnapshotModel[]) => void;
}

export interface ServerStatus {
  budget: { bytes: number; usedBytes: number; policy: EvictionPolicyName };
  downloadCache?: CacheStatus;
  models: { modelName: string; status: string; memoryBytes: number; predictedBytes: number; workers: number[]; hits: number; lastUsed?: string }[];
}



/**
 * What one more worker thread holds before any model: its V8 isolate and onnxruntime's environment and
 * allocators (measured 25–30 MiB on Linux x64, onnxruntime-node 1.30).
 */
const THREAD_FIXED_BYTES = 28 * 2 ** 20;

function withClassifierFormat(config: ModelConfig, format: ClassifierFormat): ModelConfig {
  const post = config.postprocess;
  return post.type === 'topk' && post.format === undefined ? { ...config, postprocess: { ...post, format } } : config;
}

export class ModelScheduler {
  private readonly placements = new Map<string, Placement>();
  private readonly loading = new Map<string, Promise<ModelRecord>>();
  // Loads run one at a time so each one's memory growth can be attributed to it.
  private loadChain: Promise<unknown> = Promise.resolve();
  private keySeq = 0;
  /** Requests of all models queued or running. */
  private pending = 0;
  // Admissions (make room, then load) run one at a time, so two loads never count the same free bytes.
  private admission: Promise<unknown> = Promise.resolve();
  private readonly costs = new LoadCostModel();
  private readonly budget: MemoryBudget;
  /** Requests per model that wait for its placement (a load in progress). */
  private readonly waiting = new Map<string, number>();
  /** Lazy registrations whose load failed after they were answered, by name, until the name is registered again. */
  private readonly failedLoads = new Map<string, ModelRecord>();
  /** Requests per model queued, waiting for a load or running: counted from arrival. */
  private readonly arrivedByModel = new Map<string, number>();
  /** Requests per model since it was registered (GDSF's frequency). */
  private readonly hitsByModel = new Map<string, number>();

  /** Threads the server started with; those past them are paid from the budget. */
  private readonly baseWorkers: number;

  constructor(
    readonly registry: ModelRegistry,
    private readonly pool: WorkerPool,
    private readonly options: SchedulerOptions,
  ) {
    this.baseWorkers = pool.slots.length;
    this.budget = new MemoryBudget(
      { bytes: options.memoryBudgetBytes ?? 0, policy: options.evictionPolicy ?? 'gdsf' },
      { usedBytes: () => this.budgetUsedBytes(), residents: (except) => this.residents(except), evict: (name) => this.evict(name) },
    );
  }

  /** What the budget holds: the placed copies, and the threads started past `workers` for them. */
  private budgetUsedBytes(): number {
    return this.memoryInUse().host + this.addedThreads * THREAD_FIXED_BYTES;
  }

  private get addedThreads(): number {
    return Math.max(0, this.workerCount - this.baseWorkers);
  }

  get workerCount(): number {
    return this.pool.slots.length;
  }

  private settingsFor(request: RegisterRequest, pkg: ModelPackage): ModelSettings {
    const workers = request.initialWorkers ?? Math.min(this.options.defaultWorkersPerModel, this.workerCount);
    if (!Number.isInteger(workers) || workers < 0) throw new BadRequestError(`initial_workers must be a whole number ≥ 0, got ${workers}`);
    this.checkPoolHolds('initial_workers', workers);
    return {
      minWorkers: workers,
      maxWorkers: workers,
      batchSize: request.batchSize ?? pkg.config.batchSize,
      maxBatchDelayMs: request.maxBatchDelayMs ?? pkg.config.maxBatchDelayMs,
      responseTimeoutS: request.responseTimeoutS ?? pkg.config.responseTimeoutS ?? this.options.defaultResponseTimeoutS ?? 120,
    };
  }

  /**
   * Registers a model. The artifact is always checked before this resolves; the load onto workers is
   * awaited too unless `synchronous` is false. Requests for the model meanwhile wait for that load.
   */
  async register(request: RegisterRequest): Promise<ModelRecord> {
    let record: ModelRecord;
    let opening: Promise<ModelPackage>;
    if (request.name !== undefined) {
      // Reserve first so that a concurrent registration of the same name gets 409 at once.
      record = this.registry.reserve(request.nameIsTargetPath ? validateRelativePath(request.name, 'target model') : validateModelName(request.name), request.url, request.loadedAtStartup);
      opening = openModelPackage(request.url, this.options);
    } else {
      const pkg = await openModelPackage(request.url, this.options);
      try {
        record = this.registry.reserve(validateModelName(pkg.name), request.url, request.loadedAtStartup);
      } catch (err) {
        this.releaseArtifact(pkg);
        throw err;
      }
      opening = Promise.resolve(pkg);
    }
    this.failedLoads.delete(record.name);
    // Reached twice when the artifact itself failed (both chains below end here).
    const forget = (err: unknown): never => {
      if (this.registry.find(record.name) === record) {
        this.registry.remove(record.name);
        // The snapshot written at registration lists it.
        this.persistQuietly();
      }
      this.releaseRecord(record);
      throw err;
    };
    const prepared = opening
      .then((pkg) => {
        record.pkg = pkg;
        record.settings = this.settingsFor(request, pkg);
        // On disk before it is answered or loaded: a registration the snapshot cannot hold is refused.
        this.persist();
        return record.settings;
      })
      .catch(forget);
    const loaded = prepared
      .then((settings) => this.placeNew(record, record.pkg!, settings.minWorkers))
      .catch(forget);
    this.loading.set(record.name, loaded);
    let answered = false;
    loaded
      .finally(() => {
        if (this.loading.get(record.name) === loaded) this.loading.delete(record.name);
      })
      .catch((err: Error) => {
        // Nobody waits for a lazy registration's load: the log and GET /models/{name} show its failure.
        if (answered && request.synchronous === false && !this.registry.has(record.name)) {
          log.warn('model failed to load after its registration was answered; it is unregistered', { model: record.name, error: err.message });
          record.state = 'failed';
          record.error = err.message;
          this.failedLoads.set(record.name, record);
        }
      });
    await prepared;
    answered = true;
    if (request.synchronous === false) return record;
    return loaded;
  }

  private admit<T>(work: () => Promise<T>): Promise<T> {
    const run = this.admission.then(work, work);
    this.admission = run.catch(() => undefined);
    return run;
  }

  /**
   * What one copy of the local model at `url` is predicted to take, from its file's size and earlier
   * loads of it, without opening the package (ModelMesh's predictModelSize); undefined when only a
   * download or an unpack could tell.
   */
  async quickPrediction(url: string): Promise<number | undefined> {
    const file = await localModelFile(url, this.options.modelStore).catch(() => undefined);
    if (!file) return undefined;
    return this.costs.predictCopy(file, (await fsp.stat(file)).size);
  }

  predictCopyBytes(pkg: ModelPackage): number {
    return this.costs.predictCopy(pkg.modelPath, pkg.modelBytes);
  }

  private residents(forModel: string): ResidentModel[] {
    return [...this.placements]
      .filter(([name]) => name !== forModel)
      .map(([name, p]) => ({
        name,
        bytes: [...p.hosts.values()].reduce((a, h) => a + h.memoryBytes, 0),
        loadMs: Math.max(0, ...[...p.hosts.values()].map((h) => h.loadMs)),
        // Frequency survives evictions, so a popular model that was pushed out is valued on its return.
        hits: this.hitsByModel.get(name) ?? 0,
        lastUsed: p.lastUsed,
        busy: p.inFlight > 0 || this.loading.has(name) || this.waiting.has(name),
      }));
  }

  private async evict(name: string): Promise<void> {
    const placement = this.placements.get(name);
    if (!placement) return;
    this.placements.delete(name);
    const record = this.registry.find(name);
    if (record) record.state = 'evicted';
    this.options.metrics?.evictions.inc({ model: name });
    log.info('model evicted to make room', { model: name, hits: placement.hits });
    await this.removeHosts(placement, [...placement.hosts.keys()]);
  }

  /** An evicted model's next request loads it again; concurrent requests wait for that one load. */
  private reload(record: ModelRecord): Promise<ModelRecord> {
    record.state = 'loading';
    const loading = this.placeNew(record, record.pkg!, Math.max(1, record.settings!.minWorkers))
      .catch((err: unknown) => {
        if (this.registry.find(record.name) === record) record.state = 'evicted';
        throw err;
      })
      .finally(() => {
        if (this.loading.get(record.name) === loading) this.loading.delete(record.name);
      });
    this.loading.set(record.name, loading);
    loading.catch(() => undefined);
    return loading;
  }

  private placeNew(record: ModelRecord, pkg: ModelPackage, workers: number): Promise<ModelRecord> {
    return this.admit(async () => {
      await this.budget.makeRoom(record.name, { keepBytes: this.predictCopyBytes(pkg) * workers, peakBytes: this.costs.predictLoadExtra(pkg.modelPath, pkg.modelBytes) });
      const placed = await this.placeAdmitted(record, pkg, workers);
      // The measured cost can exceed the prediction: make room again for the difference.
      await this.budget
        .makeRoom(record.name, { keepBytes: 0, waitForBusy: false })
        .catch((err: Error) => log.warn('over the memory budget after a load', { model: record.name, error: err.message }));
      return placed;
    });
  }

  private async placeAdmitted(record: ModelRecord, pkg: ModelPackage, workers: number): Promise<ModelRecord> {
    const spec: ModelSpec = {
      key: `${record.name}#${++this.keySeq}`,
      name: record.name,
      version: pkg.version,
      modelPath: pkg.modelPath,
      config: withClassifierFormat(pkg.config, this.options.classifierFormat ?? 'quiver'),
      labels: pkg.labels,
      handlerPath: pkg.handlerPath,
    };
    const predictedBytes = this.predictCopyBytes(pkg) * workers;
    const placement: Placement = { spec, hosts: new Map(), inputs: [], outputs: [], inFlight: 0, cursor: 0, hits: 0, lastUsed: Date.now(), predictedBytes };
    try {
      await this.addHosts(placement, workers, pkg.modelBytes);
    } catch (err) {
      await this.removeHosts(placement, [...placement.hosts.keys()]);
      throw err;
    }
    if (placement.hosts.size > 0) {
      const copies = [...placement.hosts.values()];
      const perCopy = Math.round(copies.reduce((a, h) => a + h.memoryBytes, 0) / copies.length);
      const peaks = copies.flatMap((h) => (h.loadPeakBytes === undefined ? [] : [h.loadPeakBytes]));
      this.costs.record(pkg.modelPath, pkg.modelBytes, { copyBytes: perCopy, peakBytes: peaks.length ? Math.max(...peaks) : undefined });
    }
    if (this.registry.find(record.name) !== record) {
      // Unregistered while it was loading.
      await this.removeHosts(placement, [...placement.hosts.keys()]);
      throw new ModelNotFoundError(`model "${record.name}" was unregistered while it loaded`);
    }
    this.configureBatching(record, placement);
    this.placements.set(record.name, placement);
    record.io = { inputs: placement.inputs, outputs: placement.outputs };
    record.state = 'ready';
    return record;
  }

  private configureBatching(record: ModelRecord, placement: Placement): void {
    const settings = record.settings!;
    if (settings.batchSize <= 1) return;
    if (placement.inputs.length > 0 && !canBatch(placement.inputs.map((i) => i.shape))) {
      log.info('model has a fixed batch dimension: batching is off', { model: record.name });
      record.settings = { ...settings, batchSize: 1 };
      return;
    }
    const metrics = this.options.metrics;
    placement.batcher = new ModelBatcher(record.name, settings.batchSize, settings.maxBatchDelayMs, {
      hosts: () => [...placement.hosts.keys()].sort((a, b) => this.pool.slot(a).inFlight - this.pool.slot(b).inFlight),
      dispatch: async (host, requests, signal) => {
        const moved = requests.map((r) => ({ r, ...transferableBody(r.body) }));
        const result = await this.pool.slot(host).run(
          { kind: 'inferBatch', model: placement.spec, requests: moved.map(({ r, body }) => ({ ...r, body })) },
          moved.flatMap((m) => m.transfer),
          signal,
        );
        this.addFirstRunBytes(placement, host, result.firstRunBytes);
        return result;
      },
      observeBatch: (size) => metrics?.batchSize.observe({ model: record.name }, size),
    });
  }

  /** What a copy's first run kept counts toward its cost, and toward the next load's prediction. */
  private addFirstRunBytes(placement: Placement, id: number, bytes: number | undefined): void {
    const host = placement.hosts.get(id);
    if (!bytes || !host) return;
    host.memoryBytes += bytes;
    this.costs.recordFirstRun(placement.spec.modelPath, bytes);
  }

  private workerLoads(): WorkerLoad[] {
    const loads: WorkerLoad[] = this.pool.slots.map((s) => ({ id: s.id, models: 0, bytes: 0 }));
    for (const p of this.placements.values()) {
      for (const [id, host] of p.hosts) {
        loads[id].models += 1;
        loads[id].bytes += host.memoryBytes;
      }
    }
    return loads;
  }

  private async addHosts(placement: Placement, count: number, predictedBytes: number): Promise<void> {
    // Each copy needs a thread of its own, and gets one that hosts no other model while the pool may grow.
    const hosting = new Set(placement.hosts.keys());
    // A thread of its own only while the budget has room for the thread too.
    // Threads past `workers` take at most a sixteenth of the budget: a tight budget is for models.
    const room = this.budget.bytes > 0
      ? Math.min(
        Math.floor(Math.max(0, this.budget.bytes - this.budgetUsedBytes() - predictedBytes * count) / THREAD_FIXED_BYTES),
        Math.floor(this.budget.bytes / 16 / THREAD_FIXED_BYTES) - this.addedThreads,
      )
      : Infinity;
    const add = Math.max(0, Math.min(room, threadsToAdd(this.workerLoads(), count, hosting, this.maxWorkerThreads)));
    await this.pool.growTo(Math.max(this.workerCount + add, Math.min(placement.hosts.size + count, this.maxWorkerThreads)));
    const chosen = placeModel(this.workerLoads(), count, hosting);
    const metrics = this.options.metrics;
    for (const id of chosen) {
      const limitS = this.options.modelLoadTimeoutS ?? 120;
      const load = this.loadChain.then(async () => {
        const timer = deadlineSignal(limitS * 1000);
        try {
          return await this.pool.slot(id).run({ kind: 'load', model: placement.spec }, [], timer.signal);
        } catch (err) {
          if (err instanceof QuiverError && err.kind === 'InferenceTimeout') {
            throw new ModelLoadFailedError(`model "${placement.spec.name}" did not load within ${limitS} s (model_load_timeout); its worker thread was replaced`);
          }
          throw err;
        } finally {
          timer.clear();
        }
      });
      this.loadChain = load.catch(() => undefined);
      let result: LoadResult;
      try {
        result = await load;
      } catch (err) {
        metrics?.modelLoads.inc({ model: placement.spec.name, outcome: 'failure' });
        throw err;
      }
      metrics?.modelLoads.inc({ model: placement.spec.name, outcome: 'success' });
      metrics?.modelLoadDuration.observe({ model: placement.spec.name }, result.loadMs / 1e3);
      log.info('model loaded on worker', { model: placement.spec.name, worker: id, loadMs: Math.round(result.loadMs), memoryBytes: result.rssDeltaBytes });
      placement.inputs = result.inputs;
      placement.outputs = result.outputs;
      // RSS growth is noisy for tiny models; never report less than the weights themselves.
      placement.hosts.set(id, {
        memoryBytes: Math.max(result.rssDeltaBytes, predictedBytes),
        loadPeakBytes: result.peakDeltaBytes,
        loadMs: result.loadMs,
        loadedAt: new Date(),
        preprocessing: result.preprocessing,
        deviceBytes: result.deviceBytes,
      });
    }
  }

  private async removeHosts(placement: Placement, ids: number[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        placement.hosts.delete(id);
        // Queued behind the model's in-flight tasks on that worker, so those finish first.
        await this.pool.slot(id).run({ kind: 'unload', key: placement.spec.key }).catch(() => undefined);
      }),
    );
  }

  private async readyPlacement(name: string): Promise<Placement> {
    let pending = this.loading.get(name);
    const record = this.registry.find(name);
    if (!pending && record?.state === 'evicted' && !this.placements.has(name)) pending = this.reload(record);
    if (pending) await pending;
    const placement = this.placements.get(name);
    if (!placement) throw new ModelNotFoundError(`model "${name}" is not registered`);
    return placement;
  }

  /**
   * Unregisters a model whatever its load state: the snapshot and the hit counts drop it at once, its
   * copies are unloaded (queued batches answered first), and its artifact is released.
   */
  async unregister(name: string): Promise<void> {
    const record = this.registry.get(name);
    // On disk first: when the snapshot cannot be written, the model stays registered.
    this.persist(this.snapshotModels().filter((m) => m.name !== name));
    this.registry.remove(name);
    this.hitsByModel.delete(name);
    await this.loading.get(name)?.catch(() => undefined);
    const placement = this.placements.get(name);
    // A registration of the same name made meanwhile owns whatever is placed now.
    if (placement && !this.registry.find(name)) {
      this.placements.delete(name);
      record.state = 'unloading';
      // Requests already queued for a batch are answered before the model goes.
      await placement.batcher?.drain();
      await this.removeHosts(placement, [...placement.hosts.keys()]);
    }
    this.releaseRecord(record);
  }

  /** Releases a registration's artifact once, however many paths (failed load, unregister) reach here. */
  private releaseRecord(record: ModelRecord): void {
    if (!record.pkg || record.artifactReleased) return;
    record.artifactReleased = true;
    this.releaseArtifact(record.pkg);
  }

  /** Unpins a downloaded artifact's cache entry once no model uses it. */
  private releaseArtifact(pkg: ModelPackage): void {
    if (pkg.cacheKey !== undefined) this.options.remote?.release(pkg.cacheKey);
  }

  /** Threads the pool may grow to: a model's copies live on distinct threads, so no count can pass it. */
  get maxWorkerThreads(): number {
    return Math.max(this.workerCount, this.options.maxWorkerThreads ?? 0);
  }

  private checkPoolHolds(parameter: string, workers: number): void {
    const limit = this.maxWorkerThreads;
    if (workers <= limit) return;
    throw new BadRequestError(
      `${parameter}=${workers} is more than the pool may hold: a model has at most one copy per worker thread, and there may be at most ${limit} threads (max_worker_threads); ask for ${limit} or fewer, or raise max_worker_threads`,
    );
  }

  /**
   * MMS scale: keep `minWorkers` copies. What can be known at once is checked at once (it throws, not
   * rejects), so that a scale run in the background still fails its caller: the counts, the pool's
   * limit, and a count whose copies could not fit the budget even with every other model unloaded.
   */
  scale(name: string, minWorkers: number, maxWorkers = minWorkers): Promise<void> {
    if (!Number.isInteger(minWorkers) || minWorkers < 0) throw new BadRequestError(`min_worker must be a whole number ≥ 0, got ${minWorkers}`);
    if (!Number.isInteger(maxWorkers) || maxWorkers < minWorkers) throw new BadRequestError(`max_worker must be a whole number ≥ min_worker (${minWorkers}), got ${maxWorkers}`);
    const record = this.registry.get(name);
    this.checkPoolHolds('min_worker', minWorkers);
    this.checkPoolHolds('max_worker', maxWorkers);
    if (this.budget.bytes > 0 && record.pkg) {
      const perCopy = this.predictCopyBytes(record.pkg);
      const most = Math.floor(this.budget.bytes / Math.max(1, perCopy));
      if (minWorkers > most) {
        throw new InsufficientMemoryError(
          `model "${name}" cannot have ${minWorkers} workers: each copy takes about ${Math.round(perCopy / 2 ** 20)} MiB, so at most ${most} fit in the ${Math.round(this.budget.bytes / 2 ** 20)} MiB memory budget even with every other model unloaded`,
        );
      }
    }
    return this.applyScale(record, minWorkers, maxWorkers);
  }

  private async applyScale(record: ModelRecord, target: number, maxWorkers: number): Promise<void> {
    const name = record.name;
    await this.readyPlacement(name);
    // One admission at a time, and the placement read inside it: concurrent scales, evictions and
    // unregistrations between the request and its turn are seen.
    await this.admit(async () => {
      const placement = this.placements.get(name);
      if (this.registry.find(name) !== record) throw new ModelNotFoundError(`model "${name}" was unregistered while it was being scaled`);
      if (!placement) {
        // Evicted meanwhile: its next load places the new count.
        record.settings = { ...record.settings!, minWorkers: target, maxWorkers };
        return;
      }
      const current = placement.hosts.size;
      if (target > current) {
        const pkg = record.pkg!;
        const perCopy = this.predictCopyBytes(pkg);
        try {
          await this.budget.makeRoom(name, { keepBytes: perCopy * (target - current), peakBytes: this.costs.predictLoadExtra(pkg.modelPath, pkg.modelBytes) });
        } catch (err) {
          if (!(err instanceof InsufficientMemoryError)) throw err;
          throw new InsufficientMemoryError(`model "${name}" cannot grow from ${current} to ${target} workers now (each copy about ${Math.round(perCopy / 2 ** 20)} MiB): ${err.message}`);
        }
        await this.addHosts(placement, target - current, pkg.modelBytes);
      } else if (target < current) {
        const hosts = this.workerLoads().filter((w) => placement.hosts.has(w.id));
        await this.removeHosts(placement, chooseRemovals(hosts, current - target));
      }
      record.settings = { ...record.settings!, minWorkers: target, maxWorkers };
    });
    this.persistQuietly();
  }

  private persist(models: SnapshotModel[] = this.snapshotModels()): void {
    this.options.persist?.(models);
  }

  /** For changes already made (a scale, a failed load's removal): a snapshot that fails is logged. */
  private persistQuietly(): void {
    try {
      this.persist();
    } catch (err) {
      log.error('snapshot could not be written', { error: (err as Error).message });
    }
  }

  /** The registered models as a snapshot records them. */
  snapshotModels(): SnapshotModel[] {
    return this.registry
      .all()
      // Whatever its load state: a model reloading after an eviction is still registered.
      .filter((r) => r.state !== 'unloading' && r.settings)
      .map((r) => ({
        name: r.name,
        url: r.url,
        workers: r.settings!.minWorkers,
        batchSize: r.settings!.batchSize,
        maxBatchDelayMs: r.settings!.maxBatchDelayMs,
        responseTimeoutS: r.settings!.responseTimeoutS,
      }));
  }

  /** SageMaker's /invocations: load the target from the model store on first use, once. */
  async ensureLoaded(name: string, url: string): Promise<void> {
    if (this.registry.has(name)) return;
    try {
      await this.register({ name, url, synchronous: true, nameIsTargetPath: true });
    } catch (err) {
      // Another request registered it first; wait for that load instead.
      if (!(err instanceof QuiverError && err.kind === 'ModelAlreadyExists')) throw err;
    }
  }

  /** Admits a request on arrival, cold or not: it counts against job_queue_size and max_queued_requests from now. */
  private admitRequest(name: string): void {
    const mine = this.arrivedByModel.get(name) ?? 0;
    if (mine >= this.options.jobQueueSize) {
      throw new QueueFullError(`model "${name}" has ${mine} requests queued or running, the limit (job_queue_size)`);
    }
    const globalLimit = this.options.maxQueuedRequests ?? Infinity;
    if (this.pending >= globalLimit) {
      throw new QueueFullError(`the server has ${this.pending} requests queued or running, the limit (max_queued_requests)`);
    }
    this.arrivedByModel.set(name, mine + 1);
    this.pending++;
  }

  private releaseRequest(name: string): void {
    this.pending--;
    const left = (this.arrivedByModel.get(name) ?? 1) - 1;
    if (left > 0) this.arrivedByModel.set(name, left);
    else this.arrivedByModel.delete(name);
  }

  /** Waits for the model's placement, at most until the request's deadline (its response_timeout runs from arrival). */
  private async placementBefore(name: string, deadline: number, limit: string): Promise<Placement> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new InferenceTimeoutError(`model "${name}" did not answer within ${limit}: it was still loading; the request was dropped`)),
        Math.max(0, deadline - Date.now()),
      );
      timer.unref();
    });
    const ready = async () => {
      let placement = await this.readyPlacement(name);
      // Evicted between its load and this request's turn: load it again rather than fail.
      for (let tries = 0; this.placements.get(name) !== placement && tries < 3; tries++) placement = await this.readyPlacement(name);
      return placement;
    };
    try {
      return await Promise.race([ready(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `clientDeadline` (epoch ms, a gRPC call's deadline): the request is dropped then if its response_timeout is later. */
  async infer(name: string, version: string | undefined, request: InferRequest, clientDeadline = Infinity): Promise<InferOutcome> {
    const record = this.registry.get(name);
    const arrivedAt = Date.now();
    const timeoutS = record.settings?.responseTimeoutS ?? this.options.defaultResponseTimeoutS ?? 120;
    const deadline = Math.min(arrivedAt + timeoutS * 1000, clientDeadline);
    const limit = clientDeadline < arrivedAt + timeoutS * 1000 ? "the call's deadline" : `${timeoutS} s (response_timeout)`;
    this.admitRequest(name);
    // A request that finds its model loading or evicted waits for the load: a cold start.
    const coldStart = this.loading.has(name) || record.state === 'evicted';
    // A model with requests waiting for its load is busy: another load must not evict it before they run.
    this.waiting.set(name, (this.waiting.get(name) ?? 0) + 1);
    // A placed model is taken at once, without a turn of the event loop in which it could go.
    let placement: Placement | undefined = this.loading.has(name) ? undefined : this.placements.get(name);
    let counted = false;
    try {
      try {
        placement ??= await this.placementBefore(name, deadline, limit);
      } finally {
        const left = this.waiting.get(name)! - 1;
        if (left > 0) this.waiting.set(name, left);
        else this.waiting.delete(name);
      }
      if (version !== undefined && version !== placement.spec.version) {
        throw new ModelNotFoundError(`model "${name}" has no version "${version}" (registered: ${placement.spec.version})`);
      }
      if (placement.hosts.size === 0) throw new NoWorkerAvailableError(`model "${name}" has no workers; scale it with PUT /models/${name}?min_worker=1`);
      placement.inFlight++;
      counted = true;
      placement.hits++;
      placement.lastUsed = Date.now();
      this.hitsByModel.set(name, (this.hitsByModel.get(name) ?? 0) + 1);
      const remainingMs = Math.max(1, deadline - Date.now());
      let result: InferResult;
      if (placement.batcher) {
        result = await placement.batcher.submit(request, remainingMs);
      } else {
        const hosts = [...placement.hosts.keys()].map((id) => ({ id, inFlight: this.pool.slot(id).inFlight }));
        const id = pickWorker(hosts, placement.cursor++)!;
        const { body, transfer } = transferableBody(request.body);
        const timer = deadlineSignal(remainingMs);
        try {
          result = await this.pool.slot(id).run({ kind: 'infer', model: placement.spec, request: { ...request, body } }, transfer, timer.signal);
        } finally {
          timer.clear();
        }
        this.addFirstRunBytes(placement, id, result.firstRunBytes);
        this.options.metrics?.batchSize.observe({ model: name }, 1);
      }
      placement.lastPreprocessPath = result.preprocessPath;
      return { ...result, coldStart };
    } catch (err) {
      if (err instanceof QuiverError && err.kind === 'InferenceTimeout' && !/still loading/.test(err.message)) {
        throw new InferenceTimeoutError(`model "${name}" did not answer within ${limit}; the request was dropped`);
      }
      throw err;
    } finally {
      if (counted) placement!.inFlight--;
      this.releaseRequest(name);
    }
  }

  /**
   * What a model takes and gives, for protocol metadata: known from its last load (kept while it is
   * evicted); a model never loaded yet is loaded, as its first request would.
   */
  async signature(name: string, version?: string): Promise<ModelSignature> {
    const record = this.registry.get(name);
    this.checkVersion(record, version);
    if (!record.io) await this.readyPlacement(name);
    const settings = record.settings!;
    return {
      name,
      version: record.pkg?.version ?? '',
      inputs: record.io!.inputs,
      outputs: record.io!.outputs,
      batchSize: this.placements.get(name)?.batcher ? settings.batchSize : 1,
      maxBatchDelayMs: settings.maxBatchDelayMs,
      workers: Math.max(1, settings.minWorkers),
      modelFile: record.pkg ? record.pkg.modelPath.split('/').pop()! : 'model.onnx',
    };
  }

  /**
   * Triton's repository load: the model of that name in the model store, registered and loaded. A
   * registered model is loaded if it is not; given new settings, it is registered again with them.
   */
  async loadFromRepository(name: string, settings: { batchSize?: number; maxBatchDelayMs?: number; workers?: number } = {}): Promise<void> {
    const changed = Object.values(settings).some((v) => v !== undefined);
    if (this.registry.has(name)) {
      if (!changed) {
        await this.signature(name);
        return;
      }
      await this.unregister(name);
    }
    const url = await storeUrlFor(this.options.modelStore, name);
    await this.register({ name, url, synchronous: true, batchSize: settings.batchSize, maxBatchDelayMs: settings.maxBatchDelayMs, initialWorkers: settings.workers });
  }

  /** Triton's repository index: every registered model with its state, and the store's others as unavailable. */
  async repositoryIndex(): Promise<{ name: string; version: string; state: string; reason: string }[]> {
    const entries = new Map<string, { name: string; version: string; state: string; reason: string }>();
    const stateOf: Record<string, [string, string]> = {
      ready: ['READY', ''], loading: ['LOADING', ''], evicted: ['READY', 'evicted to make room: its next request loads it'],
      unloading: ['UNLOADING', ''], failed: ['UNAVAILABLE', 'its load failed'],
    };
    for (const record of [...this.failedLoads.values(), ...this.registry.all()]) {
      const [state, reason] = stateOf[record.state];
      entries.set(record.name, { name: record.name, version: record.pkg?.version ?? '', state, reason: record.error ?? reason });
    }
    const dirents = await fsp.readdir(this.options.modelStore, { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      const name = d.isDirectory() ? d.name : d.name.replace(/(\.tar\.gz|\.tgz|\.tar|\.mar|\.zip)$/i, '');
      if (name === d.name && !d.isDirectory()) continue;
      if (!entries.has(name)) entries.set(name, { name, version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
    }
    return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Ready as Triton means it: loaded (or evicted, which its next request loads again); not while its
   * registration's load is still running, failed or going.
   */
  readiness(name: string, version?: string): { ready: boolean; state: string } {
    const record = this.registry.get(name);
    this.checkVersion(record, version);
    return { ready: record.state === 'ready' || record.state === 'evicted', state: record.state };
  }

  private checkVersion(record: ModelRecord, version: string | undefined): void {
    const have = record.pkg?.version;
    if (version !== undefined && version !== '' && have !== undefined && version !== have) {
      throw new ModelNotFoundError(`model "${record.name}" has no version "${version}" (registered: ${have})`);
    }
  }

  /** Requests of all models queued or running now. */
  pendingRequests(): number {
    return this.pending;
  }

  /** A worker thread was replaced: load its models on the new thread now rather than on first use. */
  reloadWorker(id: number): void {
    for (const placement of this.placements.values()) {
      if (!placement.hosts.has(id)) continue;
      const load = this.loadChain.then(() => this.pool.slot(id).run({ kind: 'load', model: placement.spec }));
      this.loadChain = load.catch(() => undefined);
      load.catch((err: Error) => log.error('model reload after worker restart failed', { model: placement.spec.name, worker: id, error: err.message }));
    }
  }

  /** GET /status: the budget in use and, per registered model, its state, cost, placement and last use. */
  status(): ServerStatus {
    return {
      budget: {
        bytes: this.budget.bytes,
        usedBytes: this.budgetUsedBytes(),
        policy: this.budget.policy,
      },
      downloadCache: this.options.remote?.cache.status(),
      models: this.registry.all().map((r) => {
        const d = describeModel(r, this.placements.get(r.name), r.pkg ? this.predictCopyBytes(r.pkg) : 0);
        return {
          modelName: d.modelName, status: d.status, memoryBytes: d.memoryBytes, predictedBytes: d.predictedBytes,
          workers: d.workers.map((w) => Number(w.id)), hits: d.hits, lastUsed: d.lastUsed,
        };
      }),
    };
  }

  describe(name: string): ModelDescription {
    const failed = this.registry.has(name) ? undefined : this.failedLoads.get(name);
    if (failed) return describeModel(failed, undefined, 0);
    const record = this.registry.get(name);
    return describeModel(record, this.placements.get(name), record.pkg ? this.predictCopyBytes(record.pkg) : 0);
  }

  /** Requests queued or running per model, for the queue-depth gauge. */
  queueDepths(): Map<string, number> {
    return new Map(this.registry.all().map((r) => [r.name, this.arrivedByModel.get(r.name) ?? 0]));
  }

  /** Measured bytes of every placed copy, and device memory held for preprocessing. */
  memoryInUse(): { host: number; gpu: number } {
    let host = 0;
    const gpuByWorker = new Map<number, number>();
    for (const p of this.placements.values()) {
      for (const [id, h] of p.hosts) {
        host += h.memoryBytes;
        gpuByWorker.set(id, h.deviceBytes);
      }
    }
    return { host, gpu: [...gpuByWorker.values()].reduce((a, b) => a + b, 0) };
  }

  placedModelCount(): number {
    return this.placements.size;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
