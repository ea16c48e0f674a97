// Reads a request body into memory, up to a limit. A body announced (Content-Length) or found (chunked)
// to be over the limit gets 413 at once and its connection is closed, so the rest is never read:
// body-parser, by contrast, drains the whole body before it answers.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestError, PayloadTooLargeError } from '../errors';
import { markOwnBuffer } from '../workers/transfer';
import type { InflightBytes } from './inflight';

export interface BodyOptions {
  limit: number;
  /** The setting `limit` comes from, named in the 413 (max_request_size unless given). */
  setting?: string;
  /** Counts the body against max_inflight_bytes from its first byte until its answer is done. */
  inflight?: InflightBytes;
  /** Parse the body as JSON (always, or only when the client says it is JSON). */
  json?: 'always' | 'when-declared';
  /**
   * Where in the body a tensor starts (OIP: after its JSON header), to be placed at an 8-byte boundary
   * of memory so that the worker reads it in place, without a copy.
   */
  alignedAt?: (req: IncomingMessage) => number | undefined;
}

/** A buffer of `length` bytes of its own whose byte `alignedAt` lies on an 8-byte boundary. */
function ownBuffer(length: number, alignedAt: number | undefined): Buffer {
  if (alignedAt === undefined || alignedAt <= 0 || alignedAt >= length || alignedAt % 8 === 0) return Buffer.allocUnsafeSlow(length);
  const pad = 8 - (alignedAt % 8);
  const body = Buffer.allocUnsafeSlow(length + pad).subarray(pad);
  markOwnBuffer(body);
  return body;
}

function tooLarge(bytes: number | undefined, limit: number, setting = 'max_request_size'): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `request body of ${bytes === undefined ? `more than ${limit}` : bytes} bytes is over the limit of ${limit} bytes (${setting})`,
  );
}

// After a 413 the rest of the body is read and dropped for this long, so that a client still sending
// gets to read the answer (closing on unread data sends a reset, and clients then miss the 413).
const LINGER_MS = 2_000;

/** The connection goes once the answer is out and the client stopped sending, or after LINGER_MS. */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.once('finish', () => {
    const socket = req.socket;
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clearTimeout(linger));
    req.once('end', () => socket.destroySoon());
    req.resume();
  });
}

/** Content-Length over the limit, checked before a byte of the body is read; undefined when fine. */
export function declaredTooLarge(headers: IncomingHttpHeaders, limit: number, setting?: string): PayloadTooLargeError | undefined {
  const declared = headers['content-length'];
  if (declared === undefined) return undefined;
  const bytes = Number(declared);
  return Number.isFinite(bytes) && bytes > limit ? tooLarge(bytes, limit, setting) : undefined;
}

function isJson(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

/** Connect-style, as express.raw is, so that a route keeps the parameter types express infers from its path. */
type BodyMiddleware = (req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: (err?: unknown) => void) => void;

export function readBody(options: BodyOptions): BodyMiddleware {
  const { limit } = options;
  return (req, res, next) => {
    const refused = declaredTooLarge(req.headers, limit, options.setting);
    if (refused) {
      closeAfterAnswer(req, res);
      return next(refused);
    }
    let reserved = 0;
    const reserve = (bytes: number): Error | undefined => {
      if (!options.inflight) return undefined;
      try {
        options.inflight.reserve(bytes);
        reserved += bytes;
        return undefined;
      } catch (err) {
        return err as Error;
      }
    };
    if (options.inflight) res.once('close', () => options.inflight!.release(reserved));
    const declared = Number(req.headers['content-length'] ?? NaN);
    const full = Number.isFinite(declared) ? reserve(declared) : undefined;
    if (full) {
      closeAfterAnswer(req, res);
      return next(full);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // With a length given (and reserved), the body is read into one buffer of its own: no concat, and
    // a buffer that can be handed to a worker thread as it is.
    const whole = Number.isFinite(declared) && declared > 0 ? ownBuffer(declared, options.alignedAt?.(req)) : undefined;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', onData).off('end', onEnd).off('aborted', onAborted).off('error', onAborted);
      if (err) return next(err);
      const body = whole && size === whole.length && chunks.length === 0 ? whole : Buffer.concat(whole ? [whole.subarray(0, Math.min(size, whole.length)), ...chunks] : chunks, size);
      if (options.json === 'always' || (options.json === 'when-declared' && isJson(req))) {
        if (body.length === 0) {
          req.body = undefined;
        } else {
          try {
            req.body = JSON.parse(body.toString('utf8'));
          } catch (parseError) {
            return next(new BadRequestError(`request body is not valid JSON: ${(parseError as Error).message}`));
          }
        }
      } else {
        // A registration that is not JSON carries its parameters in the query: its body is no input.
        req.body = options.json === 'when-declared' ? undefined : body;
      }
      next();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      // A chunked body has no length to reserve ahead: each chunk reserves its own bytes.
      const refused = size > limit ? tooLarge(undefined, limit, options.setting) : Number.isFinite(declared) ? undefined : reserve(chunk.length);
      if (refused) {
        req.pause();
        closeAfterAnswer(req, res);
        settle(refused);
        return;
      }
      if (whole && size <= whole.length) chunk.copy(whole, size - chunk.length);
      else chunks.push(chunk);
    };
    const onEnd = () => settle();
    const onAborted = () => settle(new BadRequestError('request body was cut off before it ended'));
    req.on('data', onData).on('end', onEnd).on('aborted', onAborted).on('error', onAborted);
  };
}
