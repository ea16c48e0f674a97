// Builds the express applications for a serving mode: MMS (inference and management apps) or
// SageMaker (one app with the multi-model contract plus MMS predictions).
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { RequestHandler, Router } from 'express';
import { ApiFamily, ServerDrainingError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import type { QuiverMetrics } from '../metrics';
import { accessLog } from './access-log';
import { errorHandler, notFound } from './error-handler';
import { fastInference } from './fast-inference';
import { metricsRouter } from './metrics';
import { mmsInferenceRouter } from './mms-inference';
import { mmsManagementRouter } from './mms-management';
import { oipRouter } from './oip';
import { sagemakerRouter } from './sagemaker';
import { requireToken } from './token-auth';
import type { InflightBytes } from './inflight';
import type { SystemSharedMemory } from '../oip/shared-memory';

/** Shared by the apps of one server: whether it is shutting down, and requests being answered. */
export interface ServerLifecycle {
  draining: boolean;
  inFlight: number;
}

export interface AppOptions {
  maxRequestSize: number;
  /** The /v2 routes' limit (Triton's, larger than TorchServe's). */
  oipMaxRequestSize: number;
  /** Shared by every app of the server: max_inflight_bytes holds across ports. */
  inflight?: InflightBytes;
  isHealthy: () => boolean;
  metrics: QuiverMetrics;
  lifecycle?: ServerLifecycle;
  /**
   * The bearer key each API needs, where token authorization is on for it; `repository`: the key the
   * /v2 repository routes on an inference port need (the management key) when that port checks tokens.
   */
  tokens?: { inference?: string; management?: string; repository?: string };
  /** Client shared memory (Triton's extension), where allow_client_shm is on. */
  shm?: SystemSharedMemory;
}

/** Health checks answer for themselves while draining: /ping 503, OIP's ready 400 (its spec's false). */
const HEALTH_PATHS = new Set(['/ping', '/v2/health/live', '/v2/health/ready']);

/** Counts requests in flight; while draining, answers all but the health checks with 503 and closes the connection. */
export function drainGate(lifecycle: ServerLifecycle | undefined): RequestHandler {
  return (req, res, next) => {
    if (!lifecycle) return next();
    lifecycle.inFlight++;
    res.on('close', () => lifecycle.inFlight--);
    if (lifecycle.draining && !HEALTH_PATHS.has(req.path)) {
      res.set('Connection', 'close');
      return next(new ServerDrainingError('the server is shutting down'));
    }
    next();
  };
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

interface AppShape {
  api: ApiFamily;
  label: string;
  token: { key?: string; api: string; repositoryKey?: string };
  /** Which inference routes the port answers on the fast path (fast-inference.ts), if any. */
  fast?: 'mms' | 'sagemaker';
}

function application(shape: AppShape, options: AppOptions, scheduler: ModelScheduler, ...routers: Router[]): RequestListener {
  const { api, label, token } = shape;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(accessLog(label, options.metrics));
  if (token.key !== undefined) app.use(requireToken(token.key, token.api, token.repositoryKey));
  app.use(drainGate(options.lifecycle));
  for (const router of routers) app.use(router);
  app.use(notFound);
  app.use(errorHandler(api));
  // A port that checks tokens keeps every request in express, behind requireToken.
  if (!shape.fast || token.key !== undefined) return app;
  const fast = fastInference({
    scheduler, api, label, sagemaker: shape.fast === 'sagemaker', maxRequestSize: options.maxRequestSize, oipMaxRequestSize: options.oipMaxRequestSize,
    inflight: options.inflight, metrics: options.metrics,
    lifecycle: options.lifecycle, shm: options.shm,
  });
  return (req, res) => {
    if (!fast(req, res)) app(req, res);
  };
}

export function createMmsApps(scheduler: ModelScheduler, options: AppOptions): { inference: RequestListener; management: RequestListener } {
  const inference = { key: options.tokens?.inference, api: 'inference', repositoryKey: options.tokens?.repository };
  const management = { key: options.tokens?.management, api: 'management' };
  return {
    inference: application({ api: 'mms', label: 'inference', token: inference, fast: 'mms' }, options, scheduler, mmsInferenceRouter(scheduler, options), oipRouter(scheduler, { ...options, maxRequestSize: options.oipMaxRequestSize })),
    management: application({ api: 'mms', label: 'management', token: management }, options, scheduler, mmsManagementRouter(scheduler), metricsRouter(options.metrics)),
  };
}

export function createSageMakerApp(scheduler: ModelScheduler, options: AppOptions): RequestListener {
  const token = { key: options.tokens?.inference, api: 'inference', repositoryKey: options.tokens?.repository };
  return application({ api: 'sagemaker', label: 'sagemaker', token, fast: 'sagemaker' }, options, scheduler,
    sagemakerRouter(scheduler, options), mmsInferenceRouter(scheduler, options), oipRouter(scheduler, { ...options, maxRequestSize: options.oipMaxRequestSize }), metricsRouter(options.metrics));
}
