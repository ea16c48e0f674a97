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

/** A call's deadline as epoch ms; Infinity when the client set none. */
export function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) && ms > 0 ? ms : Infinity;
}

export function unary<Req, Res>(handle: (request: Req, metadata: grpc.Metadata, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handle(call.request, call.metadata, call).then(
      (response) => callback(null, response),
      (err: unknown) => callback(grpcError(err)),
    );
  };
}
