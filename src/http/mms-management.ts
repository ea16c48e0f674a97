// MMS management API: register, scale, describe, list and unregister models; TorchServe's versions.
import { redactedUrl } from '../models/remote-artifact';
import { Request, Response, Router } from 'express';
import { readBody } from './body';
import { log } from '../log';
import { ArtifactNotFoundError, BadRequestError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import { modelStatusRouter } from './model-status';
import { managementApiDescription } from './openapi';
import { boolParam, intParam, registrationParams, stringParam } from './params';
import { DEVICE_REQUESTS } from '../scheduler/devices';

/** MMS's runtime values and Quiver's own; the model itself always runs on onnxruntime. */
const RUNTIMES = ['onnx', 'onnxruntime', 'node', 'python', 'python2', 'python3'];

export function mmsManagementRouter(scheduler: ModelScheduler): Router {
  const router = Router();

  router.options('/', (_req, res) => {
    res.json(managementApiDescription());
  });

  // MMS reads the registration from the query, or from a JSON body with the same keys.
  router.post('/models', readBody({ limit: 64 * 1024, json: 'when-declared' }), async (req, res) => {
    const params = registrationParams(req);
    const url = params.string('url');
    if (url === undefined) throw new BadRequestError('Parameter url is required: POST /models?url=<archive or folder>');
    if (url === '') throw new ArtifactNotFoundError('model url is empty: no artifact to register');
    const runtime = params.string('runtime');
    if (runtime !== undefined && !RUNTIMES.includes(runtime.toLowerCase())) {
      throw new BadRequestError(`runtime ${JSON.stringify(runtime)} is not one Quiver runs: use ${RUNTIMES.join(', ')} (the model runs on onnxruntime either way)`);
    }
    const synchronous = params.bool('synchronous') ?? true;
    const initialWorkers = params.int('initial_workers', { min: 0, max: 1024 });
    const record = await scheduler.register({
      url,
      name: params.string('model_name') || undefined,
      version: params.string('model_version') || undefined,
      initialWorkers,
      batchSize: params.int('batch_size', { min: 1, max: 4096 }),
      maxBatchDelayMs: params.int('max_batch_delay', { min: 0, max: 600_000 }),
      responseTimeoutS: params.int('response_timeout', { min: 1, max: 86_400 }),
      device: params.choice('device', DEVICE_REQUESTS),
      synchronous,
    });
    // MMS answers 202 only while workers it was asked to start are starting.
    if (!synchronous && (initialWorkers ?? 0) > 0) res.status(202).json({ status: 'Processing worker updates...' });
    else res.status(200).json({ status: `Model "${record.name}" registered` });
  });

  // TorchServe's, typo included: clients compare the text.
  router.put('/models/:name/:version/set-default', (req, res) => {
    scheduler.setDefault(req.params.name, req.params.version);
    res.json({ status: `Default vesion succsesfully updated for model "${req.params.name}" to "${req.params.version}"` });
  });

  const scale = async (req: Request, res: Response) => {
    const minWorkers = intParam(req, 'min_worker', { min: 0, max: 1024 }) ?? 1;
    const maxWorkers = intParam(req, 'max_worker', { min: 0, max: 1024 }) ?? minWorkers;
    const synchronous = boolParam(req, 'synchronous') ?? false;
    const { name, version } = req.params as { name: string; version?: string };
    // A bad name or count throws here, also when the scaling itself runs in the background.
    const scaling = scheduler.scale(name, minWorkers, maxWorkers, version);
    if (synchronous) {
      await scaling;
      res.status(200).json({ status: 'Workers scaled' });
    } else {
      // MMS answers 202 and scales in the background; a failure then can only be logged.
      scaling.catch((err: Error) => log.warn('background scale failed', { model: name, version, minWorkers, maxWorkers, error: err.message }));
      res.status(202).json({ status: 'Processing worker updates...' });
    }
  };
  router.put('/models/:name', scale);
  router.put('/models/:name/:version', scale);

  router.get('/models', (req, res) => {
    const page = scheduler.listModels(intParam(req, 'limit', { min: 1, max: 1000 }) ?? 100, stringParam(req, 'next_page_token'));
    res.json({
      ...(page.nextPageToken !== undefined ? { nextPageToken: page.nextPageToken } : {}),
      models: page.models.map((m) => ({ modelName: m.name, modelUrl: redactedUrl(m.url) })),
    });
  });

  router.use(modelStatusRouter(scheduler));

  // Without a version, the default one (refused while other versions remain, as TorchServe).
  const unregister = async (req: Request, res: Response) => {
    const { name, version } = req.params as { name: string; version?: string };
    await scheduler.unregister(name, version);
    res.json({ status: version === undefined ? `Model "${name}" unregistered` : `Model "${name}" version: ${version} unregistered` });
  };
  router.delete('/models/:name', unregister);
  router.delete('/models/:name/:version', unregister);

  return router;
}
