// Builds the express applications for a serving mode: MMS (inference and management apps) or
// SageMaker (one app with the multi-model contract plus MMS predictions).
import express, { Express, RequestHandler, Router } from 'express';
import { ApiFamily, ServerDrainingError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import type { QuiverMetrics } from '../metrics';
import { accessLog } from './access-log';
import { errorHandler, notFound } from './error-handler';
import { metricsRouter } from './metrics';
import { mmsInferenceRouter } from './mms-inference';
import { mmsManagementRouter } from './mms-management';
import { oipRouter } from './oip';
import { sagemakerRouter } from './sagemaker';
import { requireToken } from './token-auth';
import type { InflightBytes } from './inflight';

/** Shared by the apps of one server: whether it is shutting down, and requests being answered. */
export interface ServerLifecycle {
  draining: boolean;
  inFlight: number;
}

export interface AppOptions {
  maxRequestSize: number;
  /** Shared by every app of the server: max_inflight_bytes holds across ports. */
  inflight?: InflightBytes;
  isHealthy: () => boolean;
  metrics: QuiverMetrics;
  lifecycle?: ServerLifecycle;
  /** The bearer key each API needs, where token authorization is on for it. */
  tokens?: { inference?: string; management?: string };
}

/** Counts requests in flight; while draining, answers all but /ping with 503 and closes the connection. */
function drainGate(lifecycle: ServerLifecycle | undefined): RequestHandler {
  return (req, res, next) => {
    if (!lifecycle) return next();
    lifecycle.inFlight++;
    res.on('close', () => lifecycle.inFlight--);
    if (lifecycle.draining && req.path !== '/ping') {
      res.set('Connection', 'close');
      return next(new ServerDrainingError('the server is shutting down'));
    }
    next();
  };
}

function application(api: ApiFamily, label: string, options: AppOptions, token: { key?: string; api: string }, ...routers: Router[]): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(accessLog(label, options.metrics));
  if (token.key !== undefined) app.use(requireToken(token.key, token.api));
  app.use(drainGate(options.lifecycle));
  for (const router of routers) app.use(router);
  app.use(notFound);
  app.use(errorHandler(api));
  return app;
}

export function createMmsApps(scheduler: ModelScheduler, options: AppOptions): { inference: Express; management: Express } {
  return {
    inference: application('mms', 'inference', options, { key: options.tokens?.inference, api: 'inference' }, mmsInferenceRouter(scheduler, options), oipRouter(scheduler, options)),
    management: application('mms', 'management', options, { key: options.tokens?.management, api: 'management' }, mmsManagementRouter(scheduler), metricsRouter(options.metrics)),
  };
}

export function createSageMakerApp(scheduler: ModelScheduler, options: AppOptions): Express {
  return application('sagemaker', 'sagemaker', options, { key: options.tokens?.inference, api: 'inference' }, sagemakerRouter(scheduler, options), mmsInferenceRouter(scheduler, options), oipRouter(scheduler, options), metricsRouter(options.metrics));
}
