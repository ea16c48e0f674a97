// One log line and the request metrics per answered request, read from the timing stamps the
// request carries (res.locals), not from timers in the handlers. Also assigns the request id.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { log } from '../log';
import type { QuiverMetrics } from '../metrics';
import type { StageTimings } from '../workers/messages';

export interface RequestLocals {
  requestId: string;
  /** Set by inference routes for a registered model (never an arbitrary name from the URL). */
  model?: string;
  timings?: StageTimings;
}

export function locals(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/** The URL's path, without its query. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/**
 * Gives the request its id (X-Request-Id) in `context`, and writes its log line and metrics when it
 * closes, from what the handler left in `context` by then.
 */
export function recordRequest(api: string, metrics: QuiverMetrics | undefined, req: IncomingMessage, res: ServerResponse, context: RequestLocals): void {
  const started = process.hrtime.bigint();
  const id = requestIdOf(req);
  res.setHeader('X-Request-Id', id);
  context.requestId = id;
  res.once('close', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { model = '', timings } = context;
    // 499 as nginx logs it: the client went away before the answer was sent.
    const status = res.writableFinished ? res.statusCode : 499;
    metrics?.requests.inc({ api, model, status: String(status) });
    metrics?.requestDuration.observe({ api, model }, seconds);
    if (timings && model) {
      metrics?.stageDuration.observe({ model, stage: 'queue' }, timings.queueMs / 1e3);
      metrics?.stageDuration.observe({ model, stage: 'preprocess' }, timings.preprocessMs / 1e3);
      metrics?.stageDuration.observe({ model, stage: 'inference' }, timings.inferenceMs / 1e3);
      metrics?.stageDuration.observe({ model, stage: 'postprocess' }, timings.postprocessMs / 1e3);
    }
    log.request({
      reqId: id, api, method: req.method, path: pathOf(req), model: model || undefined, status,
      durationMs: Math.round(seconds * 1e5) / 100,
      ...(timings ? roundTimings(timings) : {}),
    });
  });
}

export function accessLog(api: string, metrics?: QuiverMetrics): RequestHandler {
  return (req, res, next) => {
    recordRequest(api, metrics, req, res, locals(res));
    next();
  };
}

function roundTimings(t: StageTimings): Record<string, number> {
  return {
    queueMs: Math.round(t.queueMs * 100) / 100,
    preprocessMs: Math.round(t.preprocessMs * 100) / 100,
    inferenceMs: Math.round(t.inferenceMs * 100) / 100,
    postprocessMs: Math.round(t.postprocessMs * 100) / 100,
  };
}
