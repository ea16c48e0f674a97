// Turns an inference request's body into the payloads a model is given, the way MMS and TorchServe read
// them: a body without a content type is sniffed (image magic, then JSON, else raw bytes); a form
// (multipart or url-encoded) gives its `data` or `body` fields, one payload each, as MMS does.
import { BadRequestError } from '../errors';
import { multipartBoundary, parseMultipart } from './multipart';

export interface Payload {
  body: Uint8Array;
  contentType: string;
}

/** The fields MMS's and TorchServe's default handlers read a request's input from. */
export const INPUT_FIELDS = ['data', 'body'] as const;

const OCTET_STREAM = 'application/octet-stream';
const URL_ENCODED = 'application/x-www-form-urlencoded';

function startsWith(b: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (b.length < offset + bytes.length) return false;
  return bytes.every((v, i) => b[offset + i] === v);
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** The image type a body's first bytes announce, if any. */
export function sniffImageType(b: Uint8Array): string | undefined {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return 'image/gif';
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  return undefined;
}

function looksLikeJson(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    if (c === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) {
      i += 2; // UTF-8 byte order mark
      continue;
    }
    return c === 0x7b || c === 0x5b; // '{' or '['
  }
  return false;
}

/** What a body without a (useful) content type is: an image, JSON tensors, or bytes for a handler. */
export function sniffContentType(b: Uint8Array): string {
  return sniffImageType(b) ?? (looksLikeJson(b) ? 'application/json' : OCTET_STREAM);
}

function mediaType(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

/** A part or body as given: its declared type, unless it declared none or only "bytes". */
function payloadOf(body: Uint8Array, contentType: string | undefined): Payload {
  const type = mediaType(contentType ?? '');
  if (type === '') return { body, contentType: sniffContentType(body) };
  // curl -F names a part octet-stream unless the file name says otherwise (a .json file too).
  if (type === OCTET_STREAM) return { body, contentType: sniffContentType(body) };
  return { body, contentType: contentType! };
}

/** Inputs one form may carry: each is a request of its own, and all count against job_queue_size. */
export const MAX_FORM_INPUTS = 32;

function inputFields<T extends { name: string }>(fields: T[], form: string): T[] {
  const inputs = fields.filter((f) => (INPUT_FIELDS as readonly string[]).includes(f.name));
  if (inputs.length === 0) {
    const shown = fields.slice(0, 8).map((f) => JSON.stringify(f.name.slice(0, 40)));
    const names = (shown.join(', ') || 'none') + (fields.length > shown.length ? `, … (${fields.length} in all)` : '');
    throw new BadRequestError(`${form} request has no "data" or "body" field (fields: ${names}): put the input in a field named data`);
  }
  if (inputs.length > MAX_FORM_INPUTS) {
    throw new BadRequestError(`${form} request has ${inputs.length} inputs; one request may carry at most ${MAX_FORM_INPUTS}`);
  }
  return inputs;
}

/** application/x-www-form-urlencoded, decoded to bytes (values may be binary, so not via UTF-8). */
function decodeFormComponent(text: string): Buffer {
  const bytes = Buffer.from(text.replace(/\+/g, ' '), 'latin1');
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 && i + 2 < bytes.length ? bytes.toString('latin1', i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = bytes[i];
    }
  }
  return out.subarray(0, n);
}

function urlEncodedPayloads(body: Uint8Array): Payload[] {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  const fields = text
    .split('&')
    .filter((pair) => pair.length > 0)
    .map((pair) => {
      const eq = pair.indexOf('=');
      return { name: decodeFormComponent(eq < 0 ? pair : pair.slice(0, eq)).toString('utf8'), value: decodeFormComponent(eq < 0 ? '' : pair.slice(eq + 1)) };
    });
  return inputFields(fields, 'form').map((f) => payloadOf(f.value, undefined));
}

/**
 * The payloads of one inference request: usually one; a form with several input fields gives one per
 * field (answered together, in order).
 */
export function requestPayloads(body: Uint8Array, contentType: string | undefined): Payload[] {
  const boundary = multipartBoundary(contentType ?? '');
  if (boundary !== undefined) {
    return inputFields(parseMultipart(body, boundary), 'multipart/form-data').map((p) => payloadOf(p.data, p.contentType));
  }
  if (mediaType(contentType ?? '') === URL_ENCODED) {
    // curl --data-binary sends files as url-encoded: an image or JSON file is taken as it is.
    const sniffed = sniffContentType(body);
    if (sniffed !== OCTET_STREAM) return [{ body, contentType: sniffed }];
    return urlEncodedPayloads(body);
  }
  return [payloadOf(body, contentType)];
}
