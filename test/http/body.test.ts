// A binary OIP request's tensor is read into memory where the worker can use it in place: its first
// byte on an 8-byte boundary, in a buffer nothing else uses, so it moves to the worker uncopied.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../../src/http/body';
import { binarySectionStart } from '../../src/http/oip';
import { inferRequestBody } from '../../src/grpc/tensors';
import { decodeOipBody, OipModel } from '../../src/oip/request';
import { transferableBody } from '../../src/workers/transfer';

const model: OipModel = { name: 'm', inputs: [{ name: 'x', type: 'float32', shape: [-1, 4] }], outputs: [], takesImages: false };

interface Read {
  body: Buffer;
  headerLength?: number;
}

/** POSTs `body` (in `chunks` pieces) to a node:http server that reads it as the OIP routes do. */
async function readThrough(body: Buffer, headers: Record<string, string>, chunks = 1): Promise<Read> {
  const read = readBody({ limit: 1 << 20, alignedAt: binarySectionStart });
  let got: Read | undefined;
  const server = http.createServer((req, res) => {
    read(req as http.IncomingMessage & { body?: unknown }, res, (err) => {
      if (err) throw err;
      got = { body: (req as { body?: unknown }).body as Buffer, headerLength: binarySectionStart(req) };
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ port: (server.address() as AddressInfo).port, method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        res.resume().on('end', resolve);
      });
      req.on('error', reject);
      const step = Math.ceil(body.length / chunks);
      for (let at = 0; at < body.length; at += step) req.write(body.subarray(at, at + step));
      req.end();
    });
  } finally {
    server.close();
  }
  return got!;
}

function binaryRequest(padding: number, rows: number): { body: Buffer; headerLength: number; values: Float32Array } {
  const values = Float32Array.from({ length: rows * 4 }, (_, i) => i * 0.5 - 3);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 4], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }], id: 'p'.repeat(padding) }));
  return { body: Buffer.concat([header, Buffer.from(values.buffer)]), headerLength: header.length, values };
}

describe('reading a binary OIP body', () => {
  test.each([0, 1, 2, 3, 4, 5, 6, 7])('with a header %d bytes longer, the tensor lands on an 8-byte boundary and is read in place', async (padding) => {
    const sent = binaryRequest(padding, 1000);
    const { body, headerLength } = await readThrough(sent.body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(sent.headerLength) }, 3);
    expect(headerLength).toBe(sent.headerLength);
    expect(Buffer.compare(body, sent.body)).toBe(0);
    expect((body.byteOffset + sent.headerLength) % 8).toBe(0);
    const { body: moved, transfer } = transferableBody(body);
    expect(moved).toBe(body);
    expect(transfer).toEqual([body.buffer]);
    const decoded = decodeOipBody(moved, { headerLength: sent.headerLength }, model);
    expect((decoded.feeds.x.data as Float32Array).buffer).toBe(body.buffer);
    expect(Array.from(decoded.feeds.x.data as Float32Array)).toEqual(Array.from(sent.values));
  });

  test('a part cut from such a body is copied, not moved with the whole', async () => {
    const sent = binaryRequest(3, 10);
    const { body } = await readThrough(sent.body, { 'inference-header-content-length': String(sent.headerLength) });
    const part = body.subarray(sent.headerLength);
    const { body: moved, transfer } = transferableBody(part);
    expect(moved).not.toBe(part);
    expect(transfer[0]).not.toBe(body.buffer);
    expect(Buffer.compare(Buffer.from(moved), part)).toBe(0);
  });

  test.each([
    ['no header length', {}],
    ['a header length past the body', { 'inference-header-content-length': '999999' }],
    ['a header length that is no number', { 'inference-header-content-length': '12abc' }],
  ])('with %s, the body is read whole from the start of its own memory', async (_what, headers) => {
    const sent = binaryRequest(1, 10);
    const { body } = await readThrough(sent.body, headers as Record<string, string>);
    expect(Buffer.compare(body, sent.body)).toBe(0);
    expect(body.byteOffset).toBe(0);
    expect(transferableBody(body).transfer).toEqual([body.buffer]);
  });
});

describe('a gRPC ModelInferRequest as a worker body', () => {
  test.each(['', 'a', 'abcdefg', 'request-0001'])('its first tensor is on an 8-byte boundary (id %j) and is read in place', (id) => {
    const values = Float32Array.from({ length: 2000 }, (_, i) => i - 1000);
    const { body, headerLength } = inferRequestBody({
      model_name: 'm', model_version: '', id, inputs: [{ name: 'x', datatype: 'FP32', shape: [500, 4] }], outputs: [], raw_input_contents: [Buffer.from(values.buffer)],
    });
    expect(headerLength % 8).toBe(0);
    const { body: moved } = transferableBody(body);
    expect((moved.byteOffset + headerLength) % 8).toBe(0);
    const decoded = decodeOipBody(moved, { headerLength }, model);
    expect((decoded.feeds.x.data as Float32Array).buffer).toBe(moved.buffer);
    expect(Array.from(decoded.feeds.x.data as Float32Array)).toEqual(Array.from(values));
    expect(decoded.id).toBe(id || undefined);
  });
});
