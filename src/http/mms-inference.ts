// MMS inference API: GET /ping, POST /predictions/{model}[/{version}], OPTIONS / (API description).
import express, { Router } from 'express';
import type { ModelScheduler } from '../scheduler/scheduler';
import { invokeModel } from './invoke';
import { inferenceApiDescription } from './openapi';

export interface InferenceRouterOptions {
  maxRequestSize: number;
  isHealthy: () => boolean;
}

export function pingHandler(isHealthy: () => boolean): express.RequestHandler {
  return (_req, res) => {
    if (isHealthy()) res.status(200).json({ status: 'Healthy' });
    else res.status(503).json({ status: 'Unhealthy' });
  };
}

export function mmsInferenceRouter(scheduler: ModelScheduler, options: InferenceRouterOptions): Router {
  const router = Router();
  const body = express.raw({ type: () => true, limit: options.maxRequestSize });
  router.get('/ping', pingHandler(options.isHealthy));
  router.options('/', (_req, res) => {
    res.json(inferenceApiDescription());
  });
  router.post('/predictions/:name{/:version}', body, async (req, res) => {
    await invokeModel(scheduler, req.params.name, req.params.version, req, res);
  });
  return router;
}
