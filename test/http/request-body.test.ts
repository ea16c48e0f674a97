// How an inference body becomes payloads: sniffing, multipart and url-encoded forms, as MMS reads them.
import { BadRequestError } from '../../src/errors';
import { multipartBoundary, parseMultipart } from '../../src/http/multipart';
import { requestPayloads, sniffContentType, sniffImageType } from '../../src/http/request-body';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

/** A multipart body laid out byte for byte as curl -F writes one. */
function form(boundary: string, parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('sniffing a body without a content type', () => {
  test('image magic bytes name the image type', () => {
    expect(sniffImageType(JPEG)).toBe('image/jpeg');
    expect(sniffImageType(PNG)).toBe('image/png');
    expect(sniffImageType(Buffer.from('GIF89a....'))).toBe('image/gif');
    expect(sniffImageType(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
    expect(sniffImageType(Buffer.from([0x49, 0x49, 0x2a, 0x00, 8]))).toBe('image/tiff');
    expect(sniffImageType(Buffer.from([0xff, 0xd8]))).toBeUndefined();
  });

  test('then JSON (after white space or a byte order mark), else raw bytes', () => {
    expect(sniffContentType(Buffer.from('  \n{"x": [1]}'))).toBe('application/json');
    expect(sniffContentType(Buffer.from('\ufeff[1, 2]'))).toBe('application/json');
    expect(sniffContentType(Buffer.from('hello'))).toBe('application/octet-stream');
    expect(sniffContentType(Buffer.alloc(0))).toBe('application/octet-stream');
  });

  test('a body with no content type, or only octet-stream, is given its sniffed type', () => {
    expect(requestPayloads(JPEG, undefined)).toEqual([{ body: JPEG, contentType: 'image/jpeg' }]);
    expect(requestPayloads(PNG, 'application/octet-stream')).toEqual([{ body: PNG, contentType: 'image/png' }]);
    const bytes = Buffer.from([1, 2, 3]);
    expect(requestPayloads(bytes, 'application/octet-stream')[0].contentType).toBe('application/octet-stream');
    // A declared type is kept: a client that says JSON means it.
    expect(requestPayloads(JPEG, 'application/json')[0].contentType).toBe('application/json');
  });

  test('curl --data-binary (url-encoded) with an image or JSON file is taken as that file', () => {
    expect(requestPayloads(JPEG, 'application/x-www-form-urlencoded')[0].contentType).toBe('image/jpeg');
    const tensors = Buffer.from('{"x":[[1,2]]}');
    expect(requestPayloads(tensors, 'application/x-www-form-urlencoded')).toEqual([{ body: tensors, contentType: 'application/json' }]);
  });

  test('a real url-encoded form gives its data field, decoded to bytes', () => {
    const [payload] = requestPayloads(Buffer.from('other=1&data=%7B%22x%22%3A%5B1%5D%7D'), 'application/x-www-form-urlencoded');
    expect(payload.contentType).toBe('application/json');
    expect(Buffer.from(payload.body).toString()).toBe('{"x":[1]}');
    const binary = requestPayloads(Buffer.from('body=%FF%D8%FF%E0'), 'application/x-www-form-urlencoded');
    expect([...binary[0].body]).toEqual([0xff, 0xd8, 0xff, 0xe0]);
    expect(() => requestPayloads(Buffer.from('input=hello'), 'application/x-www-form-urlencoded')).toThrow(/no "data" or "body" field.*"input"/);
  });
});

describe('multipart/form-data', () => {
  const boundary = '------------------------d74496d66958873e';

  test('the boundary comes from the content type, quoted or not', () => {
    expect(multipartBoundary(`multipart/form-data; boundary=${boundary}`)).toBe(boundary);
    expect(multipartBoundary('multipart/form-data; charset=utf-8; boundary="a b"')).toBe('a b');
    expect(multipartBoundary('application/json')).toBeUndefined();
    expect(() => multipartBoundary('multipart/form-data')).toThrow(BadRequestError);
  });

  test('parts are views of the body with their names, file names and types', () => {
    const body = form(boundary, [
      { name: 'data', filename: 'kitten.jpg', type: 'image/jpeg', data: JPEG },
      { name: 'note', data: 'a\r\nb' },
    ]);
    const parts = parseMultipart(body, boundary);
    expect(parts.map((p) => [p.name, p.filename, p.contentType])).toEqual([
      ['data', 'kitten.jpg', 'image/jpeg'],
      ['note', undefined, undefined],
    ]);
    expect(Buffer.from(parts[0].data).equals(JPEG)).toBe(true);
    expect(Buffer.from(parts[1].data).toString()).toBe('a\r\nb');
    expect(parts[0].data.buffer).toBe(body.buffer);
  });

  test('data and body fields become payloads, one per file, in order; other fields are ignored', () => {
    const body = form(boundary, [
      { name: 'data', filename: 'a.png', type: 'application/octet-stream', data: PNG },
      { name: 'meta', data: 'x' },
      { name: 'body', data: '{"x":[1]}' },
    ]);
    const payloads = requestPayloads(body, `multipart/form-data; boundary=${boundary}`);
    expect(payloads.map((p) => p.contentType)).toEqual(['image/png', 'application/json']);
  });

  test('malformed forms are 400s that say what is wrong', () => {
    const type = `multipart/form-data; boundary=${boundary}`;
    const good = form(boundary, [{ name: 'data', data: 'abc' }]);
    expect(() => requestPayloads(good.subarray(0, good.length - 30), type)).toThrow(/cut off/);
    expect(() => requestPayloads(Buffer.from('no boundary here'), type)).toThrow(/does not contain its boundary/);
    expect(() => requestPayloads(Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}--`), type)).toThrow(/Content-Disposition/);
    expect(() => requestPayloads(form(boundary, [{ name: 'file', data: 'x' }]), type)).toThrow(/no "data" or "body" field/);
    const many = form(boundary, Array.from({ length: 300 }, () => ({ name: 'data', data: 'x' })));
    expect(() => requestPayloads(many, type)).toThrow(/more than 256 parts/);
    for (const bad of [good.subarray(0, 10), Buffer.alloc(0)]) expect(() => requestPayloads(bad, type)).toThrow(BadRequestError);
  });
});
