// Unary gRPC handlers as async functions: a failure becomes the status the error catalogue gives it.
import * as grpc from '@grpc/grpc-js';
import { GrpcRoute, QuiverError, grpcStatusOf, toWireError, fromWireError } from '../errors';
import { log } from '../log';

/**
 * ModelMesh names the model a request is for in mm-model-id (ASCII ids) and always in mm-model-id-bin
 * (UTF-8); it strips every other mm-* header (mm-vmodel-id included) before forwarding.
 */
export function meshModelId(metadata: grpc.Metadata): string | undefined {
  const plain = metadata.get('mm-model-id')[0];
  if (plain !== undefined) return String(plain);
  const binary = metadata.get('mm-model-id-bin')[0];
  return binary !== undefined ? Buffer.from(binary as Buffer).toString('utf8') : undefined;
}

/** Whether a call came through ModelMesh (it names the model in mm-model-id). */
export function routeOf(metadata: grpc.Metadata): GrpcRoute {
  return meshModelId(metadata) !== undefined ? 'mesh' : 'direct';
}

/** The status a failure is sent with. */
export function grpcError(err: unknown, route: GrpcRoute = 'direct'): Partial<grpc.StatusObject> {
  const error = err instanceof QuiverError ? err : undefined;
  if (!error) {
    log.error('unexpected error in a gRPC call', { error: (err as Error)?.stack ?? String(err) });
    return { code: grpc.status.INTERNAL, details: fromWireError(toWireError(err)).message };
  }
  return { code: grpcStatusOf(error, route), details: error.message };
}

/** A call's deadline as epoch ms; Infinity when the client set none. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) && ms > 0 ? ms : Infinity;
}

/** `route`: fixed by the method (ModelMesh's loadModel), else read from each call's metadata. */
export function unary<Req, Res>(handle: (request: Req, metadata: grpc.Metadata, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>, route?: GrpcRoute): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handle(call.request, call.metadata, call).then(
      (response) => callback(null, response),
      (err: unknown) => callback(grpcError(err, route ?? routeOf(call.metadata))),
    );
  };
}
