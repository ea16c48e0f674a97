// The one catalogue of failures: each kind has a stable type name and an HTTP status.
// Nothing else in the code base knows which status an error maps to.

/** oip: the Open Inference Protocol's REST routes (/v2), whose errors are {"error": message}. */
export type ApiFamily = 'mms' | 'sagemaker' | 'oip';

interface ErrorKind {
  readonly type: string;
  readonly status: number;
  /** Seconds a client should wait before trying again (the Retry-After header). */
  readonly retryAfterS?: number;
  // SageMaker asks for 507 when a model does not fit, so that it unloads others and retries.
  readonly sagemakerStatus?: number;
}

const KINDS = {
  BadRequest: { type: 'BadRequestException', status: 400 },
  InvalidModelName: { type: 'InvalidModelNameException', status: 400 },
  InvalidInput: { type: 'InvalidInputException', status: 400 },
  InvalidImage: { type: 'InvalidImageException', status: 400 },
  ImageTooLarge: { type: 'ImageTooLargeException', status: 400 },
  InvalidModelArchive: { type: 'InvalidModelArchiveException', status: 400 },
  HandlersRefused: { type: 'HandlerNotAllowedException', status: 400 },
  UnsafePath: { type: 'UnsafePathException', status: 400 },
  ModelNotFound: { type: 'ModelNotFoundException', status: 404 },
  ModelVersionNotFound: { type: 'ModelVersionNotFoundException', status: 404 },
  // TorchServe's: a version change the registry refuses (removing the default while others remain).
  InvalidModelVersion: { type: 'InvalidModelVersionException', status: 400 },
  ArtifactNotFound: { type: 'ArtifactNotFoundException', status: 404 },
  ArtifactAccessDenied: { type: 'ArtifactAccessDeniedException', status: 403 },
  // TorchServe answers 404 for a URL that allowed_urls does not list.
  UrlNotAllowed: { type: 'UrlNotAllowedException', status: 404 },
  // MMS and TorchServe answer 400 when the server at a model URL refuses it (403, 404...).
  ArtifactRefused: { type: 'DownloadArchiveException', status: 400 },
  TokenAuthorization: { type: 'TokenAuthorizationException', status: 401 },
  RouteNotFound: { type: 'ResourceNotFoundException', status: 404 },
  MethodNotAllowed: { type: 'MethodNotAllowedException', status: 405 },
  ModelAlreadyExists: { type: 'ConflictStatusException', status: 409 },
  PayloadTooLarge: { type: 'RequestEntityTooLargeException', status: 413 },
  UnsupportedMediaType: { type: 'UnsupportedMediaTypeException', status: 415 },
  QueueFull: { type: 'ServiceUnavailableException', status: 503, retryAfterS: 1 },
  NoWorkerAvailable: { type: 'ServiceUnavailableException', status: 503, retryAfterS: 1 },
  ServerDraining: { type: 'ServiceUnavailableException', status: 503, retryAfterS: 5 },
  // Listening (gRPC binds first, so that ModelMesh's puller can connect) but still warming up.
  ServerStarting: { type: 'ServiceUnavailableException', status: 503, retryAfterS: 1 },
  TooManyConnections: { type: 'ServiceUnavailableException', status: 503, retryAfterS: 1 },
  InsufficientMemory: { type: 'InsufficientMemoryException', status: 503, sagemakerStatus: 507, retryAfterS: 1 },
  InferenceTimeout: { type: 'InferenceTimeoutException', status: 504 },
  // The request's own limit (Triton's `timeout` parameter) passed before its run began: it was not run.
  // 503 / UNAVAILABLE, as Triton's scheduler rejects such a request ("Request timeout expired").
  RequestTimeout: { type: 'InferenceTimeoutException', status: 503 },
  // nginx's 499: the client went away before its answer; nobody reads it, the logs and metrics do.
  ClientDisconnected: { type: 'ClientClosedRequestException', status: 499 },
  // The artifact store failed us (connection lost, truncated or corrupt download): a bad gateway.
  ArtifactDownloadFailed: { type: 'ArtifactDownloadException', status: 502 },
  DownloadCacheFull: { type: 'InsufficientStorageException', status: 507 },
  ModelLoadFailed: { type: 'ModelLoadException', status: 500 },
  InferenceFailed: { type: 'InferenceException', status: 500 },
  WorkerFailed: { type: 'WorkerException', status: 500 },
  Internal: { type: 'InternalServerException', status: 500 },
  InvalidConfig: { type: 'InvalidConfigException', status: 500 },
  SnapshotWrite: { type: 'SnapshotWriteException', status: 500 },
  OutputExists: { type: 'OutputExistsException', status: 409 },
  // Triton's system shared memory: a region that cannot be used (bad key, out of bounds, too small).
  SharedMemory: { type: 'SharedMemoryException', status: 400 },
  SharedMemoryNotFound: { type: 'SharedMemoryNotFoundException', status: 404 },
  SharedMemoryExists: { type: 'SharedMemoryExistsException', status: 409 },
  // allow_client_shm is off: clients may not make the server open files in /dev/shm.
  SharedMemoryDisabled: { type: 'SharedMemoryDisabledException', status: 403 },
} as const satisfies Record<string, ErrorKind>;

