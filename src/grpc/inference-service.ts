// inference.GRPCInferenceService (KServe v2 gRPC, with Triton's model config and repository RPCs),
// answered from the same scheduler as the REST APIs. ModelMesh routes requests by the mm-model-id header.
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { BadRequestError, QuiverError, ServerStartingError, SharedMemoryDisabledError, SharedMemoryError, SharedMemoryNotFoundError, TokenAuthorizationError } from '../errors';
import { bearerMatches } from '../http/token-auth';
import { configOverrides, modelMetadata, tritonModelConfig } from '../oip/metadata';
import type { ModelScheduler } from '../scheduler/scheduler';
import { SERVER_NAME, SERVER_VERSION } from '../version';
import { CancelSignal } from '../workers/cancel-signal';
import { CUDA_SHM_REFUSED, oipExtensions } from '../http/oip';
import { NO_REGIONS, type SystemSharedMemory } from '../oip/shared-memory';
import type { InflightBytes } from '../http/inflight';
import { deadlineOf, grpcError, meshModelId, routeOf, unary } from './calls';
import { ModelInferRequest, inferRequestBody, inferResponse } from './tensors';
import { epochMs } from '../workers/clock';
import { applyLogSettings, logSettingsOf } from '../oip/log-settings';
import { log, logState, setLogState } from '../log';

interface NamedRequest {
  name: string;
  version: string;
}

function target(request: { name?: string; model_name?: string; version?: string; model_version?: string }, metadata: grpc.Metadata): { name: string; version?: string } {
  const meshId = meshModelId(metadata);
  // ModelMesh's id names one loaded model; the client's version is not ours to check (a NOT_FOUND
  // would make ModelMesh unload the model).
  if (meshId !== undefined) return { name: meshId };
  const name = request.name ?? request.model_name ?? '';
  if (name === '') throw new BadRequestError('the request names no model');
  const version = request.version ?? request.model_version;
  return { name, version: version ? version : undefined };
}

/** The keys a reachable gRPC listener checks, as the REST APIs do: the repository calls take the management key. */
export interface GrpcKeys {
  inference: string;
  management: string;
}

/** `authorization: Bearer <key>` in the call's metadata (Triton's clients send it with `headers=`). */
function checkToken(metadata: grpc.Metadata, key: string, api: 'inference' | 'management'): void {
  const match = bearerMatches(String(metadata.get('authorization')[0] ?? ''), key);
  if (match) return;
  throw new TokenAuthorizationError(match === false ? `the token is not the ${api} key` : `the ${api} API needs "authorization: Bearer <${api} key>" metadata (the key file of the server holds it)`);
}

/** Liveness and readiness stay open, as /v2/health/* and gRPC health do. */
const OPEN_METHODS = new Set(['ServerLive', 'ServerReady']);
const MANAGEMENT_METHODS = new Set([
  'RepositoryIndex', 'RepositoryModelLoad', 'RepositoryModelUnload', 'LogSettings',
  'SystemSharedMemoryStatus', 'SystemSharedMemoryRegister', 'SystemSharedMemoryUnregister',
  'CudaSharedMemoryStatus', 'CudaSharedMemoryRegister', 'CudaSharedMemoryUnregister',
]);
const STREAM_METHODS = new Set(['ModelStreamInfer']);

/** Runs `check(method, metadata)` before every method but liveness and readiness; its throw is the call's status. */
function guarded(service: grpc.UntypedServiceImplementation, check: (method: string, metadata: grpc.Metadata) => void): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(service)) {
    if (OPEN_METHODS.has(method)) {
      out[method] = handler;
      continue;
    }
    if (STREAM_METHODS.has(method)) {
      const streamHandler = handler as grpc.handleBidiStreamingCall<unknown, unknown>;
      out[method] = ((call: grpc.ServerDuplexStream<unknown, unknown>) => {
        try {
          check(method, call.metadata);
        } catch (err) {
          // A stream ends with a status by an 'error' event carrying it.
          call.emit('error', grpcError(err, routeOf(call.metadata)));
          return;
        }
        streamHandler(call);
      }) as grpc.handleBidiStreamingCall<unknown, unknown>;
      continue;
    }
    const unaryHandler = handler as grpc.handleUnaryCall<unknown, unknown>;
    out[method] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      try {
        check(method, call.metadata);
      } catch (err) {
        callback(grpcError(err, routeOf(call.metadata)));
        return;
      }
      unaryHandler(call, callback);
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return out;
}

