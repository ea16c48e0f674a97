// Builds the express applications for a serving mode: MMS (inference and management apps) or
// SageMaker (one app with the multi-model contract plus MMS predictions).
import express, { Express, Router } from 'express';
import type { ApiFamily } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import { errorHandler, notFound } from './error-handler';
import { mmsInferenceRouter } from './mms-inference';
import { mmsManagementRouter } from './mms-management';
import { sagemakerRouter } from './sagemaker';

export interface AppOptions {
  maxRequestSize: number;
  isHealthy: () => boolean;
}

function application(api: ApiFamily, ...routers: Router[]): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  for (const router of routers) app.use(router);
  app.use(notFound);
  app.use(errorHandler(api));
  return app;
}

export function createMmsApps(scheduler: ModelScheduler, options: AppOptions): { inference: Express; management: Express } {
  return {
    inference: application('mms', mmsInferenceRouter(scheduler, options)),
    management: application('mms', mmsManagementRouter(scheduler)),
  };
}

export function createSageMakerApp(scheduler: ModelScheduler, options: AppOptions): Express {
  return application('sagemaker', sagemakerRouter(scheduler, options), mmsInferenceRouter(scheduler, options));
}
