// MMS management API: register, scale, describe, list and unregister models.
import { Router } from 'express';
import { BadRequestError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import { modelStatusRouter } from './model-status';
import { managementApiDescription } from './openapi';
import { boolParam, intParam, stringParam } from './params';

export function mmsManagementRouter(scheduler: ModelScheduler): Router {
  const router = Router();

  router.options('/', (_req, res) => {
    res.json(managementApiDescription());
  });

  router.post('/models', async (req, res) => {
    const url = stringParam(req, 'url');
    if (!url) throw new BadRequestError('query parameter url is required');
    const synchronous = boolParam(req, 'synchronous') ?? true;
    const record = await scheduler.register({
      url,
      name: stringParam(req, 'model_name') || undefined,
      initialWorkers: intParam(req, 'initial_workers', { min: 0, max: 1024 }),
      batchSize: intParam(req, 'batch_size', { min: 1, max: 4096 }),
      maxBatchDelayMs: intParam(req, 'max_batch_delay', { min: 0, max: 600_000 }),
      responseTimeoutS: intParam(req, 'response_timeout', { min: 1, max: 86_400 }),
      synchronous,
    });
    if (synchronous) res.status(200).json({ status: `Model "${record.name}" registered` });
    else res.status(202).json({ status: `Model "${record.name}" registered; workers are starting` });
  });

  router.put('/models/:name', async (req, res) => {
    const minWorkers = intParam(req, 'min_worker', { min: 0, max: 1024 }) ?? 1;
    const maxWorkers = intParam(req, 'max_worker', { min: 0, max: 1024 }) ?? minWorkers;
    const synchronous = boolParam(req, 'synchronous') ?? false;
    // A bad name or range fails here, also when the scaling itself runs in the background.
    scheduler.registry.get(req.params.name);
    if (maxWorkers < minWorkers) throw new BadRequestError(`max_worker (${maxWorkers}) must be at least min_worker (${minWorkers})`);
    const scaling = scheduler.scale(req.params.name, minWorkers, maxWorkers);
    if (synchronous) {
      await scaling;
      res.status(200).json({ status: 'Workers scaled' });
    } else {
      // MMS answers 202 and scales in the background.
      scaling.catch(() => undefined);
      res.status(202).json({ status: 'Processing worker updates...' });
    }
  });

  router.get('/models', (req, res) => {
    const page = scheduler.registry.page(intParam(req, 'limit', { min: 1, max: 1000 }) ?? 100, stringParam(req, 'next_page_token'));
    res.json({
      ...(page.nextPageToken !== undefined ? { nextPageToken: page.nextPageToken } : {}),
      models: page.models.map((m) => ({ modelName: m.name, modelUrl: m.url })),
    });
  });

  router.use(modelStatusRouter(scheduler));

  router.delete('/models/:name', async (req, res) => {
    await scheduler.unregister(req.params.name);
    res.json({ status: `Model "${req.params.name}" unregistered` });
  });

  return router;
}