export type ErrorKindName = keyof typeof KINDS;

export abstract class QuiverError extends Error {
  abstract readonly kind: ErrorKindName;

  get type(): string {
    return KINDS[this.kind].type;
  }
}

function defineError(kind: ErrorKindName) {
  return class extends QuiverError {
    readonly kind = kind;
    constructor(message: string) {
      super(message);
      this.name = `${kind}Error`;
    }
  };
}

export class BadRequestError extends defineError('BadRequest') {}
export class InvalidModelNameError extends defineError('InvalidModelName') {}
export class InvalidInputError extends defineError('InvalidInput') {}
export class InvalidImageError extends defineError('InvalidImage') {}
export class ImageTooLargeError extends defineError('ImageTooLarge') {}
export class InvalidModelArchiveError extends defineError('InvalidModelArchive') {}
export class HandlersRefusedError extends defineError('HandlersRefused') {}
export class UnsafePathError extends defineError('UnsafePath') {}
export class ModelNotFoundError extends defineError('ModelNotFound') {}
export class ModelVersionNotFoundError extends defineError('ModelVersionNotFound') {}
export class InvalidModelVersionError extends defineError('InvalidModelVersion') {}
export class ArtifactNotFoundError extends defineError('ArtifactNotFound') {}
export class ArtifactAccessDeniedError extends defineError('ArtifactAccessDenied') {}
export class UrlNotAllowedError extends defineError('UrlNotAllowed') {}
export class ArtifactRefusedError extends defineError('ArtifactRefused') {}
export class ArtifactDownloadFailedError extends defineError('ArtifactDownloadFailed') {}
export class DownloadCacheFullError extends defineError('DownloadCacheFull') {}
export class TokenAuthorizationError extends defineError('TokenAuthorization') {}
export class RouteNotFoundError extends defineError('RouteNotFound') {}
export class MethodNotAllowedError extends defineError('MethodNotAllowed') {}
export class ModelAlreadyExistsError extends defineError('ModelAlreadyExists') {}
export class PayloadTooLargeError extends defineError('PayloadTooLarge') {}
export class UnsupportedMediaTypeError extends defineError('UnsupportedMediaType') {}
export class QueueFullError extends defineError('QueueFull') {}
export class NoWorkerAvailableError extends defineError('NoWorkerAvailable') {}
export class ServerDrainingError extends defineError('ServerDraining') {}
export class ServerStartingError extends defineError('ServerStarting') {}
export class TooManyConnectionsError extends defineError('TooManyConnections') {}
export class InsufficientMemoryError extends defineError('InsufficientMemory') {}
export class InferenceTimeoutError extends defineError('InferenceTimeout') {}
export class RequestTimeoutError extends defineError('RequestTimeout') {}
export class ClientDisconnectedError extends defineError('ClientDisconnected') {}
export class ModelLoadFailedError extends defineError('ModelLoadFailed') {}
export class InferenceFailedError extends defineError('InferenceFailed') {}
export class WorkerFailedError extends defineError('WorkerFailed') {}
export class InternalError extends defineError('Internal') {}
export class InvalidConfigError extends defineError('InvalidConfig') {}
export class OutputExistsError extends defineError('OutputExists') {}
/** The registry snapshot could not be written: the change that needed it was not made. */
export class SnapshotWriteError extends defineError('SnapshotWrite') {}
export class SharedMemoryError extends defineError('SharedMemory') {}
export class SharedMemoryNotFoundError extends defineError('SharedMemoryNotFound') {}
export class SharedMemoryExistsError extends defineError('SharedMemoryExists') {}
export class SharedMemoryDisabledError extends defineError('SharedMemoryDisabled') {}

