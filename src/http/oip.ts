// The Open Inference Protocol (KServe v2) over REST, with Triton's extensions that its clients and
// perf_analyzer need: binary tensor data, model configuration, the model repository, statistics and logging.
import { clientGone } from './client-gone';
import { Router } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as zlib from 'node:zlib';
import { BadRequestError, InvalidInputError, PayloadTooLargeError, SharedMemoryDisabledError, SharedMemoryError, SharedMemoryNotFoundError, UnsupportedMediaTypeError } from '../errors';
import { NO_REGIONS, SystemSharedMemory, readSharedMemoryInputs, writeSharedMemoryOutputs } from '../oip/shared-memory';
import { configOverrides, modelMetadata, tritonModelConfig } from '../oip/metadata';
import type { ModelScheduler } from '../scheduler/scheduler';
import { RequestLocals, locals } from './access-log';
import { RequestWithBody, header, sendOk, sendOkParts } from './invoke';
import { readBody } from './body';
import type { InflightBytes } from './inflight';
import { SERVER_NAME, SERVER_VERSION } from '../version';
import { epochMs } from '../workers/clock';
import { applyLogSettings, logSettingsOf } from '../oip/log-settings';
import { log, logState, setLogState } from '../log';

/**
 * Only what is implemented: clients switch features on from this list. With "statistics" listed,
 * perf_analyzer parses each statistics version as an integer and looks its figures up under it: they name
 * versions as whole numbers ("1.0" as "1", scheduler.inferenceStatistics).
 */
const OIP_EXTENSIONS = ['binary_tensor_data', 'classification', 'logging', 'model_configuration', 'model_repository', 'statistics'] as const;

export const CUDA_SHM_REFUSED = 'CUDA shared memory is not supported by this server: pass tensors through system shared memory';

/** The extensions this server implements; system_shared_memory only where allow_client_shm is on. */
export function oipExtensions(sharedMemory: boolean): string[] {
  return sharedMemory ? [...OIP_EXTENSIONS, 'system_shared_memory'].sort() : [...OIP_EXTENSIONS];
}

const HEADER_LENGTH = 'inference-header-content-length';

export interface OipRouterOptions {
  maxRequestSize: number;
  inflight?: InflightBytes;
  isHealthy: () => boolean;
  /** Client shared memory, where allow_client_shm is on. */
  shm?: SystemSharedMemory;
}

interface Target {
  name: string;
  version?: string;
  action?: 'ready' | 'config' | 'infer' | 'stats';
}

const ACTIONS = new Set(['ready', 'config', 'infer', 'stats']);

/** `{m}[/versions/{v}][/ready|/config|/infer|/stats]`; a name may hold '/' (a SageMaker target path). */
/**
 * Triton's JSON also carries per-response figures (decoupled models) and backend memory: neither applies
 * here, so both are empty, as Triton leaves them for such a model (clients index them).
 */
function asTritonStats<T>(stats: T[]): (T & { response_stats: Record<string, never>; memory_usage: never[] })[] {
  return stats.map((s) => ({ ...s, response_stats: {}, memory_usage: [] }));
}

export function modelTarget(segments: string[]): Target {
  const parts = segments.length > 1 && segments[segments.length - 1] === '' ? segments.slice(0, -1) : [...segments];
  let action: Target['action'];
  const last = parts[parts.length - 1];
  if (parts.length > 1 && ACTIONS.has(last)) {
    action = last as Target['action'];
    parts.pop();
  }
  let version: string | undefined;
  if (parts.length > 2 && parts[parts.length - 2] === 'versions') {
    version = parts.pop();
    parts.pop();
  }
  return { name: parts.join('/'), version, action };
}

/** Where a binary request's first tensor starts, read as readBody allocates (a bad value is refused later). */
export function binarySectionStart(req: IncomingMessage): number | undefined {
  const raw = header(req, HEADER_LENGTH);
  return raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
}

function headerLengthOf(req: IncomingMessage, bodyBytes: number): number | undefined {
  const raw = header(req, HEADER_LENGTH);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim())) throw new InvalidInputError(`Inference-Header-Content-Length must be a whole number of bytes, got ${JSON.stringify(raw)}`);
  const length = Number(raw);
  if (length > bodyBytes) throw new InvalidInputError(`Inference-Header-Content-Length is ${length} but the body has only ${bodyBytes} bytes`);
  return length;
}

