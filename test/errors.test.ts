import {
  ClientDisconnectedError, DownloadCacheFullError, GrpcCode, InsufficientMemoryError, InvalidInputError, ModelNotFoundError, QueueFullError, QuiverError, RequestTimeoutError,
  errorBody, fromWireError, grpcStatusOf, httpStatusOf, toWireError,
} from '../src/errors';

describe('error catalogue', () => {
  test('maps each kind to its status and a JSON body naming the type', () => {
    const err = new ModelNotFoundError('model "x" is not registered');
    expect(httpStatusOf(err, 'mms')).toBe(404);
    expect(errorBody(err, 'mms')).toEqual({ code: 404, type: 'ModelNotFoundException', message: 'model "x" is not registered' });
  });

  test('insufficient memory is 507 for SageMaker (so it unloads and retries) and 503 for MMS', () => {
    const err = new InsufficientMemoryError('no room');
    expect(httpStatusOf(err, 'sagemaker')).toBe(507);
    expect(httpStatusOf(err, 'mms')).toBe(503);
  });

  test('errors keep their kind across a thread boundary', () => {
    const back = fromWireError(toWireError(new InvalidInputError('bad shape')));
    expect(back).toBeInstanceOf(InvalidInputError);
    expect(back.message).toBe('bad shape');
  });

  test('unknown errors cross as the fallback kind', () => {
    const back = fromWireError(toWireError(new Error('boom'), 'InferenceFailed'));
    expect(back).toBeInstanceOf(QuiverError);
    expect(back.kind).toBe('InferenceFailed');
    expect(httpStatusOf(back, 'mms')).toBe(500);
  });

  test('gRPC codes follow who hears them: a client, ModelMesh forwarding a request, or ModelMesh loading', () => {
    const noRoom = new InsufficientMemoryError('no room');
    expect(grpcStatusOf(noRoom)).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    // model-runtime.proto: a load not attempted is FAILED_PRECONDITION (nothing stays allocated).
    expect(grpcStatusOf(noRoom, 'mesh-load')).toBe(GrpcCode.FAILED_PRECONDITION);
    expect(grpcStatusOf(new DownloadCacheFullError('cache full'), 'mesh-load')).toBe(GrpcCode.FAILED_PRECONDITION);
    expect(grpcStatusOf(new DownloadCacheFullError('cache full'))).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    // ModelMesh tries another copy on RESOURCE_EXHAUSTED alone; a client retries on UNAVAILABLE.
    expect(grpcStatusOf(new QueueFullError('full'))).toBe(GrpcCode.UNAVAILABLE);
    expect(grpcStatusOf(new QueueFullError('full'), 'mesh')).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    // That retry is for forwarded requests: a loadModel that meets a busy or starting server hears UNAVAILABLE.
    expect(grpcStatusOf(new QueueFullError('full'), 'mesh-load')).toBe(GrpcCode.UNAVAILABLE);
    // Triton answers a request whose own timeout passed in the queue UNAVAILABLE, over HTTP 503.
    expect(grpcStatusOf(new RequestTimeoutError('Request timeout expired'))).toBe(GrpcCode.UNAVAILABLE);
    expect(httpStatusOf(new RequestTimeoutError('Request timeout expired'), 'oip')).toBe(503);
    expect(grpcStatusOf(new ClientDisconnectedError('cancelled'))).toBe(GrpcCode.CANCELLED);
    expect(grpcStatusOf(new ModelNotFoundError('x'), 'mesh-load')).toBe(GrpcCode.NOT_FOUND);
  });
});
