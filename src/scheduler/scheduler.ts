// The model repository manager: registers model versions (open, reserve, load), scales, evicts and
// unregisters them, and hands each request to its version's dispatch. It composes the lifecycle (who
// is loaded, in which generation, with which leases: lifecycle.ts), request admission (admission.ts),
// the memory budget (memory-budget.ts) and dispatch (dispatch.ts); the HTTP layer sees only this class.
import {
  BadRequestError, ClientDisconnectedError, InferenceTimeoutError, InsufficientMemoryError, InternalError, ModelLoadFailedError, ModelNotFoundError,
  NoWorkerAvailableError, QuiverError,
} from '../errors';
import type { ModelConfig } from '../models/model-config';
import * as fsp from 'node:fs/promises';
import { ModelPackage, ModelSourceOptions, localModelFile, openModelPackage, releasePackage, storeUrlFor } from '../models/model-source';
import type { ClassifierFormat } from '../postprocess/classify';
import { validateModelName, validateRelativePath } from '../models/model-name';
import { ModelPage, ModelRecord, ModelRegistry, ModelSettings } from '../models/registry';
import type { SnapshotModel } from '../models/snapshot';
import type { CacheStatus } from '../models/download-cache';
import { log } from '../log';
import type { QuiverMetrics } from '../metrics';
import type { InferRequest, InferResult, LoadResult, ModelSpec } from '../workers/messages';
import type { TensorInfo } from '../preprocess/tensor-types';
import { WorkerPool } from '../workers/pool';
import { Abortable, deadlineSignal } from '../workers/cancel-signal';
import { HostInfo, ModelDescription, Placement, describeModel } from './model-description';
import type { EvictionPolicyName, ResidentModel } from './eviction';
import { GarbageCollector } from './garbage-collection';
import { MemoryBudget } from './memory-budget';
import { chooseRemovals, placeModel, threadsToAdd, WorkerLoad } from './placement';
import { LoadCostModel, MeasuredLoad } from './cost-model';
import { Lease, LifeEntry, ModelLifecycle } from './lifecycle';
import { RequestAdmission } from './admission';
import { DispatchHost, configureBatching, dispatch } from './dispatch';
import { canBatch } from './batching';
import { autoscaleStep } from './autoscale';
import { warmUpRequest } from './warm-up';
import { CpuPacer } from './cpu-pacer';
import { InferenceStatistics, VersionStatistics } from './statistics';
import { DeviceChoice, DeviceRequest, chooseDevice, gpuCandidates } from './devices';
import { DeviceBudgets, GpuBudgetStatus } from './device-budgets';
import { DeviceProbe, gpuOfWorker } from '../workers/device-probe';
import { epochMs } from '../workers/clock';

export interface RegisterRequest {
  url: string;
  name?: string;
  /** The version to register it as; absent: the package's own (the manifest's modelVersion, or 1.0). */
  version?: string;
  initialWorkers?: number;
  /** max_worker, above initialWorkers: grown to while requests queue (a snapshot's). */
  maxWorkers?: number;
  batchSize?: number;
  maxBatchDelayMs?: number;
  responseTimeoutS?: number;
  /** Where its sessions run; absent: the model config's `device`, else default_device. */
  device?: DeviceRequest;
  /** Wait until the model is loaded on its workers (MMS `synchronous`). */
  synchronous?: boolean;
  loadedAtStartup?: boolean;
  /**
   * Placed by an outside cache manager (ModelMesh), which counts it as loaded until it unloads it: the
   * budget never evicts it, and a load that needs its room is refused instead.
   */
  pinned?: boolean;
  /** The name is a SageMaker target model, a relative path already checked as one. */
  nameIsTargetPath?: boolean;
  /** What an earlier process measured for one copy (the snapshot): predicts this load instead of a guess. */
  measured?: MeasuredLoad & { firstRunBytes?: number; gpu?: { copyBytes: number; firstRunBytes?: number } };
}

/** A model's tensors and serving settings, as protocol metadata and Triton's model config report them. */
export interface ModelSignature {
  name: string;
  version: string;
  /** Every registered version of the name, in registration order (Triton's metadata lists them all). */
  versions: string[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Requests run together (1: no dynamic batching). */
  batchSize: number;
  maxBatchDelayMs: number;
  workers: number;
  modelFile: string;
  /** The input an image body feeds (the model config's `image`), in NCHW: Triton's FORMAT_NCHW. */
  imageInput?: string;
}

/** An answer, and whether it waited for its model to load. */
export type InferOutcome = InferResult & { coldStart: boolean };

export interface SchedulerOptions extends ModelSourceOptions {
  defaultWorkersPerModel: number;
  /**
   * Pace models that take more than a fair share of the CPU while another busy model gets less
   * (cpu-share.ts). Only when each session runs on its worker's thread (one intra-op thread): the
   * pacer reads those threads' CPU time.
   */
  cpuPacing?: boolean;
  /** Threads the pool may grow to when copies of a model ask for more than it has (at least its size). */
  maxWorkerThreads?: number;
  /** Requests one model version may have queued or running. */
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
  /** How often the budget is checked against what the copies hold now, and min/max workers applied (ms). */
  housekeepingMs?: number;
  /** The GPUs and whether CUDA sessions can be made; absent: none. */
  devices?: DeviceProbe;
  /** Where a model runs when neither its config nor its registration says (default_device). */
  defaultDevice?: DeviceRequest;
  /** Each GPU's memory budget in bytes. */
  gpuBudgets?: { id: number; bytes: number }[];
}

export interface ServerStatus {
  budget: { bytes: number; usedBytes: number; policy: EvictionPolicyName; gpus: GpuBudgetStatus[] };
  downloadCache?: CacheStatus;
  models: { modelName: string; modelVersion: string; status: string; memoryBytes: number; predictedBytes: number; workers: number[]; hits: number; lastUsed?: string }[];
}

/**
 * What one more worker thread holds before any model: its V8 isolate and onnxruntime's environment and
 * allocators (measured 25–30 MiB on Linux x64, onnxruntime-node 1.30).
 */
const THREAD_FIXED_BYTES = 28 * 2 ** 20;

const mib = (n: number) => Math.round(n / 2 ** 20);

function withClassifierFormat(config: ModelConfig, format: ClassifierFormat): ModelConfig {
  const post = config.postprocess;
  return post.type === 'topk' && post.format === undefined ? { ...config, postprocess: { ...post, format } } : config;
}

export class ModelScheduler {
  private readonly lifecycle = new ModelLifecycle();
  private readonly admission: RequestAdmission;
  // Loads run one at a time so each one's memory growth can be attributed to it.
  private loadChain: Promise<unknown> = Promise.resolve();
  private keySeq = 0;
  // Admissions of copies (make room, then load), scales and budget checks run one at a time, so two
  // never count the same free bytes.
  private admissionChain: Promise<unknown> = Promise.resolve();
  private readonly costs = new LoadCostModel();
  private readonly budget: MemoryBudget;
  /** Every generation that holds copies, whatever its state (a loading or evicting one holds memory too). */
  private readonly resident = new Set<Placement>();
  /** Copies taken off their generation and not yet unloaded (waiting for their running tasks). */
  private readonly draining = new Set<{ worker: number; host: HostInfo }>();
  /** Lazy registrations whose load failed after they were answered, by name, until the name is registered again. */
  private readonly failedLoads = new Map<string, ModelRecord>();
  /** Requests per version since it was registered (GDSF's frequency), by id. */
  private readonly hits = new Map<string, number>();
  private readonly statistics = new InferenceStatistics();
  /** When each version last had a request counted in, by id (for shrinking toward min_worker). */
  private readonly lastArrival = new Map<string, number>();
  private readonly dispatchHost: DispatchHost;
  private readonly housekeeping: NodeJS.Timeout;
  private readonly pacer: CpuPacer | undefined;
  /** The main thread's garbage, collected after copies are unloaded. */
  private readonly garbage = new GarbageCollector();
  private budgetCheckQueued = false;
  /** Over the budget with nothing that may be evicted (pinned models alone): said once until it passes. */
  private overWithNothingToEvict = false;
  /** While a snapshot is restored, changes are not written (restore() writes once at its end). */
  private restoring = false;
  /** Versions with an autoscale step queued: at most one each, recomputed when its turn comes. */
  private readonly scaling = new Set<LifeEntry>();
  /** Generations at zero workers getting their first copy for a request (growFromZero). */
  private readonly growing = new Map<Placement, Promise<void>>();

