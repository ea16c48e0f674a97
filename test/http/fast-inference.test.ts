// The inference fast path (no express) answers exactly as the express routes do, and leaves every
// request it does not take to them.
import * as path from 'node:path';
import { matchFastRoute } from '../../src/http/fast-inference';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

describe('matchFastRoute', () => {
  test('takes the plain forms of the predict and invoke routes', () => {
    expect(matchFastRoute('POST', '/predictions/m', false)).toEqual({ kind: 'predictions', segments: ['m'] });
    expect(matchFastRoute('PUT', '/predictions/m/2.0', false)).toEqual({ kind: 'predictions', segments: ['m', '2.0'] });
    expect(matchFastRoute('POST', '/predictions/a/b/c', false)).toEqual({ kind: 'predictions', segments: ['a', 'b', 'c'] });
    expect(matchFastRoute('POST', '/models/m/invoke', true)).toEqual({ kind: 'invoke', name: 'm' });
    expect(matchFastRoute('POST', '/v2/models/m/infer', false)).toEqual({ kind: 'oip', segments: ['m', 'infer'] });
    expect(matchFastRoute('POST', '/v2/models/m/versions/2/infer', true)).toEqual({ kind: 'oip', segments: ['m', 'versions', '2', 'infer'] });
  });

  test('leaves everything else to express', () => {
    for (const [method, url, sagemaker] of [
      ['GET', '/predictions/m', false],
      ['POST', '/predictions/', false],
      ['POST', '/predictions/m/', false],
      ['POST', '/predictions//m', false],
      ['POST', '/predictions/m%2Fx', false],
      ['POST', '/Predictions/m', false],
      ['POST', '/models/m/invoke', false],
      ['PUT', '/models/m/invoke', true],
      ['POST', '/models//invoke', true],
      ['POST', '/models/a/b/invoke', true],
      ['POST', '/invocations', true],
      ['POST', '/v2/models/infer', false],
      ['POST', '/v2/models//infer', false],
      ['GET', '/v2/models/m/infer', false],
      ['POST', '/v2/models/m/ready', false],
    ] as const) {
      expect(matchFastRoute(method, url, sagemaker)).toBeUndefined();
    }
  });
});

describe('the fast path and express answer alike', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ workers: '1' });
    writeModelFolder(path.join(s.store, 'adder'), addModel([10, 20, 30]));
    expect((await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST' })).status).toBe(200);
  });
  afterAll(async () => s.close());

  const input = { x: [[1, 2, 3]] };
  // The same model through express: a form with another case, which only express's case-blind router matches.
  const viaExpress = (name: string, body: unknown = input) => postJson(`${s.inference}/PREDICTIONS/${name}`, body);
  const viaFastPath = (name: string, body: unknown = input) => postJson(`${s.inference}/predictions/${name}`, body);

  const headersOf = (r: Response) => ({
    status: r.status,
    contentType: r.headers.get('content-type'),
    requestId: /^[0-9a-f-]{36}$/.test(r.headers.get('x-request-id') ?? ''),
    serverTiming: /^queue;dur=[\d.]+, preprocess;dur=[\d.]+, inference;dur=[\d.]+, postprocess;dur=[\d.]+$/.test(r.headers.get('server-timing') ?? ''),
  });

  test('an answer: same status, headers and body', async () => {
    const [fast, slow] = [await viaFastPath('adder'), await viaExpress('adder')];
    expect(headersOf(fast)).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', requestId: true, serverTiming: true });
    expect(headersOf(slow)).toEqual(headersOf(fast));
    const [a, b] = [await json(fast), await json(slow)];
    expect(a).toEqual({ y: [[11, 22, 33]] });
    expect(b).toEqual(a);
  });

  test('errors: an unknown model, an empty body, a body over the limit', async () => {
    for (const [fast, slow] of [
      [await viaFastPath('nobody'), await viaExpress('nobody')],
      [await fetch(`${s.inference}/predictions/adder`, { method: 'POST' }), await fetch(`${s.inference}/PREDICTIONS/adder`, { method: 'POST' })],
    ]) {
      expect(fast.status).toBeGreaterThanOrEqual(400);
      expect(fast.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(slow.status).toBe(fast.status);
      expect(await json(slow)).toEqual(await json(fast));
    }
    const big = { x: [[1, 2, 3]], pad: 'x'.repeat(7 * 1024 * 1024) };
    const [fast, slow] = [await viaFastPath('adder', big), await viaExpress('adder', big)];
    expect(fast.status).toBe(413);
    expect(slow.status).toBe(413);
    expect(await json(slow)).toEqual(await json(fast));
  });

  test('OIP infer: JSON and binary answers, and errors in the OIP form, alike on both paths', async () => {
    const request = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] };
    const fast = await postJson(`${s.inference}/v2/models/adder/infer`, request);
    const slow = await postJson(`${s.inference}/V2/models/adder/infer`, request);
    expect(fast.status).toBe(200);
    expect(headersOf(slow).contentType).toBe(headersOf(fast).contentType);
    const answer = await json(fast);
    expect(answer).toMatchObject({ model_name: 'adder', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: [11, 22, 33] }] });
    expect(await json(slow)).toEqual(answer);

    const binary = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }], outputs: [{ name: 'y', parameters: { binary_data: true } }] };
    const head = Buffer.from(JSON.stringify(binary));
    const body = Buffer.concat([head, Buffer.from(Float32Array.of(1, 2, 3).buffer)]);
    const post = (url: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) }, body });
    const [b1, b2] = [await post(`${s.inference}/v2/models/adder/infer`), await post(`${s.inference}/V2/models/adder/infer`)];
    expect(b1.status).toBe(200);
    const length = Number(b1.headers.get('inference-header-content-length'));
    const bytes = Buffer.from(await b1.arrayBuffer());
    expect(Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset + length, bytes.byteOffset + bytes.length)))).toEqual([11, 22, 33]);
    expect(Buffer.from(await b2.arrayBuffer()).equals(bytes)).toBe(true);

    const [e1, e2] = [await postJson(`${s.inference}/v2/models/nobody/infer`, request), await postJson(`${s.inference}/V2/models/nobody/infer`, request)];
    expect(e1.status).toBe(404);
    const error = await json(e1);
    expect(typeof error.error).toBe('string');
    expect(await json(e2)).toEqual(error);
  });

  test('a client request id is kept, and the access metrics count fast-path requests', async () => {
    const answered = await postJson(`${s.inference}/predictions/adder`, input, { 'x-request-id': 'trace-42' });
    expect(answered.headers.get('x-request-id')).toBe('trace-42');
    await answered.text();
    const metrics = await (await fetch(`${s.management}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('quiver_requests_total{') && l.includes('model="adder"') && l.includes('status="200"'));
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').pop())).toBeGreaterThanOrEqual(3);
  });
});
