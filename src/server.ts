// Wires a validated configuration into a running server: worker pool → scheduler → HTTP apps.
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { prepareWorkDir } from './models/work-dir';
import { clearUnpacked } from './models/unpacked-folders';
import { parseAddress } from './config/load';
import { QuiverConfig, defaultMemoryBudget } from './config/schema';
import { RequestListener, ServerLifecycle, createMmsApps, createSageMakerApp } from './http/app';
import { addressUsesTls, TlsCredentials, tlsCredentials } from './http/tls';
import { declaredTooLarge } from './http/body';
import { limitConnections } from './http/connections';
import { InflightBytes } from './http/inflight';
import { ApiKeys, keyFilePath, loadOrCreateKeys, tokenAuthFor } from './http/token-auth';
import { InvalidConfigError, QuiverError, SnapshotWriteError } from './errors';
import { isOipPath, sendError } from './http/error-handler';
import { pathOf } from './http/access-log';
import { configureLogging, log } from './log';
import { QuiverMetrics } from './metrics';
import { loadNative } from './preprocess/native';
import { DownloadCache } from './models/download-cache';
import { ModelRegistry } from './models/registry';
import { AllowedUrls, RemoteArtifactSource } from './models/remote-source';
import { HttpArtifactStore } from './models/http-store';
import { S3ArtifactStore } from './models/s3-store';
import { readSnapshot, snapshotFile, writeSnapshot } from './models/snapshot';
import { ModelScheduler, RegisterRequest } from './scheduler/scheduler';
import { WorkerPool } from './workers/pool';
import { GrpcServers } from './grpc/server';
import { DeviceProbe, parseGpuIds, probeDevices } from './workers/device-probe';
import { SystemSharedMemory } from './oip/shared-memory';
import { chooseDevice, gpuBudgetBytes } from './scheduler/devices';

export interface StartupModel {
  name?: string;
  url: string;
}

/** What ModelMesh assumes a model takes before Quiver has measured it (its own default is similar). */
const DEFAULT_MODEL_SIZE_BYTES = 64 * 2 ** 20;
/** What modelLoadingTimeoutMs allows beyond model_load_timeout by default: the puller's download comes first. */
const MODELMESH_DOWNLOAD_ALLOWANCE_S = 120;

const MODEL_ARTIFACT = /(\.tar\.gz|\.tgz|\.tar|\.mar|\.zip)$/i;

/** `name=url`, `url`, or `ALL` (every model folder and archive directly in the store). */
export async function startupModels(entries: string[], modelStore: string): Promise<StartupModel[]> {
  const models: StartupModel[] = [];
  for (const entry of entries) {
    if (entry === 'ALL') {
      const dirents = await fsp.readdir(modelStore, { withFileTypes: true });
      for (const d of dirents.sort((a, b) => a.name.localeCompare(b.name))) {
        if (d.name.startsWith('.')) continue;
        if (d.isDirectory() || (d.isFile() && MODEL_ARTIFACT.test(d.name))) models.push({ url: d.name });
      }
      continue;
    }
    const eq = entry.indexOf('=');
    models.push(eq > 0 ? { name: entry.slice(0, eq), url: entry.slice(eq + 1) } : { url: entry });
  }
  return models;
}