  /** Threads the server started with; those past them are paid from the budget. */
  private readonly baseWorkers: number;
  private readonly devices: DeviceProbe;
  private readonly gpuIds: number[];
  private readonly deviceBudgets: DeviceBudgets;
  /** GPUs whose CUDA provider failed to make a session, with why: later loads run on the CPU. */
  private readonly gpuFailures = new Map<number, string>();
  /** Versions already told (in the log) that they run on the CPU, by id. */
  private readonly cpuWarned = new Set<string>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly pool: WorkerPool,
    private readonly options: SchedulerOptions,
  ) {
    this.baseWorkers = pool.slots.length;
    this.admission = new RequestAdmission({ perModel: options.jobQueueSize, global: options.maxQueuedRequests ?? Infinity });
    this.budget = new MemoryBudget(
      { bytes: options.memoryBudgetBytes ?? 0, policy: options.evictionPolicy ?? 'gdsf' },
      { usedBytes: () => this.budgetUsedBytes(), residents: (except) => this.residents(except), evict: (id) => this.evict(id) },
    );
    this.devices = options.devices ?? { gpus: [], noGpuReason: 'no device probe was given', cudaProvider: { available: false }, fake: false };
    this.gpuIds = this.devices.gpus.map((g) => g.id);
    this.deviceBudgets = new DeviceBudgets(options.gpuBudgets ?? [], options.evictionPolicy ?? 'gdsf', {
      gpuCopies: () => [...this.heldCopies()].flatMap(([, h]) => (h.device === 'cuda' && h.gpu !== undefined ? [{ gpu: h.gpu, gpuBytes: h.gpuBytes }] : [])),
      residents: (gpu, except) => this.residents(except, gpu),
      evict: (id) => this.evict(id),
    });
    this.dispatchHost = { pool, metrics: options.metrics, firstRun: (placement, host, bytes, gpuBytes) => this.addFirstRunBytes(placement, host, bytes, gpuBytes) };
    this.housekeeping = setInterval(() => this.housekeep(), options.housekeepingMs ?? 2000);
    if (options.cpuPacing && CpuPacer.available()) {
      this.pacer = new CpuPacer(() => pool.slots);
      this.pacer.start();
    }
    this.housekeeping.unref();
  }

  /** What the budget holds: every copy, and the threads started past `workers` for them. */
  private budgetUsedBytes(): number {
    return this.memoryInUse().host + this.addedThreads * THREAD_FIXED_BYTES;
  }