export interface InferenceServiceOptions {
  isHealthy: () => boolean;
  /** False while the server warms up (the listener is bound before): calls other than live and ready wait for it. */
  isStarted: () => boolean;
  keys?: GrpcKeys;
  /** The repository extension's RPCs (not on ModelMesh's listener). */
  repository: boolean;
  /** Client shared memory, where allow_client_shm is on (not on ModelMesh's listener). */
  shm?: SystemSharedMemory;
  /** grpc_max_message_size: also the most a request's tensors may read from shared memory. */
  maxMessageBytes?: number;
  /** max_inflight_bytes: a request's tensors (shared memory's included) are held against it until answered. */
  inflight?: InflightBytes;
}

export function inferenceService(scheduler: ModelScheduler, options: InferenceServiceOptions): grpc.UntypedServiceImplementation {
  const all = unguardedService(scheduler, options.isHealthy, options.shm, options.maxMessageBytes ?? Infinity, options.inflight);
  // A method left out answers UNIMPLEMENTED.
  const service = options.repository ? all : Object.fromEntries(Object.entries(all).filter(([method]) => !MANAGEMENT_METHODS.has(method)));
  const keys = options.keys;
  return guarded(service, (method, metadata) => {
    if (!options.isStarted()) throw new ServerStartingError('the server is starting: ServerReady says when it is ready');
    if (keys) checkToken(metadata, MANAGEMENT_METHODS.has(method) ? keys.management : keys.inference, MANAGEMENT_METHODS.has(method) ? 'management' : 'inference');
  });
}