/** tritonclient's request_compression_algorithm: a gzip or deflate body, inflated up to oip_max_request_size. */
function decompressed(req: IncomingMessage, body: Buffer, limit: number): Promise<Buffer> {
  const encoding = (header(req, 'content-encoding') ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return Promise.resolve(body);
  if (encoding !== 'gzip' && encoding !== 'deflate') {
    return Promise.reject(new UnsupportedMediaTypeError(`Content-Encoding ${JSON.stringify(encoding)} is not supported: send gzip, deflate or none`));
  }
  const inflate = encoding === 'gzip' ? zlib.gunzip : zlib.inflate;
  return new Promise((resolve, reject) => {
    inflate(body, { maxOutputLength: limit }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') reject(new PayloadTooLargeError(`the ${encoding} body inflates past oip_max_request_size (${limit} bytes)`));
      else reject(new BadRequestError(`the ${encoding} body could not be inflated: ${err.message}`));
    });
  });
}

/** POST /v2/models/{m}[/versions/{v}]/infer, in express and on the fast path (fast-inference.ts). */
export async function inferOip(
  scheduler: ModelScheduler, target: Target, req: RequestWithBody, res: ServerResponse, maxRequestSize: number, context: RequestLocals,
  shm?: SystemSharedMemory, inflight?: InflightBytes,
): Promise<void> {
  scheduler.readiness(target.name, target.version);
  context.model = target.name;
  const body: Uint8Array = Buffer.isBuffer(req.body) ? await decompressed(req, req.body, maxRequestSize) : new Uint8Array(0);
  if (body.byteLength === 0) throw new BadRequestError('the inference request is empty: send {"inputs": [...]}, binary tensors or an image');
  const headerLength = headerLengthOf(req, body.byteLength);
  const contentType = header(req, 'content-type') ?? 'application/json';
  // Any body but an image's is a JSON header, whatever its type says (tritonclient.http.aio sends an
  // all-shared-memory request as application/octet-stream with no header length).
  const shared = shm && !/^image\//i.test(contentType) ? readSharedMemoryInputs(body, headerLength, shm, maxRequestSize) : undefined;
  try {
    if (shared && inflight) {
      // The body's own bytes were reserved as it arrived; what the regions added is held from now on.
      const added = Math.max(0, shared.body.byteLength - body.byteLength);
      inflight.reserve(added);
      res.once('close', () => inflight.release(added));
    }
    const result = await scheduler.infer(target.name, target.version, {
      body: shared?.body ?? body,
      contentType: shared ? 'application/octet-stream' : contentType,
      requestId: context.requestId,
      enqueuedAt: epochMs(),
      oip: { headerLength: shared ? shared.headerLength : headerLength },
    }, Infinity, clientGone(res));
    context.timings = result.timings;
    if (result.coldStart) res.setHeader('X-Quiver-Cold-Start', 'true');
    const answer = shared && shm && shared.outputs.size > 0 ? writeSharedMemoryOutputs(result.body, result.binary, shared.outputs, shm) : { header: result.body, binary: result.binary };
    if (!answer.binary) return sendOk(res, 'application/json', answer.header);
    const head = Buffer.from(answer.header, 'utf8');
    res.setHeader('Inference-Header-Content-Length', String(head.length));
    sendOkParts(res, 'application/octet-stream', [head, answer.binary]);
  } finally {
    if (shared) shm?.release(shared.outputs.values());
  }
}

