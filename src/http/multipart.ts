// A strict multipart/form-data parser (RFC 7578) over a body already in memory: the parts are views
// into the body, so nothing is copied. Anything malformed is a BadRequestError naming what was wrong.
import { BadRequestError } from '../errors';

export interface FormPart {
  name: string;
  filename?: string;
  /** The part's own Content-Type; absent when the client sent none. */
  contentType?: string;
  data: Uint8Array;
}

const MAX_PARTS = 256;
const MAX_PART_HEADER_BYTES = 8 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The boundary of a multipart/form-data Content-Type, or undefined when it is not one. */
export function multipartBoundary(contentType: string): string | undefined {
  if (!/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new BadRequestError('multipart/form-data request has no boundary parameter in its Content-Type');
  return boundary;
}

/** `form-data; name="data"; filename="kitten.jpg"` → its parameters (quoted or bare). */
function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /;\s*([A-Za-z0-9*_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    params.set(m[1].toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]);
  }
  return params;
}

function parsePartHeaders(text: string, index: number): Omit<FormPart, 'data'> {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new BadRequestError(`multipart part ${index + 1} has a malformed header line`);
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') disposition = value;
    else if (key === 'content-type') contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) {
    throw new BadRequestError(`multipart part ${index + 1} has no Content-Disposition: form-data header`);
  }
  const params = dispositionParams(disposition);
  const name = params.get('name');
  if (name === undefined) throw new BadRequestError(`multipart part ${index + 1} has no field name`);
  const filename = params.get('filename');
  return { name, ...(filename !== undefined ? { filename } : {}), ...(contentType ? { contentType } : {}) };
}

export function parseMultipart(body: Uint8Array, boundary: string): FormPart[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`);
  // Every delimiter after the first is preceded by CRLF, which belongs to it, not to the part before.
  const next = Buffer.concat([CRLF, delimiter]);
  let at = buf.indexOf(delimiter);
  if (at < 0) throw new BadRequestError('multipart body does not contain its boundary');
  const parts: FormPart[] = [];
  for (;;) {
    at += delimiter.length;
    if (buf[at] === 0x2d && buf[at + 1] === 0x2d) return parts; // "--": the closing delimiter
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    while (buf[at] === 0x20 || buf[at] === 0x09) at++;
    if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) throw new BadRequestError('multipart delimiter is not followed by a line break');
    at += 2;
    if (parts.length >= MAX_PARTS) throw new BadRequestError(`multipart body has more than ${MAX_PARTS} parts`);
    const headerEnd = buf.indexOf(HEADER_END, at);
    if (headerEnd < 0 || headerEnd - at > MAX_PART_HEADER_BYTES) {
      throw new BadRequestError(`multipart part ${parts.length + 1} has no end to its headers`);
    }
    const headers = parsePartHeaders(buf.toString('latin1', at, headerEnd), parts.length);
    const dataStart = headerEnd + HEADER_END.length;
    const end = buf.indexOf(next, dataStart);
    if (end < 0) throw new BadRequestError('multipart body ends before its closing boundary: it was cut off');
    parts.push({ ...headers, data: body.subarray(dataStart, end) });
    at = end + CRLF.length;
  }
}