  /** What the budget holds for threads started past `workers` (a model's own thread, when it got one). */
  threadOverheadBytes(): number {
    return this.addedThreads * THREAD_FIXED_BYTES;
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
      maxWorkers: Math.max(workers, request.maxWorkers ?? workers),
      batchSize: request.batchSize ?? pkg.config.batchSize,
      maxBatchDelayMs: request.maxBatchDelayMs ?? pkg.config.maxBatchDelayMs,
      responseTimeoutS: request.responseTimeoutS ?? pkg.config.responseTimeoutS ?? this.options.defaultResponseTimeoutS ?? 120,
      device: request.device ?? pkg.config.device ?? this.options.defaultDevice ?? 'auto',
      ...(request.device ? { deviceGiven: request.device } : {}),
    };
  }

  /**
   * Registers a model version. The artifact is always checked before this resolves; the load onto
   * workers is awaited too unless `synchronous` is false. Requests for it meanwhile wait for that load.
   */
  async register(request: RegisterRequest): Promise<ModelRecord> {
    let record: ModelRecord;
    let opening: Promise<ModelPackage>;
    if (request.name !== undefined) {
      // Reserve first so that a concurrent registration of the same version gets 409 at once.
      const name = request.nameIsTargetPath ? validateRelativePath(request.name, 'target model') : validateModelName(request.name);
      record = this.registry.reserve(name, request.url, request.loadedAtStartup, request.version);
      opening = openModelPackage(request.url, this.options);
    } else {
      const pkg = await openModelPackage(request.url, this.options);
      try {
        record = this.registry.reserve(validateModelName(pkg.name), request.url, request.loadedAtStartup, request.version);
      } catch (err) {
        this.releaseArtifact(pkg);
        throw err;
      }
      opening = Promise.resolve(pkg);
    }
    if (request.pinned) record.pinned = true;
    const entry = this.lifecycle.add(record);
    this.failedLoads.delete(record.name);
    // Reached twice when the artifact itself failed (both chains below end here).
    const forget = (err: unknown): never => {
      if (this.registry.includes(record)) {
        this.registry.remove(record);
        // The snapshot written at registration lists it.
        this.persistQuietly();
      }
      if (record.state === 'loading') this.lifecycle.move(entry, 'firstLoadFailed');
      this.lifecycle.remove(entry);
      this.hits.delete(record.id);
      this.lastArrival.delete(record.id);
      this.statistics.forget(record.id);
      this.cpuWarned.delete(record.id);
      this.releaseRecord(record);
      throw err;
    };
    const prepared = opening
      .then((pkg) => {
        record.pkg = pkg;
        this.registry.settleVersion(record, request.version ?? pkg.version);
        record.settings = this.settingsFor(request, pkg);
        if (request.measured) this.costs.restore(pkg.modelPath, pkg.modelBytes, request.measured);
        if (request.measured?.gpu) this.deviceBudgets.costs.restore(pkg.modelPath, pkg.modelBytes, request.measured.gpu);
        // On disk before it is answered or loaded: a registration the snapshot cannot hold is refused.
        this.persist();
        return record.settings;
      })
      .catch(forget);
    const loaded = prepared
      .then(() => this.load(entry, () => record.settings!.minWorkers))
      .then(() => record)
      .catch(forget);
    entry.transition = loaded;
    let answered = false;
    loaded
      .finally(() => {
        if (entry.transition === loaded) entry.transition = undefined;
      })
      .catch((err: Error) => {
        // Nobody waits for a lazy registration's load: the log and GET /models/{name} show its failure.
        if (answered && request.synchronous === false && !this.registry.has(record.name)) {
          log.warn('model failed to load after its registration was answered; it is unregistered', { model: record.name, version: record.version, error: err.message });
          record.error = err.message;
          this.failedLoads.delete(record.name);
          this.failedLoads.set(record.name, record);
          // The most recent failures are shown; older ones go, so bad registrations cannot grow memory.
          if (this.failedLoads.size > 100) this.failedLoads.delete(this.failedLoads.keys().next().value!);
        }
      });
    await prepared;
    answered = true;
    if (request.synchronous === false) return record;
    return loaded;
  }

  private admit<T>(work: () => Promise<T>): Promise<T> {
    const run = this.admissionChain.then(work, work);
    this.admissionChain = run.catch(() => undefined);
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

  private label(record: ModelRecord): string {
    return this.registry.versions(record.name).length > 1 && record.version !== undefined ? `${record.name}/${record.version}` : record.name;
  }

  private safeLabel(record: ModelRecord): string {
    return this.registry.has(record.name) ? this.label(record) : record.name;
  }

  /** Versions holding copies (on `gpu`, when given), valued by their bytes there. */
  private residents(exceptId: string, gpu?: number): ResidentModel[] {
    const onGpu = (h: HostInfo) => h.device === 'cuda' && h.gpu === gpu;
    return this.lifecycle
      .all()
      .filter((e) => e.current && e.record.id !== exceptId && !e.record.pinned && (gpu === undefined || [...e.current.hosts.values()].some(onGpu)))
      .map((e) => {
        const p = e.current!;
        return {
          name: e.record.id,
          bytes: [...p.hosts.values()].reduce((a, h) => a + (gpu === undefined ? h.memoryBytes : onGpu(h) ? h.gpuBytes : 0), 0),
          loadMs: Math.max(0, ...[...p.hosts.values()].map((h) => h.loadMs)),
          // Frequency survives evictions, so a popular model that was pushed out is valued on its return.
          hits: this.hits.get(e.record.id) ?? 0,
          lastUsed: p.lastUsed,
          busy: !this.lifecycle.evictable(e, p),
        };
      });
  }

  /** Evicts a version's generation if it may go now (no lease, nobody waiting); else leaves it. */
  private async evict(id: string): Promise<void> {
    const entry = this.lifecycle.all().find((e) => e.record.id === id);
    const placement = entry?.current;
    if (!entry || !placement || !this.lifecycle.evictable(entry, placement)) return;
    this.lifecycle.move(entry, 'evict');
    this.options.metrics?.evictions.inc({ model: entry.record.name });
    log.info('model evicted to make room', { model: entry.record.name, version: entry.record.version, hits: placement.hits });
    const done = this.removeHosts(placement, [...placement.hosts.keys()]).finally(() => {
      if (entry.record.state === 'evicting') this.lifecycle.move(entry, 'evicted');
    });
    entry.transition = done;
    await done;
    if (entry.transition === done) entry.transition = undefined;
  }

  /** An evicted version's next request loads it again; concurrent requests wait for that one load. */
  private reload(entry: LifeEntry): void {
    if (entry.record.state !== 'evicted') return;
    // As many of its copies as the whole budget could hold (at least one): a version whose measured cost
    // grew since it was scaled is reloaded smaller rather than refused for good.
    const workers = () => {
      const pkg = entry.record.pkg!;
      let want = Math.max(1, entry.record.settings!.minWorkers);
      // On GPUs, no more copies than the GPUs' budgets could hold.
      if (this.nextDevice(entry.record).kind === 'cuda') {
        const perGpu = Math.floor(this.deviceBudgets.largestBytes() / Math.max(1, this.predictGpuBytes(pkg)));
        want = Math.max(1, Math.min(want, perGpu * this.gpuIds.length));
      }
      if (this.budget.bytes <= 0) return want;
      return Math.max(1, Math.min(want, Math.floor(this.budget.bytes / Math.max(1, this.predictCopyBytes(pkg)))));
    };
    const loading = this.load(entry, workers);
    const generation = entry.generation;
    entry.transition = loading;
    loading
      .catch(() => {
        if (entry.record.state === 'loading' && entry.generation === generation) this.lifecycle.move(entry, 'reloadFailed');
      })
      .finally(() => {
        if (entry.transition === loading) entry.transition = undefined;
      });
  }

  /** Whether a generation is still wanted: the leased one, or the one being loaded now. */
  private isLive(entry: LifeEntry, placement: Placement): boolean {
    return entry.current === placement || (entry.record.state === 'loading' && entry.generation === placement.generation);
  }

  /** Loads a new generation of the version with `workers` copies; it becomes the one requests lease. */
  private load(entry: LifeEntry, workersOf: () => number): Promise<Placement> {
    const record = entry.record;
    const pkg = record.pkg!;
    if (!this.registry.includes(record) || (record.state !== 'loading' && record.state !== 'evicted')) {
      return Promise.reject(new ModelNotFoundError(`model "${record.name}" was unregistered before it loaded`));
    }
    const generation = this.lifecycle.beginLoad(entry);
    return this.admit(async () => {
      // Unregistered while it waited for its turn: nothing to evict or load for it.
      if (record.state !== 'loading' || entry.generation !== generation) throw new ModelNotFoundError(`model "${record.name}" was unregistered before it loaded`);
      // Read now, not when the load was asked for: a scale made meanwhile is placed.
      const workers = workersOf();
      const device = this.deviceFor(record);
      await this.budget.makeRoom(record.id, {
        keepBytes: this.predictCopyBytes(pkg) * workers,
        peakBytes: this.costs.predictLoadExtra(pkg.modelPath, pkg.modelBytes),
        label: this.safeLabel(record),
      });
      const spec: ModelSpec = {
        key: `${record.name}@${record.version}#${generation}.${++this.keySeq}`,
        name: record.name,
        version: record.version ?? pkg.version,
        modelPath: pkg.modelPath,
        config: withClassifierFormat(pkg.config, this.options.classifierFormat ?? 'quiver'),
        labels: pkg.labels,
        handlerPath: pkg.handlerPath,
        device: device.kind,
      };
      const placement: Placement = {
        generation, spec, hosts: new Map(), inputs: [], outputs: [], leases: 0, cursor: 0, hits: 0, lastUsed: Date.now(),
        predictedBytes: this.predictCopyBytes(pkg) * workers, device,
      };
      // Said once at start-up when the server has no GPU; here when this model's own request or size is the reason.
      if (device.reason && (record.settings!.device === 'cuda' || this.gpuIds.length > 0) && !this.cpuWarned.has(record.id)) {
        this.cpuWarned.add(record.id);
        log.warn('model runs on the CPU', { model: record.name, version: record.version, device: record.settings!.device, reason: device.reason });
      }
      try {
        await this.addHosts(entry, placement, workers);
      } catch (err) {
        await this.removeHosts(placement, [...placement.hosts.keys()]);
        throw err;
      }
      if (placement.hosts.size > 0) {
        const copies = [...placement.hosts.values()];
        const perCopy = Math.round(copies.reduce((a, h) => a + h.memoryBytes, 0) / copies.length);
        const peaks = copies.flatMap((h) => (h.loadPeakBytes === undefined ? [] : [h.loadPeakBytes]));
        this.costs.record(pkg.modelPath, pkg.modelBytes, { copyBytes: perCopy, peakBytes: peaks.length ? Math.max(...peaks) : undefined });
        const onGpu = copies.filter((h) => h.device === 'cuda');
        if (onGpu.length > 0) this.deviceBudgets.costs.record(pkg.modelPath, pkg.modelBytes, { copyBytes: Math.max(...onGpu.map((h) => h.gpuBytes)) });
      }
      configureBatching(record, placement, this.dispatchHost);
      if (!this.registry.includes(record) || !this.lifecycle.loaded(entry, placement)) {
        // Unregistered while it was loading.
        await this.removeHosts(placement, [...placement.hosts.keys()]);
        throw new ModelNotFoundError(`model "${record.name}" was unregistered while it loaded`);
      }
      record.io = { inputs: placement.inputs, outputs: placement.outputs };
      // The measured cost can exceed the prediction: make room again for the difference.
      await this.budget
        .makeRoom(record.id, { keepBytes: 0, waitForBusy: false, label: this.safeLabel(record) })
        .catch((err: Error) => log.warn('over the memory budget after a load', { model: record.name, error: err.message }));
      for (const gpu of new Set([...placement.hosts.values()].flatMap((h) => (h.device === 'cuda' && h.gpu !== undefined ? [h.gpu] : [])))) {
        await this.deviceBudgets
          .makeRoom(gpu, record.id, 0, this.safeLabel(record), false)
          .catch((err: Error) => log.warn('over a GPU memory budget after a load', { model: record.name, gpu, error: err.message }));
      }
      return placement;
    });
  }

  /** What a copy's first run kept counts toward its cost and the next load's prediction; the budget is checked again. */
  private addFirstRunBytes(placement: Placement, id: number, bytes: number, gpuBytes?: number): void {
    const host = placement.hosts.get(id);
    if (!host) return;
    // As for the load: a first run into reused memory shows less than an earlier copy's first run kept.
    host.memoryBytes += Math.max(bytes, this.costs.known(placement.spec.modelPath)?.firstRunBytes ?? 0);
    this.costs.recordFirstRun(placement.spec.modelPath, bytes);
    if (host.device === 'cuda' && gpuBytes !== undefined) {
      host.gpuBytes += Math.max(gpuBytes, this.deviceBudgets.costs.known(placement.spec.modelPath)?.firstRunBytes ?? 0);
      this.deviceBudgets.costs.recordFirstRun(placement.spec.modelPath, gpuBytes);
    }
    this.queueBudgetCheck();
  }

  /** Where a version's next load runs: its asked device, as the probe allows and the GPU budgets hold. */
  private deviceFor(record: ModelRecord): DeviceChoice {
    const choice = chooseDevice(record.settings!.device, this.devices);
    if (choice.kind !== 'cuda') return choice;
    if (this.gpuIds.length > 0 && this.gpuIds.every((g) => this.gpuFailures.has(g))) return { kind: 'cpu', reason: this.gpuFailures.get(this.gpuIds[0])! };
    const perCopy = this.predictGpuBytes(record.pkg!);
    if (perCopy <= this.deviceBudgets.largestBytes()) return choice;
    const tooBig = this.deviceBudgets.describeTooBig(this.safeLabel(record), perCopy);
    // `auto` runs wherever it fits; `cuda` was asked for a GPU and says why it cannot have one.
    if (record.settings!.device === 'auto') return { kind: 'cpu', reason: tooBig };
    throw new InsufficientMemoryError(tooBig);
  }

  /** What the next load would choose, for a version not placed now (errors become the reason). */
  private nextDevice(record: ModelRecord): DeviceChoice {
    try {
      return this.deviceFor(record);
    } catch (err) {
      return { kind: 'cpu', reason: (err as Error).message };
    }
  }

  /** A CUDA generation grows only where one of its GPUs' threads is free and has room for another copy. */
  private gpuFitsOneMore(entry: LifeEntry, placement: Placement): boolean {
    if (placement.spec.device !== 'cuda') return true;
    const perCopy = this.predictGpuBytes(entry.record.pkg!);
    return gpuCandidates(this.workerLoads(), this.gpuIds, (g) => this.deviceBudgets.freeBytes(g), new Set(placement.hosts.keys()))
      .some((c) => this.deviceBudgets.freeBytes(c.gpu) >= perCopy);
  }

  private predictGpuBytes(pkg: ModelPackage): number {
    return this.deviceBudgets.costs.predictCopy(pkg.modelPath, pkg.modelBytes);
  }

  private workerLoads(): WorkerLoad[] {
    const loads: WorkerLoad[] = this.pool.slots.map((s) => ({ id: s.id, models: 0, bytes: 0 }));
    for (const [id, host] of this.heldCopies()) {
      loads[id].models += 1;
      loads[id].bytes += host.memoryBytes;
    }
    return loads;
  }

  /** Every copy held on a worker now: those of resident generations, and those still draining. */
  private *heldCopies(): Generator<[number, HostInfo]> {
    for (const p of this.resident) yield* p.hosts;
    for (const d of this.draining) yield [d.worker, d.host];
  }

  /** Adds `count` copies of a generation; a copy that lands after its generation stopped being wanted is unloaded at once. */
  private async addHosts(entry: LifeEntry, placement: Placement, count: number): Promise<void> {
    const pkg = entry.record.pkg!;
    const predictedBytes = pkg.modelBytes;
    // What earlier copies of this file measured: a reload's own RSS growth can be less (reused memory).
    const knownCopy = this.costs.known(pkg.modelPath)?.copyBytes ?? 0;
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
    const onGpu = placement.spec.device === 'cuda';
    const chosen = onGpu ? [] : placeModel(this.workerLoads(), count, hosting);
    const metrics = this.options.metrics;
    const name = placement.spec.name;
    const knownGpuCopy = this.deviceBudgets.costs.known(pkg.modelPath)?.copyBytes ?? 0;
    for (let n = 0; n < count; n++) {
      // A CUDA copy goes on a GPU's thread, the GPU with the most budget left first, chosen after the
      // copies before it are counted: copies spread over the GPUs.
      const id = onGpu
        ? gpuCandidates(this.workerLoads(), this.gpuIds, (g) => this.deviceBudgets.freeBytes(g), new Set(placement.hosts.keys()))[0]?.worker
        : chosen[n];
      if (id === undefined) break;
      const gpu = onGpu ? gpuOfWorker(id, this.gpuIds) : undefined;
      // Room on its GPU first, in this admission turn: loads onto one device never count the same free bytes.
      if (gpu !== undefined) await this.deviceBudgets.makeRoom(gpu, entry.record.id, this.predictGpuBytes(pkg), this.safeLabel(entry.record));
      const result = await this.loadCopy(placement.spec, id).catch((err: unknown) => {
        metrics?.modelLoads.inc({ model: name, outcome: 'failure' });
        throw err;
      });
      metrics?.modelLoads.inc({ model: name, outcome: 'success' });
      metrics?.modelLoadDuration.observe({ model: name }, result.loadMs / 1e3);
      log.info('model loaded on worker', {
        model: name, version: placement.spec.version, worker: id, loadMs: Math.round(result.loadMs), memoryBytes: result.rssDeltaBytes,
        ...(result.device === 'cuda' ? { gpu: result.gpu, gpuBytes: result.gpuDeltaBytes } : {}),
      });
      if (result.deviceFallback) {
        log.warn('model copy runs on the CPU: its GPU session could not be made', { model: name, worker: id, reason: result.deviceFallback });
        // Later loads go to the CPU at once rather than evict models on a GPU for a session that cannot be made.
        if (gpu !== undefined) this.gpuFailures.set(gpu, result.deviceFallback);
      }
      placement.inputs = result.inputs;
      placement.outputs = result.outputs;
      // RSS growth is noisy for tiny models and small for a reload into reused memory: never less than
      // the weights themselves, nor than an earlier copy measured.
      placement.hosts.set(id, { ...this.copyCost(result, predictedBytes, knownCopy, knownGpuCopy), loadedAt: new Date(), running: 0 });
      this.resident.add(placement);
      if (!this.isLive(entry, placement)) {
        // Unregistered or evicted while this copy loaded (a scale racing them): nobody would unload it.
        await this.removeHosts(placement, [...placement.hosts.keys()]);
        return;
      }
    }
  }

  /** What a loaded copy holds and where, from its load's measurements and what earlier copies of its file measured. */
  private copyCost(result: LoadResult, fileBytes: number, knownCopy: number, knownGpuCopy: number): Omit<HostInfo, 'loadedAt' | 'running'> {
    return {
      // A CUDA copy's weights are on its GPU: its host memory is what the process grew by.
      memoryBytes: result.device === 'cuda' ? result.rssDeltaBytes : Math.max(result.rssDeltaBytes, fileBytes, knownCopy),
      loadPeakBytes: result.peakDeltaBytes,
      loadMs: result.loadMs,
      preprocessing: result.preprocessing,
      deviceBytes: result.deviceBytes,
      device: result.device,
      gpu: result.gpu,
      // As for host memory: never less than an earlier copy of the file measured on a GPU.
      gpuBytes: result.device === 'cuda' ? Math.max(result.gpuDeltaBytes, knownGpuCopy) : 0,
      ...(result.deviceFallback ? { deviceFallback: result.deviceFallback } : {}),
    };
  }

  /** One copy's load on one thread, after the loads before it, bounded by model_load_timeout. */
  private loadCopy(spec: ModelSpec, id: number): Promise<LoadResult> {
    const limitS = this.options.modelLoadTimeoutS ?? 120;
    const load = this.loadChain.then(async () => {
      const timer = deadlineSignal(limitS * 1000);
      try {
        return await this.pool.slot(id).run({ kind: 'load', model: spec }, [], timer.signal);
      } catch (err) {
        if (err instanceof QuiverError && err.kind === 'InferenceTimeout') {
          throw new ModelLoadFailedError(`model "${spec.name}" did not load within ${limitS} s (model_load_timeout); its worker thread was replaced`);
        }
        throw err;
      } finally {
        timer.clear();
      }
    });
    this.loadChain = load.catch(() => undefined);
    return load;
  }

  /** Takes copies off a generation: no new task goes to them, the tasks already sent finish, then each is unloaded. */
  private async removeHosts(placement: Placement, ids: number[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const host = placement.hosts.get(id);
        placement.hosts.delete(id);
        if (!host) return;
        // Still held until the worker has unloaded it: counted in the budget, the thread's load and the sessions.
        const copy = { worker: id, host };
        this.draining.add(copy);
        try {
          while (host.running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
          await this.pool.slot(id).run({ kind: 'unload', key: placement.spec.key }).catch(() => undefined);
        } finally {
          this.draining.delete(copy);
        }
      }),
    );
    if (placement.hosts.size === 0) this.resident.delete(placement);
    this.garbage.soon();
  }

  /**
   * Unregisters one version whatever its load state (the default one when `version` is absent; as
   * TorchServe, not while other versions remain): the snapshot and the hit counts drop it at once,
   * requests that hold its generation finish, its copies are unloaded, and its artifact is released.
   */
  async unregister(name: string, version?: string): Promise<void> {
    await this.unregisterRecord(this.registry.removable(name, version));
  }

  /** Unregisters every version of a name (SageMaker, OIP and ModelMesh unloads name no version). */
  async unregisterAll(name: string): Promise<void> {
    const records = this.registry.versions(name);
    const isDefault = (r: ModelRecord) => this.registry.isDefault(r);
    // The default goes last: the registry refuses to drop it while others remain.
    for (const record of [...records.filter((r) => !isDefault(r)), ...records.filter(isDefault)]) await this.unregisterRecord(record);
  }

  private async unregisterRecord(record: ModelRecord): Promise<void> {
    // On disk first: when the snapshot cannot be written, the model stays registered.
    this.persist(this.snapshotModels().filter((m) => !(m.name === record.name && m.modelVersion === record.version)));
    this.registry.remove(record);
    this.hits.delete(record.id);
    this.lastArrival.delete(record.id);
    this.statistics.forget(record.id);
    this.cpuWarned.delete(record.id);
    const entry = this.lifecycle.entry(record);
    if (entry && record.state !== 'unloading' && record.state !== 'gone') {
      const placement = entry.current;
      const pending = entry.transition;
      this.lifecycle.move(entry, 'unregister');
      // A load in progress sees the move when it ends and unloads its own copies.
      await pending?.catch(() => undefined);
      if (placement) {
        // Requests that hold the generation (queued for a batch, or running) are answered first.
        await placement.batcher?.drain();
        await this.lifecycle.idle(placement);
        await this.removeHosts(placement, [...placement.hosts.keys()]);
      }
      if (entry.record.state === 'unloading') this.lifecycle.move(entry, 'unloaded');
    }
    this.releaseRecord(record);
  }

  /** Makes `version` the one that answers requests naming no version; requests already queued keep theirs. */
  setDefault(name: string, version: string): void {
    const before = this.registry.defaultVersion(name);
    this.registry.setDefault(name, version);
    try {
      this.persist();
    } catch (err) {
      if (before !== undefined) this.registry.setDefault(name, before);
      throw err;
    }
  }

  /** Releases a registration's artifact once, however many paths (failed load, unregister) reach here. */
  private releaseRecord(record: ModelRecord): void {
    if (!record.pkg || record.artifactReleased) return;
    record.artifactReleased = true;
    this.releaseArtifact(record.pkg);
  }

  /** Gives back the package's download-cache pin and its unpacked folder (removed once nobody uses it). */
  private releaseArtifact(pkg: ModelPackage): void {
    void releasePackage(pkg, this.options);
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
   * MMS scale: keep `minWorkers` copies, and up to `maxWorkers` while requests queue (housekeeping).
   * What can be known at once is checked at once (it throws, not rejects), so that a scale run in the
   * background still fails its caller: the counts, the pool's limit, and a count whose copies could not
   * fit the budget even with every other model unloaded.
   */
  scale(name: string, minWorkers: number, maxWorkers = minWorkers, version?: string): Promise<void> {
    if (!Number.isInteger(minWorkers) || minWorkers < 0) throw new BadRequestError(`min_worker must be a whole number ≥ 0, got ${minWorkers}`);
    if (!Number.isInteger(maxWorkers) || maxWorkers < minWorkers) throw new BadRequestError(`max_worker must be a whole number ≥ min_worker (${minWorkers}), got ${maxWorkers}`);
    const record = this.registry.get(name, version);
    this.checkPoolHolds('min_worker', minWorkers);
    this.checkPoolHolds('max_worker', maxWorkers);
    if (this.budget.bytes > 0 && record.pkg) {
      const perCopy = this.predictCopyBytes(record.pkg);
      const most = Math.floor(this.budget.bytes / Math.max(1, perCopy));
      if (minWorkers > most) {
        throw new InsufficientMemoryError(
          `model "${name}" cannot have ${minWorkers} workers: each copy takes about ${mib(perCopy)} MiB, so at most ${most} fit in the ${mib(this.budget.bytes)} MiB memory budget even with every other model unloaded`,
        );
      }
    }
    return this.applyScale(record, minWorkers, maxWorkers);
  }

  private async applyScale(record: ModelRecord, target: number, maxWorkers: number): Promise<void> {
    const name = record.name;
    const entry = this.lifecycle.entry(record);
    if (!entry) throw new ModelNotFoundError(`model "${name}" is not registered`);
    // A version not loaded now is loaded first, as a request would load it.
    if (record.state !== 'ready') {
      const lease = await this.leaseBefore(entry, Date.now() + (this.options.modelLoadTimeoutS ?? 120) * 1000, 'model_load_timeout');
      lease.release();
    }
    // One admission at a time, and the generation read inside it: concurrent scales, evictions and
    // unregistrations between the request and its turn are seen.
    await this.admit(async () => {
      if (!this.registry.includes(record)) throw new ModelNotFoundError(`model "${name}" was unregistered while it was being scaled`);
      const placement = entry.current;
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
          await this.budget.makeRoom(record.id, { keepBytes: perCopy * (target - current), peakBytes: this.costs.predictLoadExtra(pkg.modelPath, pkg.modelBytes), label: this.label(record) });
        } catch (err) {
          if (!(err instanceof InsufficientMemoryError)) throw err;
          throw new InsufficientMemoryError(`model "${name}" cannot grow from ${current} to ${target} workers now (each copy about ${mib(perCopy)} MiB): ${err.message}`);
        }
        await this.addHosts(entry, placement, target - current);
      } else if (target < current) {
        const hosts = this.workerLoads().filter((w) => placement.hosts.has(w.id));
        // Taken off at once and counted until unloaded; the wait for their running requests (up to a
        // response_timeout) is not spent holding every other load's turn.
        void this.removeHosts(placement, chooseRemovals(hosts, current - target));
      }
      record.settings = { ...record.settings!, minWorkers: target, maxWorkers };
    });
    this.persistQuietly();
  }

  private persist(models: SnapshotModel[] = this.snapshotModels()): void {
    if (this.restoring) return;
    this.options.persist?.(models);
  }

  /**
   * Registers a snapshot's models without writing the snapshot while it runs (a crash midway, or a
   * model that fails to come back for a passing reason, must not shorten it), then writes it once:
   * what came back, and the entries that did not, as they were, until the next change.
   */
  async restore(models: SnapshotModel[], register: (m: SnapshotModel) => Promise<void>): Promise<void> {
    this.restoring = true;
    const failed: SnapshotModel[] = [];
    try {
      for (const m of models) await register(m).catch(() => failed.push(m));
      for (const m of models) {
        if (m.isDefault && m.modelVersion !== undefined && this.registry.find(m.name, m.modelVersion)) this.registry.setDefault(m.name, m.modelVersion);
      }
    } finally {
      this.restoring = false;
    }
    try {
      this.persist([...this.snapshotModels(), ...failed]);
    } catch (err) {
      log.error('snapshot could not be written after the restore', { error: (err as Error).message });
    }
  }

  /** For changes already made (a scale, a failed load's removal): a snapshot that fails is logged. */
  private persistQuietly(): void {
    try {
      this.persist();
    } catch (err) {
      log.error('snapshot could not be written', { error: (err as Error).message });
    }
  }

  /** The registered versions as a snapshot records them, with what each measured. */
  snapshotModels(): SnapshotModel[] {
    return this.registry
      .all()
      // Whatever its load state: a model reloading after an eviction is still registered.
      .filter((r) => r.state !== 'unloading' && r.state !== 'gone' && r.settings)
      .map((r) => {
        const host = r.pkg ? this.costs.measured(r.pkg.modelPath) : undefined;
        const gpu = r.pkg ? this.deviceBudgets.costs.measured(r.pkg.modelPath) : undefined;
        const measured = host && gpu ? { ...host, gpu: { copyBytes: gpu.copyBytes, firstRunBytes: gpu.firstRunBytes } } : host;
        return {
          name: r.name,
          url: r.url,
          workers: r.settings!.minWorkers,
          batchSize: r.settings!.batchSize,
          maxBatchDelayMs: r.settings!.maxBatchDelayMs,
          responseTimeoutS: r.settings!.responseTimeoutS,
          ...(r.settings!.maxWorkers > r.settings!.minWorkers ? { maxWorkers: r.settings!.maxWorkers } : {}),
          modelVersion: r.version,
          isDefault: this.registry.isDefault(r),
          ...(r.settings!.deviceGiven ? { device: r.settings!.deviceGiven } : {}),
          ...(measured ? { measured } : {}),
        };
      });
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

  /**
   * Leases the version's current generation, loading it if it was evicted and waiting for a load or an
   * eviction in progress, at most until `deadline` (epoch ms) or until `cancel` aborts.
   */
  private async leaseBefore(entry: LifeEntry, deadline: number, limit: string, cancel?: Abortable): Promise<Lease> {
    const name = entry.record.name;
    if (cancel?.aborted) throw new ClientDisconnectedError('the client went away before its request ran; it was dropped');
    entry.waiting++;
    let timer: NodeJS.Timeout | undefined;
    let onCancel: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new InferenceTimeoutError(`model "${name}" did not answer within ${limit}: it was still loading; the request was dropped`)),
        Math.max(0, deadline - Date.now()),
      );
      timer.unref();
      if (cancel) {
        onCancel = () => reject(new ClientDisconnectedError('the client went away while its request waited for the model to load; it was dropped'));
        if (cancel.aborted) onCancel();
        else cancel.addEventListener('abort', onCancel, { once: true });
      }
    });
    stop.catch(() => undefined);
    try {
      for (let turn = 0; turn < 8; turn++) {
        const lease = this.lifecycle.lease(entry);
        if (lease) return lease;
        const state = entry.record.state;
        if (state === 'unloading' || state === 'gone' || (state === 'failed' && turn > 0)) {
          throw new ModelNotFoundError(`model "${name}" was unregistered before its request ran`);
        }
        this.reload(entry);
        const pending = entry.transition;
        if (!pending) break;
        await Promise.race([pending, stop]);
      }
      throw new InternalError(`model "${name}" is ${entry.record.state} and no load makes it ready`);
    } finally {
      entry.waiting--;
      clearTimeout(timer);
      if (onCancel) cancel!.removeEventListener('abort', onCancel);
    }
  }

  /**
   * `version` absent: the default version when the request arrives (a later set-default does not move
   * it). `clientDeadline` (epoch ms, a gRPC call's deadline) drops it then if its response_timeout is
   * later; `cancel` (the client went away) takes it off any queue it still waits in.
   */
  infer(name: string, version: string | undefined, request: InferRequest, clientDeadline = Infinity, cancel?: Abortable): Promise<InferOutcome> {
    return this.run(name, version, request, clientDeadline, cancel, true);
  }

  /** `counted`: the request is a client's, and goes into the version's statistics. */
  private async run(name: string, version: string | undefined, request: InferRequest, clientDeadline: number, cancel: Abortable | undefined, counted: boolean): Promise<InferOutcome> {
    const record = this.registry.get(name, version);
    const entry = this.lifecycle.entry(record);
    if (!entry) throw new ModelNotFoundError(`model "${name}" is not registered`);
    const started = performance.now();
    // A request that ends after its version went counts nowhere (its figures went with it).
    const count = (record: ModelRecord) => counted && this.registry.includes(record);
    const arrivedAt = Date.now();
    const timeoutS = record.settings?.responseTimeoutS ?? this.options.defaultResponseTimeoutS ?? 120;
    const deadline = Math.min(arrivedAt + timeoutS * 1000, clientDeadline);
    const limit = clientDeadline < arrivedAt + timeoutS * 1000 ? "the call's deadline" : `${timeoutS} s (response_timeout)`;
    try {
      this.admission.admit(record.id, name);
    } catch (err) {
      // Refused at the door (the queue is full): a failure of this version's, as Triton counts it.
      if (count(record)) this.statistics.failure(record.id, performance.now() - started);
      throw err;
    }
    this.lastArrival.set(record.id, arrivedAt);
    // A placed version is leased at once, without a turn of the event loop in which it could go.
    let lease = this.lifecycle.lease(entry);
    const coldStart = lease === undefined;
    let versionGone = false;
    try {
      try {
        lease ??= await this.leaseBefore(entry, deadline, limit, cancel);
      } catch (err) {
        // The default version it arrived for was unregistered while it waited (a set-default, then that
        // version's removal): the name still answers, so the request goes to today's default.
        versionGone = version === undefined && err instanceof QuiverError && err.kind === 'ModelNotFound' && !this.registry.includes(record) && this.registry.has(name);
        throw err;
      }
      const placement = lease.placement;
      if (placement.hosts.size === 0) await this.growFromZero(entry, placement, deadline);
      placement.hits++;
      placement.lastUsed = Date.now();
      this.hits.set(record.id, (this.hits.get(record.id) ?? 0) + 1);
      // OIP answers (classification) follow the model's Triton config: batched when this generation batches.
      if (request.oip) request.oip = { ...request.oip, batched: placement.batcher !== undefined };
      const result = await dispatch(placement, request, Math.max(1, deadline - Date.now()), this.dispatchHost, cancel);
      placement.lastPreprocessPath = result.preprocessPath;
      if (count(record)) this.statistics.success(record.id, performance.now() - started, result.timings, {
        requests: result.batchSize, ...(placement.batcher && result.rows !== undefined ? { rows: result.rows, runRows: result.runRows } : {}),
      });
      return { ...result, coldStart };
    } catch (err) {
      if (!(versionGone && Date.now() < deadline)) {
        if (count(record)) this.statistics.failure(record.id, performance.now() - started);
        if (err instanceof QuiverError && err.kind === 'InferenceTimeout' && !/still loading/.test(err.message)) {
          throw new InferenceTimeoutError(`model "${name}" did not answer within ${limit}; the request was dropped`);
        }
        throw err;
      }
    } finally {
      lease?.release();
      this.admission.release(record.id);
    }
    // Its body was never sent: it runs again, once its first admission is given back, within the same deadline.
    return { ...(await this.run(name, undefined, request, deadline, cancel, counted)), coldStart: true };
  }

  /**
   * Triton's statistics: each registered version of `name` (of every model when absent; only `version`
   * when given), with what its requests did since it was registered.
   */
  inferenceStatistics(name?: string, version?: string): ({ name: string; version: string } & VersionStatistics)[] {
    const records = name === undefined
      ? this.registry.all()
      : version !== undefined ? [this.registry.get(name, version)] : this.registry.versions(name);
    // Triton's integer versions: perf_analyzer parses them (registry.tritonVersions).
    return records.map((r) => ({ name: r.name, version: this.registry.tritonVersions(r.name).get(r) ?? r.version ?? '', ...this.statistics.of(r.id) }));
  }

  /**
   * What a model takes and gives, for protocol metadata: known from its last load (kept while it is
   * evicted); a model never loaded yet is loaded, as its first request would.
   */
  async signature(name: string, version?: string): Promise<ModelSignature> {
    const record = this.registry.get(name, version);
    if (!record.io) {
      const entry = this.lifecycle.entry(record);
      if (!entry) throw new ModelNotFoundError(`model "${name}" is not registered`);
      const lease = await this.leaseBefore(entry, Date.now() + (this.options.modelLoadTimeoutS ?? 120) * 1000, 'model_load_timeout');
      lease.release();
    }
    const settings = record.settings!;
    return {
      name,
      version: record.version ?? '',
      versions: this.registry.versions(name).flatMap((r) => (r.version ? [r.version] : [])),
      inputs: record.io!.inputs,
      outputs: record.io!.outputs,
      // From the settings, not the loaded generation: an evicted model's config says what it will do when back.
      batchSize: settings.batchSize > 1 && canBatch(record.io!.inputs.map((i) => i.shape)) ? settings.batchSize : 1,
      maxBatchDelayMs: settings.maxBatchDelayMs,
      workers: Math.max(1, settings.minWorkers),
      modelFile: record.pkg ? record.pkg.modelPath.split('/').pop()! : 'model.onnx',
      ...(record.pkg?.config.image ? { imageInput: record.pkg.config.image.input ?? record.io!.inputs[0]?.name } : {}),
    };
  }

  /**
   * One run of zeros at the model's nominal input size (`warm-up.ts`), so that its first run's memory is
   * in its measured size before anyone asks for it; false when no such input can be made or it failed.
   */
  async warmUp(name: string, deadline = Date.now() + (this.options.modelLoadTimeoutS ?? 120) * 1000): Promise<boolean> {
    if (Date.now() >= deadline) return false;
    const signature = await this.signature(name);
    const request = warmUpRequest(signature.inputs, this.registry.get(name).pkg?.config.image);
    if (!request) return false;
    try {
      // Not a client's request: it is left out of the statistics.
      await this.run(name, undefined, {
        body: request.body, contentType: 'application/octet-stream', requestId: `warm-up-${name}`, enqueuedAt: epochMs(), oip: { headerLength: request.headerLength },
      }, deadline, undefined, false);
      return true;
    } catch (err) {
      log.warn('the warm-up run failed; the size is the load\'s alone', { model: name, error: (err as Error).message });
      return false;
    }
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
      await this.unregisterAll(name);
    }
    const url = await storeUrlFor(this.options.modelStore, name);
    await this.register({ name, url, synchronous: true, batchSize: settings.batchSize, maxBatchDelayMs: settings.maxBatchDelayMs, initialWorkers: settings.workers });
  }

  /** Triton's repository index: every registered version with its state, and the store's others as unavailable. */
  async repositoryIndex(): Promise<{ name: string; version: string; state: string; reason: string }[]> {
    const entries = new Map<string, { name: string; version: string; state: string; reason: string }>();
    const stateOf: Record<string, [string, string]> = {
      ready: ['READY', ''], loading: ['LOADING', ''], evicting: ['READY', 'being evicted to make room: its next request loads it'],
      evicted: ['READY', 'evicted to make room: its next request loads it'], unloading: ['UNLOADING', ''], gone: ['UNAVAILABLE', 'unloaded'],
      failed: ['UNAVAILABLE', 'its load failed'],
    };
    for (const record of [...this.failedLoads.values(), ...this.registry.all()]) {
      const [state, reason] = stateOf[record.state];
      entries.set(`${record.name}\u0000${record.version ?? ''}`, { name: record.name, version: record.version ?? '', state, reason: record.error ?? reason });
    }
    const names = new Set([...entries.values()].map((e) => e.name));
    const dirents = await fsp.readdir(this.options.modelStore, { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      const name = d.isDirectory() ? d.name : d.name.replace(/(\.tar\.gz|\.tgz|\.tar|\.mar|\.zip)$/i, '');
      if (name === d.name && !d.isDirectory()) continue;
      if (!names.has(name)) entries.set(name, { name, version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
    }
    return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  }

  /**
   * Ready as Triton means it: loaded (or evicted, which its next request loads again); not while its
   * registration's load is still running, failed or going.
   */
  readiness(name: string, version?: string): { ready: boolean; state: string } {
    const record = this.registry.get(name, version);
    const ready = record.state === 'ready' || record.state === 'evicted' || record.state === 'evicting' || (record.state === 'loading' && record.io !== undefined);
    return { ready, state: record.state };
  }

  /** Whether a model of this name is registered (any version). */
  hasModel(name: string): boolean {
    return this.registry.has(name);
  }

  /** Where a model's versions came from, and whether they are pinned (ModelMesh's); undefined when it is not registered. */
  registration(name: string): { urls: string[]; pinned: boolean } | undefined {
    if (!this.registry.has(name)) return undefined;
    const versions = this.registry.versions(name);
    return { urls: versions.map((r) => r.url), pinned: versions.every((r) => r.pinned === true) };
  }

  /** 404 for an unknown model or version, before a body is read. */
  checkModel(name: string, version?: string): void {
    this.registry.get(name, version);
  }

  modelNames(): string[] {
    return [...new Set(this.registry.all().map((r) => r.name))];
  }

  /** Registered names. */
  modelCount(): number {
    return this.registry.size();
  }

  /** Registered names in name order, each as its default version. */
  listModels(limit: number, pageToken?: string): ModelPage {
    return this.registry.page(limit, pageToken);
  }

  /** Requests of all models queued or running now. */
  pendingRequests(): number {
    return this.admission.pending();
  }

  /** A worker thread was replaced: load its generations on the new thread now, unless they went meanwhile. */
  reloadWorker(id: number): void {
    for (const entry of this.lifecycle.all()) {
      const placement = entry.current;
      if (!placement?.hosts.has(id)) continue;
      const load = this.loadChain.then(async () => {
        if (!this.isLive(entry, placement) || !placement.hosts.has(id)) return;
        const timer = deadlineSignal((this.options.modelLoadTimeoutS ?? 120) * 1000);
        let result: LoadResult;
        try {
          result = await this.pool.slot(id).run({ kind: 'load', model: placement.spec }, [], timer.signal);
        } finally {
          timer.clear();
        }
        // The new thread's copy as it measured (its first run is counted again when it comes), and where it runs now.
        const host = placement.hosts.get(id);
        const pkg = entry.record.pkg!;
        if (host) {
          Object.assign(host, this.copyCost(result, pkg.modelBytes, this.costs.known(pkg.modelPath)?.copyBytes ?? 0, this.deviceBudgets.costs.known(pkg.modelPath)?.copyBytes ?? 0));
          if (!result.deviceFallback) delete host.deviceFallback;
        }
        // Unloaded while this load waited its turn: nobody else would unload this copy.
        if (!this.isLive(entry, placement) || !placement.hosts.has(id)) await this.pool.slot(id).run({ kind: 'unload', key: placement.spec.key });
      });
      this.loadChain = load.catch(() => undefined);
      load.catch((err: Error) => log.error('model reload after worker restart failed', { model: placement.spec.name, worker: id, error: err.message }));
    }
  }

  /** Checks the budget against what the copies hold now (after a first run grew one, and on the timer). */
  private queueBudgetCheck(): void {
    if ((this.budget.bytes <= 0 && this.gpuIds.length === 0) || this.budgetCheckQueued) return;
    this.budgetCheckQueued = true;
    void this.admit(async () => {
      this.budgetCheckQueued = false;
      for (const over of this.deviceBudgets.overBudget()) {
        log.warn('the models on a GPU hold more than its budget: evicting idle ones', { gpu: over.gpu, usedBytes: over.usedBytes, budgetBytes: over.bytes });
        await this.deviceBudgets
          .makeRoom(over.gpu, '', 0, 'the models in use', false)
          .catch((err: Error) => log.warn('still over a GPU memory budget: every model left on it is in use', { gpu: over.gpu, error: err.message }));
      }
      const used = this.budgetUsedBytes();
      if (this.budget.bytes <= 0 || used <= this.budget.bytes) {
        this.overWithNothingToEvict = false;
        return;
      }
      if (this.residents('').length === 0) {
        // ModelMesh's models grew past their sizes: only its unloads can help, and the timer would say so every 2 s.
        if (!this.overWithNothingToEvict) log.warn('the models hold more than the memory budget, and none of them may be evicted here (ModelMesh unloads its own)', { usedBytes: used, budgetBytes: this.budget.bytes });
        this.overWithNothingToEvict = true;
        return;
      }
      log.warn('the models hold more than the memory budget: evicting idle ones', { usedBytes: used, budgetBytes: this.budget.bytes, overBytes: used - this.budget.bytes });
      await this.budget
        .makeRoom('', { keepBytes: 0, waitForBusy: false, label: 'the models in use' })
        .catch((err: Error) => log.warn('still over the memory budget: every model left is in use', { usedBytes: this.budgetUsedBytes(), budgetBytes: this.budget.bytes, error: err.message }));
    });
  }

  /**
   * A version at zero workers with max_worker above zero gets its first copy for the request that finds
   * it so, made room for as a load is (housekeeping gives the copy back once it has been idle a while).
   * Requests that arrive meanwhile wait for the same copy.
   */
  private async growFromZero(entry: LifeEntry, placement: Placement, deadline: number): Promise<void> {
    const name = entry.record.name;
    const settings = entry.record.settings!;
    if (Math.max(settings.minWorkers, settings.maxWorkers) === 0) {
      throw new NoWorkerAvailableError(`model "${name}" has no workers; scale it with PUT /models/${name}?min_worker=1`);
    }
    let growth = this.growing.get(placement);
    if (!growth) {
      growth = this.admit(async () => {
        if (entry.current !== placement || placement.hosts.size > 0) return;
        const pkg = entry.record.pkg!;
        log.info('model grows from zero workers: a request arrived', { model: name, maxWorkers: settings.maxWorkers });
        await this.budget.makeRoom(entry.record.id, { keepBytes: this.predictCopyBytes(pkg), peakBytes: this.costs.predictLoadExtra(pkg.modelPath, pkg.modelBytes), label: this.label(entry.record) });
        await this.addHosts(entry, placement, 1);
      });
      this.growing.set(placement, growth);
      void growth.catch(() => undefined).finally(() => this.growing.delete(placement));
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InferenceTimeoutError(`model "${name}" did not get a worker within its response_timeout; the request was dropped`)), Math.max(0, deadline - Date.now()));
      timer.unref();
    });
    late.catch(() => undefined);
    try {
      await Promise.race([growth, late]);
    } finally {
      clearTimeout(timer);
    }
    if (placement.hosts.size === 0) throw new NoWorkerAvailableError(`model "${name}" has no workers and none could be started for it now (every thread busy or none free); try again`);
  }

  /** The timer's round: the budget re-checked, and each version grown or shrunk between min and max workers. */
  private housekeep(): void {
    this.queueBudgetCheck();
    for (const entry of this.lifecycle.all()) {
      const placement = entry.current;
      const settings = entry.record.settings;
      if (!placement || !settings || this.scaling.has(entry)) continue;
      if (settings.maxWorkers <= settings.minWorkers && placement.hosts.size === settings.minWorkers) continue;
      if (this.autoscaleNow(entry, placement) === 0) continue;
      this.scaling.add(entry);
      void this.admit(async () => {
        // Decided again in its turn: the copies, the queue and the budget may have changed since.
        const step = entry.current === placement ? this.autoscaleNow(entry, placement) : 0;
        if (step > 0) {
          log.info('model grows toward max_worker: requests are queued and a thread is idle', { model: entry.record.name, copies: placement.hosts.size + 1 });
          await this.addHosts(entry, placement, 1);
        } else if (step < 0) {
          log.info('model shrinks toward min_worker: idle', { model: entry.record.name, copies: placement.hosts.size - 1 });
          const hosts = this.workerLoads().filter((w) => placement.hosts.has(w.id));
          void this.removeHosts(placement, chooseRemovals(hosts, 1));
        }
      })
        .catch((err: Error) => log.warn('min/max worker scaling failed', { model: entry.record.name, error: err.message }))
        .finally(() => this.scaling.delete(entry));
    }
  }

  private autoscaleNow(entry: LifeEntry, placement: Placement): -1 | 0 | 1 {
    const settings = entry.record.settings!;
    const perCopy = this.predictCopyBytes(entry.record.pkg!);
    return autoscaleStep({
      copies: placement.hosts.size,
      minWorkers: settings.minWorkers,
      maxWorkers: Math.max(settings.minWorkers, settings.maxWorkers),
      queued: this.admission.count(entry.record.id),
      idleThreads: this.pool.slots.filter((s) => !placement.hosts.has(s.id) && s.inFlight === 0).length,
      fitsOneMore: (this.budget.bytes <= 0 || this.budgetUsedBytes() + perCopy <= this.budget.bytes) && this.gpuFitsOneMore(entry, placement),
      idleForMs: Date.now() - (this.lastArrival.get(entry.record.id) ?? 0),
    });
  }

  /** GET /status: the budget in use and, per registered version, its state, cost, placement and last use. */
  status(): ServerStatus {
    return {
      budget: {
        bytes: this.budget.bytes,
        usedBytes: this.budgetUsedBytes(),
        policy: this.budget.policy,
        gpus: this.deviceBudgets.status(),
      },
      downloadCache: this.options.remote?.cache.status(),
      models: this.registry.all().map((r) => {
        const d = this.describeRecord(r);
        return {
          modelName: d.modelName, modelVersion: d.modelVersion, status: d.status, memoryBytes: d.memoryBytes, predictedBytes: d.predictedBytes,
          workers: d.workers.map((w) => Number(w.id)), hits: d.hits, lastUsed: d.lastUsed,
        };
      }),
    };
  }

  private describeRecord(record: ModelRecord): ModelDescription {
    const placement = this.lifecycle.entry(record)?.current;
    return describeModel(
      record, placement, record.pkg ? this.predictCopyBytes(record.pkg) : 0, placement || !record.settings ? undefined : this.nextDevice(record),
      record.settings?.device === 'cuda' || this.gpuIds.length > 0,
    );
  }

  /** GET /models/{name}[/{version}]: the default version when none is named. */
  describe(name: string, version?: string): ModelDescription {
    const failed = this.registry.has(name) ? undefined : this.failedLoads.get(name);
    if (failed) return describeModel(failed, undefined, 0);
    return this.describeRecord(this.registry.get(name, version));
  }

  /** GET /models/{name}/all: every version, in registration order. */
  describeVersions(name: string): ModelDescription[] {
    return this.registry.versions(name).map((r) => this.describeRecord(r));
  }

  /** Requests queued or running per model name, for the queue-depth gauge. */
  queueDepths(): Map<string, number> {
    const depths = new Map<string, number>();
    for (const r of this.registry.all()) depths.set(r.name, (depths.get(r.name) ?? 0) + this.admission.count(r.id));
    return depths;
  }

  /** Measured bytes of every copy held (ready, loading or being evicted), and device memory held for preprocessing. */
  memoryInUse(): { host: number; gpu: number } {
    let host = 0;
    let sessions = 0;
    const streamByWorker = new Map<number, number>();
    for (const [id, h] of this.heldCopies()) {
      host += h.memoryBytes;
      sessions += h.gpuBytes;
      streamByWorker.set(id, h.deviceBytes);
    }
    return { host, gpu: sessions + [...streamByWorker.values()].reduce((a, b) => a + b, 0) };
  }

  /** Versions with a generation requests can use now. */
  placedModelCount(): number {
    return this.lifecycle.all().filter((e) => e.current).length;
  }

  /**
   * Sessions as the lifecycle counts them (one per copy of each generation held) and as the worker
   * threads report them: a difference is a leaked or lost session.
   */
  async sessionCounts(): Promise<{ lifecycle: number; workers: number }> {
    let lifecycle = 0;
    lifecycle += [...this.heldCopies()].length;
    const reported = await Promise.all(this.pool.slots.map((s) => s.run({ kind: 'sessions' }).then((r) => r.count)));
    return { lifecycle, workers: reported.reduce((a, b) => a + b, 0) };
  }

  async close(): Promise<void> {
    clearInterval(this.housekeeping);
    this.pacer?.stop();
    this.garbage.stop();
    await this.pool.close();
  }
}
