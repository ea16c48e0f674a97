// Unary gRPC handlers as async functions: a failure becomes the status the error catalogue gives it.
import * as grpc from '@grpc/grpc-js';
import { QuiverError, grpcStatusOf, toWireError, fromWireError } from '../errors';
import { log } from '../log';

export function grpcError(err: unknown): Partial<grpc.StatusObject> {
  const error = err instanceof QuiverError ? err : undefined;
  if (!error) {
    log.error('unexpected error in a gRPC call', { error: (err as Error)?.stack ?? String(err) });
    return { code: grpc.status.INTERNAL, details: fromWireError(toWireError(err)).message };
  }
  return { code: grpcStatusOf(error), details: error.message };
}

export function unary<Req, Res>(handle: (request: Req, metadata: grpc.Metadata) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handle(call.request, call.metadata).then(
      (response) => callback(null, response),
      (err: unknown) => callback(grpcError(err)),
    );
  };
}
