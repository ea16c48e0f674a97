// MMS inference API: GET /ping, POST /predictions/{model}[/{version}], OPTIONS / (API description).
import express, { Router } from 'express';
import { readBody } from './body';
import type { InflightBytes } from './inflight';
import type { ModelScheduler } from '../scheduler/scheduler';
import { ModelNotFoundError } from '../errors';
import { invokeModel } from './invoke';
import { locals } from './access-log';
import { inferenceApiDescription } from './openapi';

export interface InferenceRouterOptions {
  maxRequestSize: number;
  inflight?: InflightBytes;
  isHealthy: () => boolean;
}

export function pingHandler(isHealthy: () => boolean): express.RequestHandler {
  return (_req, res) => {
    if (isHealthy()) res.status(200).json({ status: 'Healthy' });
    else res.status(503).json({ status: 'Unhealthy' });
  };
}

/**
 * `/predictions/{name}[/{version}]`. A name that holds '/' (a SageMaker target model registered through
 * /invocations) is matched whole first, so every registered name is reachable by its URL.
 */
export function predictionTarget(scheduler: ModelScheduler, given: string[]): { name: string; version?: string } {
  // "/predictions/x/" is "/predictions/x".
  const segments = given.length > 1 && given[given.length - 1] === '' ? given.slice(0, -1) : given;
  const whole = segments.join('/');
  if (segments.length === 1 || scheduler.hasModel(whole)) return { name: whole };
  if (segments.length === 2) return { name: segments[0], version: segments[1] };
  throw new ModelNotFoundError(`model "${whole}" is not registered`);
}

export function mmsInferenceRouter(scheduler: ModelScheduler, options: InferenceRouterOptions): Router {
  const router = Router();
  const body = readBody({ limit: options.maxRequestSize, inflight: options.inflight });
  router.get('/ping', pingHandler(options.isHealthy));
  router.options('/', (_req, res) => {
    res.json(inferenceApiDescription());
  });
  // MMS takes predictions whatever the method: its docs send files with `curl -T` (a PUT).
  for (const method of ['post', 'put', 'get'] as const) {
    router[method]('/predictions/*segments', body, async (req, res) => {
      const { name, version } = predictionTarget(scheduler, (req.params as { segments: string[] }).segments);
      await invokeModel(scheduler, name, version, req, res, locals(res));
    });
  }
  return router;
}
