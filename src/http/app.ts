// Builds the express applications for a serving mode: MMS (inference and management apps) or
// SageMaker (one app with the multi-model contract plus MMS predictions).
import express, { Express, Router } from 'express';
import type { ApiFamily } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import type { QuiverMetrics } from '../metrics';
import { accessLog } from './access-log';
import { errorHandler, notFound } from './error-handler';
import { metricsRouter } from './metrics';
import { mmsInferenceRouter } from './mms-inference';
import { mmsManagementRouter } from './mms-management';
import { sagemakerRouter } from './sagemaker';

export interface AppOptions {
  maxRequestSize: number;
  isHealthy: () => boolean;
  metrics: QuiverMetrics;
}

function application(api: ApiFamily, label: string, metrics: QuiverMetrics, ...routers: Router[]): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(accessLog(label, metrics));
  for (const router of routers) app.use(router);
  app.use(notFound);
  app.use(errorHandler(api));
  return app;
}

export function createMmsApps(scheduler: ModelScheduler, options: AppOptions): { inference: Express; management: Express } {
  return {
    inference: application('mms', 'inference', options.metrics, mmsInferenceRouter(scheduler, options)),
    management: application('mms', 'management', options.metrics, mmsManagementRouter(scheduler), metricsRouter(options.metrics)),
  };
}

export function createSageMakerApp(scheduler: ModelScheduler, options: AppOptions): Express {
  return application('sagemaker', 'sagemaker', options.metrics, sagemakerRouter(scheduler, options), mmsInferenceRouter(scheduler, options), metricsRouter(options.metrics));
}