export interface TransportOptions {
  credentials?: TlsCredentials;
  maxRequestSize: number;
  oipMaxRequestSize: number;
  maxConnections: number;
  headerReadTimeoutMs: number;
  requestReadTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

function listen(app: RequestListener, address: string, label: string, transport: TransportOptions): Promise<http.Server> {
  const { host, port } = parseAddress(address);
  const secure = addressUsesTls(address);
  // Timeouts are checked every second (Node's default: 30 s), so a slow client is cut near its limit.
  const options = { connectionsCheckingInterval: 1_000, headersTimeout: transport.headerReadTimeoutMs, requestTimeout: transport.requestReadTimeoutMs };
  const server: http.Server = secure
    ? https.createServer({ ...options, ...transport.credentials, handshakeTimeout: transport.headerReadTimeoutMs }, app)
    : http.createServer(options, app);
  server.keepAliveTimeout = transport.keepAliveTimeoutMs;
  limitConnections(server, transport.maxConnections, secure, label);
  // Expect: 100-continue with a body over the limit: 413 instead of inviting the client to send it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = pathOf(req);
    const refused = isOipPath(path) ? declaredTooLarge(req.headers, transport.oipMaxRequestSize, 'oip_max_request_size') : declaredTooLarge(req.headers, transport.maxRequestSize);
    if (!refused) {
      res.writeContinue();
      server.emit('request', req, res);
      return;
    }
    res.setHeader('Connection', 'close');
    // In the error form of the route asked for (OIP's {"error"} under /v2), as any other refusal.
    sendError(res, refused, label === 'sagemaker' ? 'sagemaker' : 'mms', path);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Closes at once: connections still open (a client stuck sending) are cut. */
function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The keys of the APIs that need one (from the key file, made when missing); logged by path, never by value. */
function apiTokens(config: QuiverConfig): { inference?: string; management?: string; repository?: string; grpc?: ApiKeys } {
  const needed = tokenAuthFor(config);
  if (!needed.inference && !needed.management && !needed.grpc) return {};
  // ModelMesh sends no token, and a listener serving its runtime serves the inference service unchecked.
  if (needed.grpc && config.grpc_inference_address === config.modelmesh_address) {
    throw new InvalidConfigError(`token_auth needs the gRPC inference service on an address of its own: grpc_inference_address is modelmesh_address (${config.modelmesh_address}), where ModelMesh calls without a token`);
  }
  const file = keyFilePath(config);
  const keys = loadOrCreateKeys(file);
  log.info('token authorization is on', { keyFile: file, inference: needed.inference, management: needed.management, grpc: needed.grpc });
  return {
    // Triton's repository routes sit on the inference port: they take the management key.
    ...(needed.inference ? { inference: keys.inference, repository: keys.management } : {}),
    ...(needed.management ? { management: keys.management } : {}), ...(needed.grpc ? { grpc: keys } : {}),
  };
}

export interface StartOptions {
  /** Register the models of the last snapshot first (after the supervisor restarted a crashed server). */
  restoreSnapshot?: boolean;
}

export class QuiverServer {
  private constructor(
    readonly config: QuiverConfig,
    readonly scheduler: ModelScheduler,
    private readonly servers: { inference: http.Server; management?: http.Server },
    private readonly lifecycle: ServerLifecycle,
    private readonly grpc: GrpcServers,
    private readonly shm?: SystemSharedMemory,
  ) {}

  static async start(config: QuiverConfig, startOptions: StartOptions = {}): Promise<QuiverServer> {
    const credentials = tlsCredentials(config, [
      { key: 'inference_address', value: config.inference_address },
      ...(config.mode === 'mms' ? [{ key: 'management_address', value: config.management_address }] : []),
    ]);
    if (config.preprocess_backend === 'native') {
      const { error } = loadNative();
      if (error) throw new InvalidConfigError(`preprocess_backend is "native" but the addon did not load: ${error}`);
    }
    configureLogging(config.log_level, config.log_format);
    if (config.gpu_memory_percent > 100) throw new InvalidConfigError(`gpu_memory_percent must be at most 100, got ${config.gpu_memory_percent}`);
    const devices = probeDevices(parseGpuIds(config.gpu_ids));
    logDevices(devices, config);
    prepareWorkDir(config.work_dir);
    // Before the snapshot is restored: it unpacks what its models need afresh.
    await clearUnpacked(config.work_dir);
    // The metrics read the scheduler, which needs the metrics to count loads: bind them late.
    let scheduler: ModelScheduler | undefined;
    const metrics = new QuiverMetrics({
      queueDepth: () => scheduler?.queueDepths() ?? new Map(),
      memoryInUse: () => scheduler?.memoryInUse() ?? { host: 0, gpu: 0 },
      modelsLoaded: () => scheduler?.placedModelCount() ?? 0,
    });
    const pool = new WorkerPool(
      config.workers,
      {
        intraOpThreads: config.intra_op_threads,
        interOpThreads: config.inter_op_threads,
        maxImagePixels: config.max_image_pixels,
        preprocessBackend: config.preprocess_backend,
        heapLimitMb: config.worker_heap_mb,
        gpuIds: devices.gpus.map((g) => g.id),
        fakeGpus: devices.fake,
      },
      {
        restarted: (worker) => {
          metrics.workerRestarts.inc({ worker: String(worker) });
          log.warn('worker thread replaced', { worker });
          scheduler?.reloadWorker(worker);
        },
        failed: (worker, error) => log.error('worker thread failed', { worker, error: error.message }),
      },
    );
    const allowedUrls = new AllowedUrls(config.allowed_urls);
    scheduler = new ModelScheduler(new ModelRegistry(), pool, {
      modelStore: config.model_store,
      linkRoots: config.model_link_roots,
      workDir: config.work_dir,
      maxArchiveBytes: config.max_archive_bytes,
      maxArchiveRatio: config.max_archive_ratio,
      allowHandlers: config.allow_handlers === 'true',
      remote: new RemoteArtifactSource(
        {
          s3: new S3ArtifactStore({ endpoint: config.s3_endpoint, maxObjects: 10_000 }),
          http: new HttpArtifactStore({ checkAllowed: (url) => allowedUrls.check(url), maxBytes: config.max_archive_bytes, idleTimeoutMs: 30_000 }),
        },
        new DownloadCache(path.join(config.work_dir, 'downloads'), config.download_cache_bytes),
        { maxBytes: config.max_archive_bytes, maxRatio: config.max_archive_ratio },
        allowedUrls,
      ),
      defaultWorkersPerModel: config.default_workers_per_model,
      maxWorkerThreads: config.max_worker_threads,
      jobQueueSize: config.job_queue_size,
      maxQueuedRequests: config.max_queued_requests,
      defaultResponseTimeoutS: config.default_response_timeout,
      modelLoadTimeoutS: config.model_load_timeout,
      memoryBudgetBytes: config.memory_budget,
      evictionPolicy: config.eviction_policy,
      devices,
      defaultDevice: config.default_device,
      gpuBudgets: devices.gpus.map((g) => ({ id: g.id, bytes: gpuBudgetBytes(g.totalBytes, config.gpu_memory_percent, config.gpu_memory_reserve) })),
      classifierFormat: config.classifier_format,
      cpuPacing: config.cpu_pacing === 'on' && config.intra_op_threads === 1,
      metrics,
      // Under ModelMesh nothing restores a snapshot (below): none is written, and a full disk fails no load.
      persist: config.modelmesh_address !== 'off' ? undefined : (models) => {
        try {
          writeSnapshot(snapshotFile(config.work_dir), models);
        } catch (err) {
          log.error('snapshot could not be written', { error: (err as Error).message });
          throw new SnapshotWriteError(`the registry snapshot (${snapshotFile(config.work_dir)}) could not be written, so the change was not made: ${(err as Error).message}`);
        }
      },
    });
    const lifecycle: ServerLifecycle = { draining: false, inFlight: 0 };
    const shm = config.allow_client_shm === 'true' ? new SystemSharedMemory() : undefined;
    // max_inflight_bytes holds across ports and protocols.
    const inflight = new InflightBytes(config.max_inflight_bytes);
    let started = false;
    let grpcServers: GrpcServers | undefined;
    try {
      const { grpc: grpcKeys, ...tokens } = apiTokens(config);
      // Bound before the warm-up: ModelMesh's puller gives its runtime 3 s to accept a connection, and
      // reads STARTING from runtimeStatus until the server is ready (gRPC health says NOT_SERVING).
      grpcServers = await GrpcServers.start(scheduler, {
        inferenceAddress: config.grpc_inference_address,
        modelMeshAddress: config.modelmesh_address,
        maxMessageBytes: config.grpc_max_message_size,
        isHealthy: () => started && !lifecycle.draining,
        isStarted: () => started,
        keys: grpcKeys,
        shm,
        inflight,
        modelMesh: {
          // ModelMesh will not start on a capacity under 512 MiB: with no budget (0), what a budget would be.
          capacityBytes: config.memory_budget > 0 ? config.memory_budget : defaultMemoryBudget(),
          modelLoadTimeoutMs: config.model_load_timeout * 1000,
          reportedLoadTimeoutMs: (config.modelmesh_load_timeout > 0 ? config.modelmesh_load_timeout : config.model_load_timeout + MODELMESH_DOWNLOAD_ALLOWANCE_S) * 1000,
          defaultModelSizeBytes: DEFAULT_MODEL_SIZE_BYTES,
        },
      });
      await pool.warmUp();
      // ModelMesh owns what a runtime holds: after a crash its models are gone, and the NOT_FOUND of the
      // next request for one makes ModelMesh load it again (restored, it would be neither pinned nor sized).
      if (startOptions.restoreSnapshot && config.modelmesh_address === 'off') await QuiverServer.restoreSnapshot(scheduler, config);
      if (config.modelmesh_address !== 'off' && config.modelmesh_load_timeout > 0 && config.modelmesh_load_timeout < config.model_load_timeout) {
        log.warn('modelmesh_load_timeout is under model_load_timeout: ModelMesh may give up on a load that is still going', { modelmesh_load_timeout: config.modelmesh_load_timeout, model_load_timeout: config.model_load_timeout });
      }
      await QuiverServer.loadStartupModels(scheduler, config);
      const transport: TransportOptions = {
        credentials,
        maxRequestSize: config.max_request_size,
        oipMaxRequestSize: config.oip_max_request_size,
        maxConnections: config.max_connections,
        headerReadTimeoutMs: config.header_read_timeout * 1000,
        requestReadTimeoutMs: config.request_read_timeout * 1000,
        keepAliveTimeoutMs: config.keep_alive_timeout * 1000,
      };
      const options = {
        maxRequestSize: config.max_request_size, oipMaxRequestSize: config.oip_max_request_size, inflight,
        isHealthy: () => !lifecycle.draining, metrics, lifecycle, tokens, shm,
      };
      let servers: { inference: http.Server; management?: http.Server };
      if (config.mode === 'sagemaker') {
        servers = { inference: await listen(createSageMakerApp(scheduler, options), config.inference_address, 'sagemaker', transport) };
      } else {
        const apps = createMmsApps(scheduler, options);
        const inference = await listen(apps.inference, config.inference_address, 'inference', transport);
        try {
          servers = { inference, management: await listen(apps.management, config.management_address, 'management', transport) };
        } catch (err) {
          await closeServer(inference);
          throw err;
        }
      }
      started = true;
      const server = new QuiverServer(config, scheduler, servers, lifecycle, grpcServers, shm);
      log.info('quiver is serving', { mode: config.mode, ...server.urls(), workers: config.workers, models: scheduler.modelCount() });
      return server;
    } catch (err) {
      await grpcServers?.close(0);
      await scheduler.close();
      shm?.close();
      throw err;
    }
  }

  private static async loadStartupModels(scheduler: ModelScheduler, config: QuiverConfig): Promise<void> {
    for (const model of await startupModels(config.load_models, config.model_store)) {
      if (model.name && scheduler.hasModel(model.name)) continue;
      const request: RegisterRequest = { ...model, synchronous: true, loadedAtStartup: true };
      try {
        const record = await scheduler.register(request);
        log.info('model loaded', { model: record.name, url: model.url });
      } catch (err) {
        // Restored from the snapshot already.
        if (err instanceof QuiverError && err.kind === 'ModelAlreadyExists') continue;
        log.error('model failed to load at start', { url: model.url, error: (err as Error).message });
      }
    }
  }

  private static async restoreSnapshot(scheduler: ModelScheduler, config: QuiverConfig): Promise<void> {
    const models = readSnapshot(snapshotFile(config.work_dir));
    await scheduler.restore(models, async (m) => {
      const register = (workers: number) =>
        scheduler.register({
          name: m.name, version: m.modelVersion, url: m.url, initialWorkers: workers, maxWorkers: m.maxWorkers, batchSize: m.batchSize,
          maxBatchDelayMs: m.maxBatchDelayMs, responseTimeoutS: m.responseTimeoutS, device: m.device, synchronous: true,
          // Models that /invocations loaded are named by their target path.
          nameIsTargetPath: m.name.includes('/'),
          // Predicted from what it measured before the crash, not a first guess from its file size.
          measured: m.measured,
        });
      const tooBig = (err: unknown) => err instanceof QuiverError && err.kind === 'InsufficientMemory';
      try {
        try {
          await register(m.workers);
        } catch (err) {
          // It served before the crash: with fewer copies rather than not at all (a scale brings them back).
          if (!tooBig(err) || m.workers <= 1) throw err;
          log.warn('model from the snapshot does not fit with all its workers now: restored with one', { model: m.name, version: m.modelVersion, workers: m.workers, error: (err as Error).message });
          await register(1);
        }
      } catch (err) {
        log.error('model from the snapshot failed to load; it stays in the snapshot until the next change', { model: m.name, version: m.modelVersion, error: (err as Error).message });
        throw err;
      }
    });
    log.info('snapshot restored', { models: scheduler.modelCount(), of: models.length });
  }

  private static url(server: http.Server): string {
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${server instanceof https.Server ? 'https' : 'http'}://${host}:${address.port}`;
  }

  urls(): { inference: string; management?: string; grpc?: string; modelMesh?: string } {
    const grpcAt = (service: string) => {
      const l = this.grpc.listeners.find((x) => x.services.includes(service));
      if (!l) return undefined;
      return l.address.startsWith('unix:') ? l.address : l.address.replace(/:\d+$/, `:${l.port}`);
    };
    const grpcUrl = this.config.grpc_inference_address === 'off' ? undefined : grpcAt('inference.GRPCInferenceService');
    const meshUrl = grpcAt('mmesh.ModelRuntime');
    return {
      inference: QuiverServer.url(this.servers.inference),
      ...(this.servers.management ? { management: QuiverServer.url(this.servers.management) } : {}),
      ...(grpcUrl ? { grpc: grpcUrl } : {}),
      ...(meshUrl ? { modelMesh: meshUrl } : {}),
    };
  }

  private httpServers(): http.Server[] {
    return [this.servers.inference, this.servers.management].filter((s): s is http.Server => !!s);
  }

  /**
   * Graceful shutdown: stop accepting connections, answer new requests on open connections with 503
   * (and /ping with 503), wait for everything in flight up to `timeoutMs`, then close and unload.
   * Resolves true when nothing was left in flight.
   */
  async shutdown(timeoutMs: number): Promise<boolean> {
    this.lifecycle.draining = true;
    const closed = this.httpServers().map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    const deadline = Date.now() + timeoutMs;
    while ((this.lifecycle.inFlight > 0 || this.scheduler.pendingRequests() > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const drained = this.lifecycle.inFlight === 0 && this.scheduler.pendingRequests() === 0;
    if (!drained) log.warn('shutdown timed out with requests in flight', { inFlight: this.lifecycle.inFlight });
    for (const server of this.httpServers()) server.closeAllConnections();
    await Promise.all([...closed, this.grpc.close(Math.max(0, deadline - Date.now()))]);
    await this.scheduler.close();
    this.shm?.close();
    return drained;
  }

  async close(): Promise<void> {
    await Promise.all([...this.httpServers().map(closeServer), this.grpc.close(0)]);
    await this.scheduler.close();
    this.shm?.close();
  }
}

/** The start-up log says where models will run, and why not on a GPU when they cannot. */
function logDevices(devices: DeviceProbe, config: QuiverConfig): void {
  const mib = (n: number) => Math.round(n / 2 ** 20);
  if (devices.gpus.length > 0) {
    log.info('GPUs found', {
      gpus: devices.gpus.map((g) => ({ id: g.id, totalMiB: mib(g.totalBytes), budgetMiB: mib(gpuBudgetBytes(g.totalBytes, config.gpu_memory_percent, config.gpu_memory_reserve)) })),
      cudaProvider: devices.cudaProvider.available, ...(devices.fake ? { fake: true } : {}),
    });
  }
  const onCpu = chooseDevice(config.default_device, devices);
  if (config.default_device !== 'cpu' && onCpu.reason) log.info('models run on the CPU', { defaultDevice: config.default_device, reason: onCpu.reason });
}
