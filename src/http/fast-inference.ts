// The inference routes that carry nearly all traffic, answered without express. Its app, router and
// response helpers cost the main thread about 0.2 ms and 12 KB of garbage per request (CPU and
// allocation profiles of bench:fairness's classifier at c=1), as much as the whole answer's write.
// Taken here: POST|PUT /predictions/{name}[/{version}], POST /v2/models/{m}[/versions/{v}]/infer and, on
// SageMaker's port, POST /models/{name}/invoke. Only the plain form of each URL is taken; anything else
// (an escaped name, a trailing slash, another case, a token to check, a draining server) goes to
// express, which answers it the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiFamily } from '../errors';
import type { QuiverMetrics } from '../metrics';
import type { ModelScheduler } from '../scheduler/scheduler';
import { RequestLocals, pathOf, recordRequest } from './access-log';
import type { ServerLifecycle } from './app';
import { readBody } from './body';
import { sendError } from './error-handler';
import type { InflightBytes } from './inflight';
import { RequestWithBody, invokeModel } from './invoke';
import { predictionTarget } from './mms-inference';
import { binarySectionStart, inferOip, modelTarget } from './oip';
import type { SystemSharedMemory } from '../oip/shared-memory';

export type FastRoute = { kind: 'predictions'; segments: string[] } | { kind: 'invoke'; name: string } | { kind: 'oip'; segments: string[] };

const PREDICTIONS = '/predictions/';
const OIP_MODELS = '/v2/models/';
const OIP_INFER = '/infer';
const MODELS = '/models/';
const INVOKE = '/invoke';

/** The inference route a request is, in its plain form; undefined sends it to express. */
export function matchFastRoute(method: string | undefined, path: string, sagemaker: boolean): FastRoute | undefined {
  if (method !== 'POST' && method !== 'PUT') return undefined;
  if (path.includes('%') || path.endsWith('/')) return undefined;
  if (path.startsWith(PREDICTIONS)) {
    const segments = path.slice(PREDICTIONS.length).split('/');
    return segments.includes('') ? undefined : { kind: 'predictions', segments };
  }
  if (method === 'POST' && path.startsWith(OIP_MODELS) && path.endsWith(OIP_INFER)) {
    const segments = path.slice(OIP_MODELS.length).split('/');
    return segments.length > 1 && !segments.includes('') ? { kind: 'oip', segments } : undefined;
  }
  if (sagemaker && method === 'POST' && path.startsWith(MODELS) && path.endsWith(INVOKE)) {
    const name = path.slice(MODELS.length, -INVOKE.length);
    return name === '' || name.includes('/') ? undefined : { kind: 'invoke', name };
  }
  return undefined;
}

export interface FastInferenceOptions {
  scheduler: ModelScheduler;
  api: ApiFamily;
  /** The access log's and metrics' name for this port's API. */
  label: string;
  sagemaker: boolean;
  maxRequestSize: number;
  oipMaxRequestSize: number;
  inflight?: InflightBytes;
  metrics?: QuiverMetrics;
  lifecycle?: ServerLifecycle;
  shm?: SystemSharedMemory;
}

/** Answers the request and says true, or says false and leaves it untouched for express. */
export function fastInference(options: FastInferenceOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const read = readBody({ limit: options.maxRequestSize, inflight: options.inflight });
  const readOip = readBody({ limit: options.oipMaxRequestSize, setting: 'oip_max_request_size', inflight: options.inflight, alignedAt: binarySectionStart });
  const { scheduler, lifecycle } = options;
  return (req: RequestWithBody, res) => {
    const path = pathOf(req);
    const route = matchFastRoute(req.method, path, options.sagemaker);
    if (!route || lifecycle?.draining) return false;
    if (lifecycle) {
      lifecycle.inFlight++;
      res.once('close', () => lifecycle.inFlight--);
    }
    const context: RequestLocals = { requestId: '' };
    recordRequest(options.label, options.metrics, req, res, context);
    const fail = (err: unknown) => {
      // As express does with an error after the answer began: the connection goes.
      if (res.headersSent) res.destroy();
      else sendError(res, err, options.api, path);
    };
    (route.kind === 'oip' ? readOip : read)(req, res, (err) => {
      if (err) return fail(err);
      try {
        if (route.kind === 'oip') {
          inferOip(scheduler, modelTarget(route.segments), req, res, options.oipMaxRequestSize, context, options.shm, options.inflight).catch(fail);
          return;
        }
        const target = route.kind === 'invoke' ? { name: route.name } : predictionTarget(scheduler, route.segments);
        invokeModel(scheduler, target.name, target.version, req, res, context).catch(fail);
      } catch (e) {
        fail(e);
      }
    });
    return true;
  };
}
