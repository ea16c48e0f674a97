// The SageMaker multi-model container contract (one port): /ping, the Load/List/Describe/Unload Model
// APIs on /models, POST /models/{name}/invoke, and Quiver's own POST /invocations with a target model.
import { redactedUrl } from '../models/remote-artifact';
import { Router } from 'express';
import { readBody } from './body';
import type { InflightBytes } from './inflight';
import { z } from 'zod';
import { BadRequestError } from '../errors';
import { validateRelativePath } from '../models/model-name';
import { formatIssues } from '../models/model-config';
import type { ModelScheduler } from '../scheduler/scheduler';
import { modelStatusRouter } from './model-status';
import { invokeModel } from './invoke';
import { locals } from './access-log';
import { intParam, stringParam } from './params';
import { pingHandler } from './mms-inference';

export interface SageMakerRouterOptions {
  maxRequestSize: number;
  inflight?: InflightBytes;
  isHealthy: () => boolean;
}

const loadModelBody = z.object({ model_name: z.string().min(1), url: z.string().min(1) }).passthrough();

const TARGET_MODEL = 'x-amzn-sagemaker-target-model';

export function sagemakerRouter(scheduler: ModelScheduler, options: SageMakerRouterOptions): Router {
  const router = Router();
  const raw = readBody({ limit: options.maxRequestSize, inflight: options.inflight });
  const json = readBody({ limit: 64 * 1024, json: 'always' });

  router.get('/ping', pingHandler(options.isHealthy));

  router.post('/models', json, async (req, res) => {
    const parsed = loadModelBody.safeParse(req.body);
    if (!parsed.success) throw new BadRequestError(`load model request needs {"model_name","url"}: ${formatIssues(parsed.error)}`);
    await scheduler.register({ name: parsed.data.model_name, url: parsed.data.url, synchronous: true });
    res.status(200).json({ status: `Model "${parsed.data.model_name}" loaded` });
  });

  router.get('/models', (req, res) => {
    const page = scheduler.listModels(intParam(req, 'page_size', { min: 1, max: 1000 }) ?? 100, stringParam(req, 'next_page_token'));
    res.json({
      models: page.models.map((m) => ({ modelName: m.name, modelUrl: redactedUrl(m.url) })),
      ...(page.nextPageToken !== undefined ? { nextPageToken: page.nextPageToken } : {}),
    });
  });

  router.use(modelStatusRouter(scheduler));

  router.delete('/models/:name', async (req, res) => {
    await scheduler.unregisterAll(req.params.name);
    res.status(200).json({ status: `Model "${req.params.name}" unloaded` });
  });

  router.post('/models/:name/invoke', raw, async (req, res) => {
    await invokeModel(scheduler, req.params.name, undefined, req, res, locals(res));
  });

  router.post('/invocations', raw, async (req, res) => {
    const target = req.get(TARGET_MODEL);
    if (!target) throw new BadRequestError('POST /invocations needs the X-Amzn-SageMaker-Target-Model header');
    const relative = validateRelativePath(target, 'target model');
    await scheduler.ensureLoaded(relative, relative);
    await invokeModel(scheduler, relative, undefined, req, res, locals(res));
  });

  return router;
}
