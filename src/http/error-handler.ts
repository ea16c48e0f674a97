// The one place where failures become HTTP answers: {"code","type","message"} with the status the
// error catalogue gives for this API family.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  ApiFamily, BadRequestError, InternalError, PayloadTooLargeError, QuiverError, RouteNotFoundError, errorBody, httpStatusOf, retryAfterOf,
} from '../errors';
import { log } from '../log';

interface BodyParserError extends Error {
  type?: string;
  limit?: number;
  length?: number;
}

/** body-parser reports its failures as plain errors with a `type`; give them their kinds. */
function classify(err: unknown): QuiverError {
  if (err instanceof QuiverError) return err;
  const e = err as BodyParserError;
  switch (e?.type) {
    case 'entity.too.large':
      return new PayloadTooLargeError(`request body of ${e.length ?? 'more than ' + e.limit} bytes is over the limit of ${e.limit} bytes (max_request_size)`);
    case 'entity.parse.failed':
      return new BadRequestError(`request body is not valid JSON: ${e.message}`);
    case 'request.aborted':
      return new BadRequestError('request body was cut off before it ended');
    case 'request.size.invalid':
      return new BadRequestError('request body is shorter or longer than its Content-Length');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new BadRequestError(e.message);
  }
  log.error('unexpected error', { error: e?.stack ?? String(err) });
  return new InternalError('the server failed to handle the request');
}

/** The Open Inference Protocol's routes: /v2 and under. */
export function isOipPath(path: string): boolean {
  const lower = path.toLowerCase();
  return lower === '/v2' || lower.startsWith('/v2/');
}

/** Answers `err` with its status and JSON body, in the form of the API family `path` belongs to. */
export function sendError(res: ServerResponse, err: unknown, api: ApiFamily, path: string): void {
  const error = classify(err);
  const retryAfter = retryAfterOf(error);
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  // The Open Inference Protocol's routes answer in its own error form, whatever the server's mode.
  const family: ApiFamily = isOipPath(path) ? 'oip' : api;
  const body = JSON.stringify(errorBody(error, family));
  res.statusCode = httpStatusOf(error, family);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export function errorHandler(api: ApiFamily): ErrorRequestHandler {
  return (err, req: IncomingMessage & { path: string }, res, next) => {
    if (res.headersSent) return next(err);
    sendError(res, err, api, req.path);
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new RouteNotFoundError(`no such resource: ${req.method} ${req.path}`));
};
