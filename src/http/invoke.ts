// Runs one inference request through the scheduler and writes the answer; shared by every API
// family's predict/invoke route.
import type { Request, Response } from 'express';
import { BadRequestError } from '../errors';
import type { InferOutcome, ModelScheduler } from '../scheduler/scheduler';
import { locals } from './access-log';
import { Payload, requestPayloads } from './request-body';
import { clientGone } from './client-gone';

const CUSTOM_ATTRIBUTES = 'x-amzn-sagemaker-custom-attributes';
const MAX_CUSTOM_ATTRIBUTES = 1024;

export async function invokeModel(scheduler: ModelScheduler, name: string, version: string | undefined, req: Request, res: Response): Promise<void> {
  const context = locals(res);
  // An unknown model is a 404 whatever the body.
  scheduler.checkModel(name, version);
  context.model = name;
  const customAttributes = req.get(CUSTOM_ATTRIBUTES);
  if (customAttributes !== undefined && customAttributes.length > MAX_CUSTOM_ATTRIBUTES) {
    throw new BadRequestError(`X-Amzn-SageMaker-Custom-Attributes is longer than ${MAX_CUSTOM_ATTRIBUTES} characters`);
  }
  const body: Uint8Array = Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0);
  if (body.byteLength === 0) throw new BadRequestError('request body is empty: send an image or JSON tensors');
  const payloads = requestPayloads(body, req.get('content-type'));
  // Every input is checked before any runs, so that none is left running for a request already failed.
  if (payloads.some((p) => p.body.byteLength === 0)) throw new BadRequestError('request input is empty: send an image or JSON tensors');
  const gone = clientGone(res);
  const run = (payload: Payload) =>
    scheduler.infer(name, version, {
      body: payload.body,
      contentType: payload.contentType,
      customAttributes,
      requestId: context.requestId,
      enqueuedAt: Date.now(),
    }, Infinity, gone);
  if (payloads.length > 1) {
    const outcomes = await Promise.allSettled(payloads.map(run));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    return answerMany(res, outcomes.map((o) => (o as PromiseFulfilledResult<InferOutcome>).value));
  }
  const result = await run(payloads[0]);
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

/** A form with several inputs (MMS: one request per file): one JSON array of the answers, in order. */
function answerMany(res: Response, results: InferOutcome[]): void {
  const context = locals(res);
  context.timings = results[results.length - 1].timings;
  if (results.some((r) => r.coldStart)) res.set('X-Quiver-Cold-Start', 'true');
  res.status(200).type('application/json').send(`[${results.map((r) => r.body).join(',')}]`);
}
