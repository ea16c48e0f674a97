// Unary gRPC handlers as async functions: a failure becomes the status the error catalogue gives it.
import * as grpc from '@grpc/grpc-js';
import { QuiverError, grpcStatusOf, toWireError, fromWireError } from '../errors';
import { log } from '../log';

/**
 * ModelMesh names the model a request is for in mm-model-id (ASCII ids) and always in mm-model-id-bin
 * (UTF-8); mm-vmodel-id names the virtual model the client asked for, not what was loaded here.
 */
export function meshModelId(metadata: grpc.Metadata): string | undefined {
  const plain = metadata.get('mm-model-id')[0];
  if (plain !== undefined) return String(plain);
  const binary = metadata.get('mm-model-id-bin')[0];
  return binary !== undefined ? Buffer.from(binary as Buffer).toString('utf8') : undefined;
}

/** The status a failure is sent with; `meshRouted`: the call came through ModelMesh (mm-model-id). */
export function grpcError(err: unknown, meshRouted = false): Partial<grpc.StatusObject> {
  const error = err instanceof QuiverError ? err : undefined;
  if (!error) {
    log.error('unexpected error in a gRPC call', { error: (err as Error)?.stack ?? String(err) });
    return { code: grpc.status.INTERNAL, details: fromWireError(toWireError(err)).message };
  }
  return { code: grpcStatusOf(error, meshRouted), details: error.message };
}

/** A call's deadline as epoch ms; Infinity when the client set none. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) && ms > 0 ? ms : Infinity;
}

export function unary<Req, Res>(handle: (request: Req, metadata: grpc.Metadata, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handle(call.request, call.metadata, call).then(
      (response) => callback(null, response),
      (err: unknown) => callback(grpcError(err, meshModelId(call.metadata) !== undefined)),
    );
  };
}