const CONSTRUCTORS: Record<ErrorKindName, new (message: string) => QuiverError> = {
  BadRequest: BadRequestError,
  InvalidModelName: InvalidModelNameError,
  InvalidInput: InvalidInputError,
  InvalidImage: InvalidImageError,
  ImageTooLarge: ImageTooLargeError,
  InvalidModelArchive: InvalidModelArchiveError,
  HandlersRefused: HandlersRefusedError,
  UnsafePath: UnsafePathError,
  ModelNotFound: ModelNotFoundError,
  ModelVersionNotFound: ModelVersionNotFoundError,
  InvalidModelVersion: InvalidModelVersionError,
  ArtifactNotFound: ArtifactNotFoundError,
  ArtifactAccessDenied: ArtifactAccessDeniedError,
  UrlNotAllowed: UrlNotAllowedError,
  ArtifactRefused: ArtifactRefusedError,
  ArtifactDownloadFailed: ArtifactDownloadFailedError,
  DownloadCacheFull: DownloadCacheFullError,
  TokenAuthorization: TokenAuthorizationError,
  RouteNotFound: RouteNotFoundError,
  MethodNotAllowed: MethodNotAllowedError,
  ModelAlreadyExists: ModelAlreadyExistsError,
  PayloadTooLarge: PayloadTooLargeError,
  UnsupportedMediaType: UnsupportedMediaTypeError,
  QueueFull: QueueFullError,
  NoWorkerAvailable: NoWorkerAvailableError,
  ServerDraining: ServerDrainingError,
  ServerStarting: ServerStartingError,
  TooManyConnections: TooManyConnectionsError,
  InsufficientMemory: InsufficientMemoryError,
  InferenceTimeout: InferenceTimeoutError,
  RequestTimeout: RequestTimeoutError,
  ClientDisconnected: ClientDisconnectedError,
  ModelLoadFailed: ModelLoadFailedError,
  InferenceFailed: InferenceFailedError,
  WorkerFailed: WorkerFailedError,
  Internal: InternalError,
  InvalidConfig: InvalidConfigError,
  OutputExists: OutputExistsError,
  SnapshotWrite: SnapshotWriteError,
  SharedMemory: SharedMemoryError,
  SharedMemoryNotFound: SharedMemoryNotFoundError,
  SharedMemoryExists: SharedMemoryExistsError,
  SharedMemoryDisabled: SharedMemoryDisabledError,
};

/** An error as it crosses a thread boundary: plain data. */
export interface WireError {
  kind: ErrorKindName;
  message: string;
}

export function toWireError(err: unknown, fallback: ErrorKindName = 'Internal'): WireError {
  if (err instanceof QuiverError) return { kind: err.kind, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: fallback, message };
}

export function fromWireError(wire: WireError): QuiverError {
  const Ctor = CONSTRUCTORS[wire.kind] ?? InternalError;
  return new Ctor(wire.message);
}

export function httpStatusOf(err: QuiverError, api: ApiFamily): number {
  const kind: ErrorKind = KINDS[err.kind];
  return api === 'sagemaker' && kind.sagemakerStatus !== undefined ? kind.sagemakerStatus : kind.status;
}

export function retryAfterOf(err: QuiverError): number | undefined {
  return (KINDS[err.kind] as ErrorKind).retryAfterS;
}

export type ErrorBody = { code: number; type: string; message: string } | { error: string };

/** The JSON body every error answer carries: MMS's (`code` repeats the status) or OIP's {"error"}. */
export function errorBody(err: QuiverError, api: ApiFamily): ErrorBody {
  if (api === 'oip') return { error: err.message };
  return { code: httpStatusOf(err, api), type: err.type, message: err.message };
}

/** gRPC status codes (grpc/status.h), the ones failures map to. */
export const GrpcCode = {
  CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16,
} as const;

const GRPC_BY_HTTP: Record<number, number> = {
  400: GrpcCode.INVALID_ARGUMENT, 401: GrpcCode.UNAUTHENTICATED, 403: GrpcCode.PERMISSION_DENIED, 404: GrpcCode.NOT_FOUND,
  405: GrpcCode.UNIMPLEMENTED, 409: GrpcCode.ALREADY_EXISTS, 413: GrpcCode.RESOURCE_EXHAUSTED, 415: GrpcCode.INVALID_ARGUMENT, 499: GrpcCode.CANCELLED,
  502: GrpcCode.UNAVAILABLE, 503: GrpcCode.UNAVAILABLE, 504: GrpcCode.DEADLINE_EXCEEDED, 507: GrpcCode.RESOURCE_EXHAUSTED,
};

/** Refusals before any memory was taken: no room in the budget or the download cache, or no access to the artifact. */
const LOADS_NOT_ATTEMPTED = new Set<ErrorKindName>(['InsufficientMemory', 'DownloadCacheFull', 'ArtifactAccessDenied']);

/** Who a gRPC failure goes to: a client, ModelMesh forwarding a request (`mesh`), or ModelMesh's loadModel. */
export type GrpcRoute = 'direct' | 'mesh' | 'mesh-load';

/**
 * The gRPC status of a failure: its HTTP status's counterpart; a model that does not fit is
 * RESOURCE_EXHAUSTED. ModelMesh sends a request to another copy of the model on RESOURCE_EXHAUSTED
 * alone, so a busy or draining server says that to it where others get UNAVAILABLE. A load the memory
 * budget refused was never attempted: model-runtime.proto asks for FAILED_PRECONDITION then, which tells
 * ModelMesh that no memory stays used.
 */
export function grpcStatusOf(err: QuiverError, route: GrpcRoute = 'direct'): number {
  if (route === 'mesh-load' && LOADS_NOT_ATTEMPTED.has(err.kind)) return GrpcCode.FAILED_PRECONDITION;
  if (err.kind === 'InsufficientMemory') return GrpcCode.RESOURCE_EXHAUSTED;
  if (route === 'mesh' && KINDS[err.kind].status === 503) return GrpcCode.RESOURCE_EXHAUSTED;
  return GRPC_BY_HTTP[KINDS[err.kind].status] ?? GrpcCode.INTERNAL;
}
