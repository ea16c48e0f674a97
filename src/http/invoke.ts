// Runs one inference request through the scheduler and writes the answer; shared by every API
// family's predict/invoke route, in express and on the fast path (fast-inference.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestError } from '../errors';
import type { InferOutcome, ModelScheduler } from '../scheduler/scheduler';
import type { RequestLocals } from './access-log';
import { Payload, requestPayloads } from './request-body';
import { clientGone } from './client-gone';
import { epochMs } from '../workers/clock';

const CUSTOM_ATTRIBUTES = 'x-amzn-sagemaker-custom-attributes';
const MAX_CUSTOM_ATTRIBUTES = 1024;

/** A request whose body readBody has read. */
export type RequestWithBody = IncomingMessage & { body?: unknown };

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export async function invokeModel(
  scheduler: ModelScheduler, name: string, version: string | undefined, req: RequestWithBody, res: ServerResponse, context: RequestLocals,
): Promise<void> {
  // An unknown model is a 404 whatever the body.
  scheduler.checkModel(name, version);
  context.model = name;
  const customAttributes = header(req, CUSTOM_ATTRIBUTES);
  if (customAttributes !== undefined && customAttributes.length > MAX_CUSTOM_ATTRIBUTES) {
    throw new BadRequestError(`X-Amzn-SageMaker-Custom-Attributes is longer than ${MAX_CUSTOM_ATTRIBUTES} characters`);
  }
  const body: Uint8Array = Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0);
  if (body.byteLength === 0) throw new BadRequestError('request body is empty: send an image or JSON tensors');
  const payloads = requestPayloads(body, header(req, 'content-type'));
  // Every input is checked before any runs, so that none is left running for a request already failed.
  if (payloads.some((p) => p.body.byteLength === 0)) throw new BadRequestError('request input is empty: send an image or JSON tensors');
  const gone = clientGone(res);
  const run = (payload: Payload) =>
    scheduler.infer(name, version, {
      body: payload.body,
      contentType: payload.contentType,
      customAttributes,
      requestId: context.requestId,
      enqueuedAt: epochMs(),
    }, Infinity, gone);
  if (payloads.length > 1) {
    const outcomes = await Promise.allSettled(payloads.map(run));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    return answerMany(res, context, outcomes.map((o) => (o as PromiseFulfilledResult<InferOutcome>).value));
  }
  const result = await run(payloads[0]);
  const t = result.timings;
  context.timings = t;
  // Like SageMaker's ModelLoadingWaitTime: tells the client this answer waited for its model to load.
  if (result.coldStart) res.setHeader('X-Quiver-Cold-Start', 'true');
  res.setHeader('Server-Timing', `queue;dur=${t.queueMs.toFixed(2)}, preprocess;dur=${t.preprocessMs.toFixed(2)}, inference;dur=${t.inferenceMs.toFixed(2)}, postprocess;dur=${t.postprocessMs.toFixed(2)}`);
  sendOk(res, result.contentType, result.body);
}

/** A form with several inputs (MMS: one request per file): one JSON array of the answers, in order. */
function answerMany(res: ServerResponse, context: RequestLocals, results: InferOutcome[]): void {
  context.timings = results[results.length - 1].timings;
  if (results.some((r) => r.coldStart)) res.setHeader('X-Quiver-Cold-Start', 'true');
  sendOk(res, 'application/json', `[${results.map((r) => r.body).join(',')}]`);
}

/** 200 with `body`; text says its charset, as express's res.send does. */
export function sendOk(res: ServerResponse, contentType: string, body: string | Uint8Array): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', typeof body === 'string' ? `${contentType.replace(/;\s*charset=[^;]*/i, '')}; charset=utf-8` : contentType);
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  res.end(body);
}

/** Parts this large are written as they are, not joined first (a join of an 8 MiB tensor costs milliseconds). */
const JOIN_BELOW_BYTES = 64 * 1024;

/** A binary answer in parts (an OIP header, then its sections), written in one go without joining large ones. */
export function sendOkParts(res: ServerResponse, contentType: string, parts: Uint8Array[]): void {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  if (total < JOIN_BELOW_BYTES) return sendOk(res, contentType, Buffer.concat(parts));
  res.statusCode = 200;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', total);
  // Corked, the head and the parts leave in one writev.
  res.cork();
  for (const p of parts) res.write(p);
  res.end();
  res.uncork();
}