function repositoryParameters(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('the request body must be a JSON object');
  const params = (body as { parameters?: unknown }).parameters;
  if (params === undefined) return {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new BadRequestError('"parameters" must be an object');
  return params as Record<string, unknown>;
}

export function oipRouter(scheduler: ModelScheduler, options: OipRouterOptions): Router {
  const router = Router();
  const raw = readBody({ limit: options.maxRequestSize, setting: 'oip_max_request_size', inflight: options.inflight, alignedAt: binarySectionStart });
  const json = readBody({ limit: 1024 * 1024, json: 'always' });

  router.get('/v2/health/live', (_req, res) => {
    res.status(200).json({ live: true });
  });
  router.get('/v2/health/ready', (_req, res) => {
    // The OIP spec: 200 is true, a 4xx false (Triton answers 400).
    if (options.isHealthy()) res.status(200).json({ ready: true });
    else res.status(400).json({ ready: false, error: 'the server is shutting down' });
  });
  router.get('/v2', (_req, res) => {
    res.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: oipExtensions(options.shm !== undefined) });
  });

  router.get('/v2/models/*segments', async (req, res) => {
    const segments = (req.params as { segments: string[] }).segments;
    // Triton's statistics extension: GET /v2/models/stats is every model's.
    if (segments.length === 1 && segments[0] === 'stats') {
      res.json({ model_stats: asTritonStats(scheduler.inferenceStatistics()) });
      return;
    }
    const target = modelTarget(segments);
    if (target.action === 'stats') {
      res.json({ model_stats: asTritonStats(scheduler.inferenceStatistics(target.name, target.version)) });
      return;
    }
    if (target.action === 'infer') throw new BadRequestError('inference is POST /v2/models/{name}/infer');
    if (target.action === 'ready') {
      const { ready, state } = scheduler.readiness(target.name, target.version);
      if (ready) res.status(200).json({ name: target.name, ready: true });
      else res.status(400).json({ name: target.name, ready: false, error: `model "${target.name}" is not ready (${state})` });
      return;
    }
    const signature = await scheduler.signature(target.name, target.version);
    res.json(target.action === 'config' ? tritonModelConfig(signature) : modelMetadata(signature));
  });

  router.post('/v2/models/*segments', raw, async (req, res) => {
    const target = modelTarget((req.params as { segments: string[] }).segments);
    if (target.action !== 'infer') throw new BadRequestError(`POST /v2/models/${target.name} is not an API: did you mean .../infer?`);
    await inferOip(scheduler, target, req, res, options.maxRequestSize, locals(res), options.shm, options.inflight);
  });

  // Triton's system shared memory extension: GET [/region/{name}]/status, POST /region/{name}/register,
  // POST [/region/{name}]/unregister.
  // Off, only registering is refused: status lists none and unregistering succeeds, as Triton's clients
  // (tritonclient's shm examples, perf_analyzer) unregister everything before they start.
  const regions = (): SystemSharedMemory => {
    if (!options.shm) throw new SharedMemoryDisabledError('client shared memory is off: start the server with allow_client_shm=true (--allow-client-shm true)');
    return options.shm;
  };
  const listed = options.shm ?? NO_REGIONS;
  router.get(['/v2/systemsharedmemory/status', '/v2/systemsharedmemory/region/:name/status'], (req, res) => {
    res.json(listed.status((req.params as { name?: string }).name));
  });
  router.post('/v2/systemsharedmemory/region/:name/register', json, (req, res) => {
    const body = (req.body ?? {}) as { key?: unknown; offset?: unknown; byte_size?: unknown };
    if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('the request body must be {"key", "offset", "byte_size"}');
    regions().register(req.params.name, body.key as string, body.offset, body.byte_size);
    res.status(200).json({});
  });
  router.post(['/v2/systemsharedmemory/unregister', '/v2/systemsharedmemory/region/:name/unregister'], (req, res) => {
    listed.unregister((req.params as { name?: string }).name);
    res.status(200).json({});
  });
  // Triton's CUDA shared memory API as a server with no CUDA regions answers it: none registered,
  // unregistering succeeds, registering is refused. tritonclient's shm examples and perf_analyzer
  // unregister both kinds before they start.
  router.get(['/v2/cudasharedmemory/status', '/v2/cudasharedmemory/region/:name/status'], (req, res) => {
    const name = (req.params as { name?: string }).name;
    if (name) throw new SharedMemoryNotFoundError(`no CUDA shared memory region "${name}" is registered`);
    res.json([]);
  });
  router.post('/v2/cudasharedmemory/region/:name/register', () => {
    regions();
    throw new SharedMemoryError(CUDA_SHM_REFUSED);
  });
  router.post(['/v2/cudasharedmemory/unregister', '/v2/cudasharedmemory/region/:name/unregister'], (_req, res) => {
    res.status(200).json({});
  });

  // Triton's logging extension: the server's log level, read and set.
  router.get('/v2/logging', (_req, res) => {
    res.json(logSettingsOf(logState()));
  });
  router.post('/v2/logging', json, (req, res) => {
    const state = applyLogSettings(logState(), req.body ?? {});
    if (state.level !== logState().level) log.warn('log level changed through /v2/logging', { level: state.level });
    setLogState(state);
    res.json(logSettingsOf(state));
  });

  router.post('/v2/repository/index', json, async (req, res) => {
    const readyOnly = (req.body as { ready?: unknown } | undefined)?.ready === true;
    const index = await scheduler.repositoryIndex();
    res.json(readyOnly ? index.filter((m) => m.state === 'READY') : index);
  });

  router.post('/v2/repository/models/:name/load', json, async (req, res) => {
    const params = repositoryParameters(req.body);
    const files = Object.keys(params).filter((k) => k.startsWith('file:'));
    if (files.length > 0) throw new BadRequestError(`model files in the load request (${files.join(', ')}) are not supported: put the model in the model store`);
    let overrides = {};
    if (params.config !== undefined) {
      if (typeof params.config !== 'string') throw new BadRequestError('parameters.config must be the model configuration as a JSON string');
      try {
        overrides = configOverrides(JSON.parse(params.config));
      } catch (err) {
        throw new BadRequestError(`parameters.config is not a usable model configuration: ${(err as Error).message}`);
      }
    }
    await scheduler.loadFromRepository(req.params.name, overrides);
    res.status(200).json({});
  });

  router.post('/v2/repository/models/:name/unload', json, async (req, res) => {
    await scheduler.unregisterAll(req.params.name);
    res.status(200).json({});
  });

  return router;
}
