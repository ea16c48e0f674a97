// Runs one inference request through the scheduler and writes the answer; shared by every API
// family's predict/invoke route.
import type { Request, Response } from 'express';
import { BadRequestError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import { locals } from './access-log';

const CUSTOM_ATTRIBUTES = 'x-amzn-sagemaker-custom-attributes';
const MAX_CUSTOM_ATTRIBUTES = 1024;

export async function invokeModel(scheduler: ModelScheduler, name: string, version: string | undefined, req: Request, res: Response): Promise<void> {
  const context = locals(res);
  if (scheduler.registry.has(name)) context.model = name;
  const customAttributes = req.get(CUSTOM_ATTRIBUTES);
  if (customAttributes !== undefined && customAttributes.length > MAX_CUSTOM_ATTRIBUTES) {
    throw new BadRequestError(`X-Amzn-SageMaker-Custom-Attributes is longer than ${MAX_CUSTOM_ATTRIBUTES} characters`);
  }
  const body: Uint8Array = Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0);
  if (body.byteLength === 0) throw new BadRequestError('request body is empty: send an image or JSON tensors');
  const result = await scheduler.infer(name, version, {
    body,
    contentType: req.get('content-type') ?? '',
    customAttributes,
    requestId: context.requestId,
    enqueuedAt: Date.now(),
  });
  const t = result.timings;
  context.timings = t;
  // Like SageMaker's ModelLoadingWaitTime: tells the client this answer waited for its model to load.
  if (result.coldStart) res.set('X-Quiver-Cold-Start', 'true');
  res
    .status(200)
    .set('Server-Timing', `queue;dur=${t.queueMs.toFixed(2)}, preprocess;dur=${t.preprocessMs.toFixed(2)}, inference;dur=${t.inferenceMs.toFixed(2)}, postprocess;dur=${t.postprocessMs.toFixed(2)}`)
    .type(result.contentType)
    .send(result.body);
}
