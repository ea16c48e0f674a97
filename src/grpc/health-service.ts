// grpc.health.v1.Health: the standard gRPC health check (Kubernetes' grpc probes, grpc_health_probe).
import * as grpc from '@grpc/grpc-js';
import { RouteNotFoundError } from '../errors';
import { unary } from './calls';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export function healthService(services: readonly string[], isHealthy: () => boolean): grpc.UntypedServiceImplementation {
  const known = new Set(['', ...services]);
  const statusOf = (service: string): ServingStatus => (!known.has(service) ? 'SERVICE_UNKNOWN' : isHealthy() ? 'SERVING' : 'NOT_SERVING');
  return {
    Check: unary(async (req: { service: string }) => {
      const status = statusOf(req.service ?? '');
      if (status === 'SERVICE_UNKNOWN') throw new RouteNotFoundError(`unknown service ${JSON.stringify(req.service)}`);
      return { status };
    }),
    // The status now, then each change, until the client goes.
    Watch: (call: grpc.ServerWritableStream<{ service: string }, { status: ServingStatus }>) => {
      let last: ServingStatus | undefined;
      const send = () => {
        const status = statusOf(call.request.service ?? '');
        if (status !== last) call.write({ status });
        last = status;
      };
      send();
      const timer = setInterval(send, 1000);
      timer.unref();
      call.on('cancelled', () => clearInterval(timer));
      call.on('close', () => clearInterval(timer));
    },
  };
}