function unguardedService(
  scheduler: ModelScheduler, isHealthy: () => boolean, shm: SystemSharedMemory | undefined, maxTensorBytes: number, inflight: InflightBytes | undefined,
): grpc.UntypedServiceImplementation {
  const infer = async (req: ModelInferRequest, md: grpc.Metadata, deadline: number, cancelled: CancelSignal) => {
    const t = target(req, md);
    scheduler.readiness(t.name, t.version);
    const { body, headerLength, sharedOutputs } = inferRequestBody(req, shm, maxTensorBytes);
    // Taken now: the body goes to the worker by transfer, which leaves it empty here.
    const held = body.byteLength;
    try {
      inflight?.reserve(held);
    } catch (err) {
      if (sharedOutputs) shm?.release(sharedOutputs.values());
      throw err;
    }
    try {
      const result = await scheduler.infer(t.name, t.version, {
        body, contentType: 'application/octet-stream', requestId: randomUUID(), enqueuedAt: epochMs(), oip: { headerLength },
      }, deadline, cancelled);
      return inferResponse(result.body, result.binary, sharedOutputs && shm ? { outputs: sharedOutputs, shm } : undefined);
    } finally {
      inflight?.release(held);
      if (sharedOutputs) shm?.release(sharedOutputs.values());
    }
  };
  const regions = (): SystemSharedMemory => {
    if (!shm) throw new SharedMemoryDisabledError('client shared memory is off: start the server with allow_client_shm=true (--allow-client-shm true)');
    return shm;
  };
  // Off, only registering is refused (as the REST routes, oip.ts).
  const listed = shm ?? NO_REGIONS;
  return {
    ServerLive: unary(async () => ({ live: true })),
    ServerReady: unary(async () => ({ ready: isHealthy() })),
    ServerMetadata: unary(async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: oipExtensions(shm !== undefined) })),
    // As Triton: an unknown model or version is not ready, not an error (tritonclient raises on errors).
    ModelReady: unary(async (req: NamedRequest, md) => {
      const t = target(req, md);
      try {
        return { ready: scheduler.readiness(t.name, t.version).ready };
      } catch (err) {
        if (err instanceof QuiverError && (err.kind === 'ModelNotFound' || err.kind === 'ModelVersionNotFound')) return { ready: false };
        throw err;
      }
    }),
    ModelMetadata: unary(async (req: NamedRequest, md) => {
      const t = target(req, md);
      return modelMetadata(await scheduler.signature(t.name, t.version));
    }),
    ModelConfig: unary(async (req: NamedRequest, md) => {
      const t = target(req, md);
      return { config: tritonModelConfig(await scheduler.signature(t.name, t.version)) };
    }),
    ModelInfer: unary(async (req: ModelInferRequest, md, call) => {
      // A cancelled call (the client gave up) takes its request off any queue it still waits in.
      // grpc-js reports every call as cancelled once its status is sent: only a cancel before that is the client's.
      const cancelled = new CancelSignal();
      const onCancelled = () => cancelled.abort(new Error('the client cancelled the call'));
      call.once('cancelled', onCancelled);
      try {
        return await infer(req, md, deadlineOf(call), cancelled);
      } finally {
        call.off('cancelled', onCancelled);
      }
    }),
    // tritonclient's start_stream / async_stream_infer and perf_analyzer --streaming: each request is
    // answered on the stream as it completes (clients match them by id); a failure is an error_message
    // for that request and the stream goes on.
    ModelStreamInfer: (call: grpc.ServerDuplexStream<ModelInferRequest, unknown>) => {
      const cancelled = new CancelSignal();
      call.once('cancelled', () => cancelled.abort());
      let pending = 0;
      let ended = false;
      const settle = () => {
        if (ended && pending === 0 && !call.cancelled) call.end();
      };
      call.on('data', (req: ModelInferRequest) => {
        pending++;
        infer(req, call.metadata, deadlineOf(call), cancelled)
          .then(
            (response) => ({ infer_response: response }),
            (err: unknown) => ({ error_message: grpcError(err, routeOf(call.metadata)).details ?? 'the request failed', infer_response: { id: req.id ?? '' } }),
          )
          .then((message) => {
            // A client that sends but does not read: stop reading its requests until it catches up.
            if (!call.cancelled && !call.write(message)) {
              call.pause();
              call.once('drain', () => call.resume());
            }
          })
          .finally(() => {
            pending--;
            settle();
          });
      });
      call.on('end', () => {
        ended = true;
        settle();
      });
    },
    ModelStatistics: unary(async (req: NamedRequest, md) => {
      if (meshModelId(md) === undefined && !req.name) return { model_stats: scheduler.inferenceStatistics() };
      const t = target(req, md);
      return { model_stats: scheduler.inferenceStatistics(t.name, t.version) };
    }),
    // Triton's logging extension: each setting as the one typed field its value has.
    LogSettings: unary(async (req: { settings?: Record<string, { parameter_choice?: 'bool_param' | 'uint32_param' | 'string_param'; bool_param?: boolean; uint32_param?: number; string_param?: string }> }) => {
      const update = Object.fromEntries(Object.entries(req.settings ?? {}).map(([k, v]) => [k, v.parameter_choice ? v[v.parameter_choice] : undefined]));
      const state = applyLogSettings(logState(), update);
      if (state.level !== logState().level) log.warn('log level changed through gRPC LogSettings', { level: state.level });
      setLogState(state);
      const settings = logSettingsOf(state);
      return {
        settings: Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === 'boolean' ? { bool_param: v } : typeof v === 'number' ? { uint32_param: v } : { string_param: v }])),
      };
    }),
    // Triton's system shared memory extension; the regions are the REST API's too.
    SystemSharedMemoryStatus: unary(async (req: { name?: string }) => ({
      regions: Object.fromEntries(listed.status(req.name).map((r) => [r.name, r])),
    })),
    SystemSharedMemoryRegister: unary(async (req: { name: string; key: string; offset: number; byte_size: number }) => {
      regions().register(req.name, req.key, req.offset, req.byte_size);
      return {};
    }),
    SystemSharedMemoryUnregister: unary(async (req: { name?: string }) => {
      listed.unregister(req.name);
      return {};
    }),
    // No CUDA regions, as the REST routes answer (oip.ts).
    CudaSharedMemoryStatus: unary(async (req: { name?: string }) => {
      if (req.name) throw new SharedMemoryNotFoundError(`no CUDA shared memory region "${req.name}" is registered`);
      return { regions: {} };
    }),
    CudaSharedMemoryRegister: unary(async () => {
      regions();
      throw new SharedMemoryError(CUDA_SHM_REFUSED);
    }),
    CudaSharedMemoryUnregister: unary(async () => {
      return {};
    }),
    RepositoryIndex: unary(async (req: { ready?: boolean }) => {
      const index = await scheduler.repositoryIndex();
      return { models: req.ready ? index.filter((m) => m.state === 'READY') : index };
    }),
    RepositoryModelLoad: unary(async (req: { model_name: string; parameters?: Record<string, { string_param?: string; bytes_param?: Buffer }> }) => {
      const params = req.parameters ?? {};
      const files = Object.keys(params).filter((k) => k.startsWith('file:'));
      if (files.length > 0) throw new BadRequestError(`model files in the load request (${files.join(', ')}) are not supported: put the model in the model store`);
      let overrides = {};
      const config = params.config?.string_param;
      if (config !== undefined) {
        try {
          overrides = configOverrides(JSON.parse(config));
        } catch (err) {
          throw new BadRequestError(`parameters.config is not a usable model configuration: ${(err as Error).message}`);
        }
      }
      await scheduler.loadFromRepository(req.model_name, overrides);
      return {};
    }),
    RepositoryModelUnload: unary(async (req: { model_name: string }) => {
      await scheduler.unregisterAll(req.model_name);
      return {};
    }),
  };
}

export { grpcError };
