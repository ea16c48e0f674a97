// The Open Inference Protocol (v2) over real HTTP, as Triton's and KServe's clients speak it: health,
// metadata, model config, JSON and binary tensors, raw bodies, images, errors and the repository API.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { identityModel, twoOutputModel, channelMeanModel, writeModelFolder } from '../fixtures/onnx-models';
import { solidJpeg } from '../fixtures/images';
import { TestServer, json, postJson, startServer } from '../fixtures/server';

const T = onnx.TensorProto.DataType;
let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '1' });
  writeModelFolder(path.join(s.store, 'two'), twoOutputModel(3), { batchSize: 4, maxBatchDelayMs: 5 });
  writeModelFolder(path.join(s.store, 'half'), identityModel(T.FLOAT16, [2]));
  writeModelFolder(path.join(s.store, 'big'), identityModel(T.INT64, [3]));
  writeModelFolder(path.join(s.store, 'flags'), identityModel(T.BOOL, [2]));
  writeModelFolder(path.join(s.store, 'words'), identityModel(T.STRING, [2]));
  writeModelFolder(path.join(s.store, 'fixed'), identityModel(T.FLOAT, [2, 2]));
  writeModelFolder(path.join(s.store, 'mean'), channelMeanModel(8, 8), { image: { resize: 'stretch', mean: [0, 0, 0], std: [1, 1, 1] } });
  // Triton's repository layout: <name>/<version>/model.onnx.
  fs.mkdirSync(path.join(s.store, 'triton', '3'), { recursive: true });
  fs.writeFileSync(path.join(s.store, 'triton', '3', 'model.onnx'), twoOutputModel(2));
  for (const name of ['two', 'half', 'big', 'flags', 'words', 'fixed', 'mean']) {
    const r = await fetch(`${s.management}/models?url=${name}&synchronous=true`, { method: 'POST' });
    expect(r.status).toBe(200);
  }
}, 60_000);
afterAll(() => s.close());

const v2 = (p: string) => `${s.inference}/v2${p}`;

/** A binary request: JSON header, then the sections, as tritonclient.http builds it. */
function binaryBody(header: object, sections: Uint8Array[]): { body: Buffer; headers: Record<string, string> } {
  const head = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([head, ...sections]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) } };
}

async function binaryAnswer(r: Response): Promise<{ header: any; rest: Buffer }> {
  const all = Buffer.from(await r.arrayBuffer());
  const length = Number(r.headers.get('inference-header-content-length'));
  expect(Number.isInteger(length) && length > 0).toBe(true);
  return { header: JSON.parse(all.subarray(0, length).toString()), rest: all.subarray(length) };
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('health and metadata', () => {
  test('live, ready, server metadata with the implemented extensions', async () => {
    expect((await fetch(v2('/health/live'))).status).toBe(200);
    expect((await fetch(v2('/health/ready'))).status).toBe(200);
    const meta = await json(await fetch(v2('')));
    expect(meta).toEqual({ name: 'quiver', version: expect.any(String), extensions: ['binary_tensor_data', 'classification', 'logging', 'model_configuration', 'model_repository', 'statistics'] });
  });

  test('model metadata: platform, OIP datatypes, -1 for variable dimensions; by version too', async () => {
    const meta = await json(await fetch(v2('/models/two')));
    expect(meta).toEqual({
      name: 'two', versions: ['1.0'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'plus', datatype: 'FP32', shape: [-1, 3] }, { name: 'times', datatype: 'FP32', shape: [-1, 3] }],
    });
    expect(await json(await fetch(v2('/models/two/versions/1.0')))).toEqual(meta);
    // Triton's clients name versions as whole numbers: "1" is this model's "1.0".
    expect(await json(await fetch(v2('/models/two/versions/1')))).toEqual(meta);
    expect((await fetch(v2('/models/two/versions/1/ready'))).status).toBe(200);
    expect((await fetch(v2('/models/two/versions/2/ready'))).status).toBe(404);
    expect((await json(await fetch(v2('/models/words')))).inputs[0].datatype).toBe('BYTES');
    expect((await json(await fetch(v2('/models/half')))).inputs[0].datatype).toBe('FP16');
  });

  test('metadata lists every version of the model, as Triton\'s does, whichever version was asked for', async () => {
    expect((await fetch(`${s.management}/models?url=fixed&model_name=fixed&model_version=2.0&synchronous=true`, { method: 'POST' })).status).toBe(200);
    try {
      expect((await json(await fetch(v2('/models/fixed')))).versions).toEqual(['1.0', '2.0']);
      expect((await json(await fetch(v2('/models/fixed/versions/2.0')))).versions).toEqual(['1.0', '2.0']);
    } finally {
      expect((await fetch(`${s.management}/models/fixed/2.0`, { method: 'DELETE' })).status).toBe(200);
    }
    expect((await json(await fetch(v2('/models/fixed')))).versions).toEqual(['1.0']);
  });

  test('ready: 200 for a model that serves, 404 JSON error for an unknown one or version', async () => {
    expect(await json(await fetch(v2('/models/two/ready')))).toEqual({ name: 'two', ready: true });
    const unknown = await fetch(v2('/models/nope/ready'));
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ error: expect.stringContaining('nope') });
    expect((await fetch(v2('/models/two/versions/9/ready'))).status).toBe(404);
  });

  test('Triton model config: batched model drops the batch dimension; unbatched keeps it with max_batch_size 0', async () => {
    const batched = await json(await fetch(v2('/models/two/config')));
    expect(batched).toMatchObject({
      name: 'two', platform: 'onnxruntime_onnx', backend: 'onnxruntime', max_batch_size: 4,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [3] }],
      output: [{ name: 'plus', data_type: 'TYPE_FP32', dims: [3] }, { name: 'times', data_type: 'TYPE_FP32', dims: [3] }],
      dynamic_batching: { max_queue_delay_microseconds: 5000 },
    });
    const plain = await json(await fetch(v2('/models/fixed/config')));
    expect(plain).toMatchObject({ max_batch_size: 0, input: [{ name: 'in', data_type: 'TYPE_FP32', dims: [2, 2] }] });
    expect(plain.dynamic_batching).toBeUndefined();
    expect((await json(await fetch(v2('/models/words/config')))).input[0].data_type).toBe('TYPE_STRING');
  });
});

describe('inference', () => {
  test('JSON tensors, flat and nested, with the request id and every output', async () => {
    const flat = await postJson(v2('/models/two/infer'), { id: 'r-1', inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] });
    expect(flat.status).toBe(200);
    expect(await json(flat)).toEqual({
      model_name: 'two', model_version: '1.0', id: 'r-1',
      outputs: [
        { name: 'plus', datatype: 'FP32', shape: [2, 3], data: [2, 3, 4, 5, 6, 7] },
        { name: 'times', datatype: 'FP32', shape: [2, 3], data: [2, 4, 6, 8, 10, 12] },
      ],
    });
    const nested = await json(await postJson(v2('/models/two/versions/1.0/infer'), { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [[1, 1, 1]] }] }));
    expect(nested.outputs[0].data).toEqual([2, 2, 2]);
  });

  test('classification: the top classes of an output as BYTES "value:index", in JSON or binary', async () => {
    const body = (binary: boolean) => ({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 5, 3, 9, 7, 8] }], outputs: [{ name: 'times', parameters: { classification: 2, binary_data: binary } }] });
    const answer = await json(await postJson(v2('/models/two/infer'), body(false)));
    expect(answer.outputs).toEqual([{ name: 'times', datatype: 'BYTES', shape: [2, 2], data: ['10.000000:1', '6.000000:2', '18.000000:0', '16.000000:2'] }]);
    const bin = await binaryAnswer(await postJson(v2('/models/two/infer'), body(true)));
    expect(bin.header.outputs[0]).toMatchObject({ name: 'times', datatype: 'BYTES', shape: [2, 2] });
    expect(bin.rest.readUInt32LE(0)).toBe('10.000000:1'.length);
    expect(bin.rest.subarray(4, 15).toString()).toBe('10.000000:1');
    const bad = await postJson(v2('/models/two/infer'), { ...body(false), outputs: [{ name: 'times', parameters: { classification: 'two' } }] });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatch(/classification must be a whole number/);
  });

  test('requested outputs: only those, in the order asked, binary where asked', async () => {
    const r = await postJson(v2('/models/two/infer'), {
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }],
      outputs: [{ name: 'times', parameters: { binary_data: true } }, { name: 'plus' }],
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/octet-stream/);
    const { header, rest } = await binaryAnswer(r);
    expect(header.outputs).toEqual([
      { name: 'times', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: 12 } },
      { name: 'plus', datatype: 'FP32', shape: [1, 3], data: [2, 3, 4] },
    ]);
    expect(Array.from(new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + 12)))).toEqual([2, 4, 6]);
  });

  test('binary inputs and binary_data_output (what tritonclient sends when it names no outputs)', async () => {
    const { body, headers } = binaryBody(
      { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } }], parameters: { binary_data_output: true } },
      [f32([0, 1, 2, 3, 4, 5])],
    );
    const r = await fetch(v2('/models/two/infer'), { method: 'POST', headers, body });
    expect(r.status).toBe(200);
    const { header, rest } = await binaryAnswer(r);
    expect(header.outputs.map((o: any) => o.parameters.binary_data_size)).toEqual([24, 24]);
    const values = new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + 48));
    expect(Array.from(values)).toEqual([1, 2, 3, 4, 5, 6, 0, 2, 4, 6, 8, 10]);
  });

  test('a raw body (Inference-Header-Content-Length: 0) is the one input', async () => {
    const r = await fetch(v2('/models/fixed/infer'), { method: 'POST', headers: { 'inference-header-content-length': '0' }, body: Buffer.from(f32([1, 2, 3, 4])) });
    expect(r.status).toBe(200);
    // No header to ask for JSON: the outputs come back binary.
    const { header, rest } = await binaryAnswer(r);
    expect(header.outputs[0]).toEqual({ name: 'out', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } });
    expect(Array.from(new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + 16)))).toEqual([1, 2, 3, 4]);
    const short = await fetch(v2('/models/fixed/infer'), { method: 'POST', headers: { 'inference-header-content-length': '0' }, body: Buffer.from(f32([1, 2, 3])) });
    expect(short.status).toBe(400);
  });

  test('a large binary answer (sections over 64 KiB, written without joining) arrives whole and in order', async () => {
    const rows = 8000;
    const values = Array.from({ length: rows * 3 }, (_, i) => i % 997);
    const { body, headers } = binaryBody({ inputs: [{ name: 'x', shape: [rows, 3], datatype: 'FP32', parameters: { binary_data_size: rows * 12 } }], parameters: { binary_data_output: true } }, [f32(values)]);
    const r = await fetch(v2('/models/two/infer'), { method: 'POST', headers, body });
    expect(r.status).toBe(200);
    expect(Number(r.headers.get('content-length'))).toBeGreaterThan(2 * rows * 12);
    const { header, rest } = await binaryAnswer(r);
    expect(header.outputs.map((o: any) => [o.name, o.parameters.binary_data_size])).toEqual([['plus', rows * 12], ['times', rows * 12]]);
    const out = new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + rest.byteLength));
    expect(Array.from(out.subarray(0, rows * 3))).toEqual(values.map((v) => v + 1));
    expect(Array.from(out.subarray(rows * 3))).toEqual(values.map((v) => v * 2));
  });

  test('gzip and deflate bodies (tritonclient\'s request_compression_algorithm) are inflated; others are 415', async () => {
    const { body, headers } = binaryBody({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }, [f32([1, 2, 3])]);
    for (const [encoding, packed] of [['gzip', zlib.gzipSync(body)], ['deflate', zlib.deflateSync(body)]] as const) {
      const r = await fetch(v2('/models/two/infer'), { method: 'POST', headers: { ...headers, 'content-encoding': encoding }, body: packed });
      expect(r.status).toBe(200);
      expect((await json(r)).outputs[0].data).toEqual([2, 3, 4]);
    }
    const br = await fetch(v2('/models/two/infer'), { method: 'POST', headers: { ...headers, 'content-encoding': 'br' }, body });
    expect(br.status).toBe(415);
    const broken = await fetch(v2('/models/two/infer'), { method: 'POST', headers: { ...headers, 'content-encoding': 'gzip' }, body });
    expect(broken.status).toBe(400);
  });

  test('FP16, INT64, BOOL and BYTES pass through, as JSON and as binary', async () => {
    const half = await json(await postJson(v2('/models/half/infer'), { inputs: [{ name: 'in', shape: [2], datatype: 'FP16', data: [1.5, -2] }] }));
    expect(half.outputs[0]).toEqual({ name: 'out', datatype: 'FP16', shape: [2], data: [1.5, -2] });
    const big = await json(await postJson(v2('/models/big/infer'), { inputs: [{ name: 'in', shape: [3], datatype: 'INT64', data: [1, -2, 2 ** 40] }] }));
    expect(big.outputs[0].data).toEqual([1, -2, 2 ** 40]);
    const flags = await json(await postJson(v2('/models/flags/infer'), { inputs: [{ name: 'in', shape: [2], datatype: 'BOOL', data: [true, false] }] }));
    expect(flags.outputs[0].data).toEqual([true, false]);
    const words = await json(await postJson(v2('/models/words/infer'), { inputs: [{ name: 'in', shape: [2], datatype: 'BYTES', data: ['héllo', ''] }] }));
    expect(words.outputs[0]).toEqual({ name: 'out', datatype: 'BYTES', shape: [2], data: ['héllo', ''] });

    // BYTES in binary: each element a 4-byte little-endian length, then its bytes.
    const element = (text: string) => {
      const b = Buffer.from(text);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return Buffer.concat([len, b]);
    };
    const section = Buffer.concat([element('ab'), element('xyz')]);
    const { body, headers } = binaryBody(
      { inputs: [{ name: 'in', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: section.length } }], outputs: [{ name: 'out', parameters: { binary_data: true } }] },
      [section],
    );
    const r = await fetch(v2('/models/words/infer'), { method: 'POST', headers, body });
    const answer = await binaryAnswer(r);
    expect(answer.header.outputs[0].parameters.binary_data_size).toBe(section.length);
    expect(answer.rest.equals(section)).toBe(true);

    const halfBits = Buffer.from(new Uint16Array([0x3c00, 0xc000]).buffer); // 1, -2
    const hb = binaryBody({ inputs: [{ name: 'in', shape: [2], datatype: 'FP16', parameters: { binary_data_size: 4 } }] }, [halfBits]);
    const hr = await json(await fetch(v2('/models/half/infer'), { method: 'POST', headers: hb.headers, body: hb.body }));
    expect(hr.outputs[0].data).toEqual([1, -2]);
  });

  test('an image body, and a BYTES input holding the image, go through the model\'s image preprocessing', async () => {
    const jpeg = await solidJpeg(16, 16, [255, 0, 0]);
    const direct = await fetch(v2('/models/mean/infer'), { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg });
    expect(direct.status).toBe(200);
    const means = (await json(direct)).outputs[0];
    expect(means.shape).toEqual([1, 3, 1, 1]);
    expect(means.data[0]).toBeGreaterThan(0.9);
    expect(means.data[2]).toBeLessThan(0.1);
    const asBytes = await json(await postJson(v2('/models/mean/infer'), { inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [jpeg.toString('base64')] }] }));
    expect(asBytes.outputs[0].data).toEqual(means.data);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(jpeg.length);
    const b = binaryBody({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: jpeg.length + 4 } }] }, [len, jpeg]);
    const asBinary = await json(await fetch(v2('/models/mean/infer'), { method: 'POST', headers: b.headers, body: b.body }));
    expect(asBinary.outputs[0].data).toEqual(means.data);
  });
});

describe('errors: a status and {"error": "..."}', () => {
  const cases: [string, string, object | Buffer, Record<string, string>, number, RegExp][] = [
    ['unknown model', '/models/nope/infer', { inputs: [] }, {}, 404, /nope/],
    ['unknown version', '/models/two/versions/7/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }, {}, 404, /version/],
    ['unknown input', '/models/two/infer', { inputs: [{ name: 'q', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }, {}, 400, /no input named "q"/],
    ['wrong datatype', '/models/two/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT32', data: [1, 2, 3] }] }, {}, 400, /datatype INT32/],
    ['data that does not fill the shape', '/models/two/infer', { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3] }] }, {}, 400, /needs 6/],
    ['unknown output', '/models/two/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }], outputs: [{ name: 'nope' }] }, {}, 400, /no output named/],
    ['BF16 (no ONNX session input here takes it)', '/models/two/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'BF16', data: [1, 2, 3] }] }, {}, 400, /BF16/],
    ['a header length past the body', '/models/two/infer', Buffer.from('{"inputs":[]}'), { 'inference-header-content-length': '999' }, 400, /999/],
    ['binary sizes past the body', '/models/two/infer', binaryBody({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }, [f32([1])]).body,
      { 'inference-header-content-length': String(Buffer.byteLength(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }))) }, 400, /12 bytes/],
    ['not JSON', '/models/two/infer', Buffer.from('{"inputs": [tru'), {}, 400, /not valid JSON/],
    ['an empty body', '/models/two/infer', Buffer.alloc(0), {}, 400, /empty/],
  ];
  test.each(cases)('%s', async (_what, route, body, headers, status, message) => {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const r = await fetch(v2(route), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
    expect(r.status).toBe(status);
    const answer = await json(r);
    expect(Object.keys(answer)).toEqual(['error']);
    expect(answer.error).toMatch(message);
  });

  test('an unknown /v2 route answers in the same form', async () => {
    const r = await fetch(v2('/nothing/here'));
    expect(r.status).toBe(404);
    expect(await json(r)).toEqual({ error: expect.any(String) });
  });
});

describe('statistics extension', () => {
  test('per version: successes, failures and the stages, with equal compute counts; every model at /v2/models/stats', async () => {
    const fixedStats = async () => (await json(await fetch(v2('/models/fixed/stats')))).model_stats[0];
    const before = await fixedStats();
    const ok = () => postJson(v2('/models/fixed/infer'), { inputs: [{ name: 'in', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    for (let i = 0; i < 3; i++) expect((await ok()).status).toBe(200);
    expect((await postJson(v2('/models/fixed/infer'), { inputs: [{ name: 'in', shape: [3], datatype: 'FP32', data: [1, 2, 3] }] })).status).toBe(400);
    const r = await fetch(v2('/models/fixed/stats'));
    expect(r.status).toBe(200);
    const { model_stats: stats } = await json(r);
    expect(stats).toHaveLength(1);
    const [fixed] = stats;
    // Versions as Triton names them, whole numbers: perf_analyzer parses them as integers.
    expect(fixed).toMatchObject({ name: 'fixed', version: '1', inference_count: before.inference_count + 3, execution_count: before.execution_count + 3 });
    expect(fixed.last_inference).toBeGreaterThan(Date.now() - 60_000);
    expect(fixed).toMatchObject({ response_stats: {}, memory_usage: [] });
    const st = fixed.inference_stats;
    const was = before.inference_stats;
    const counts = (x: typeof st) => ['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output'].map((k) => x[k].count);
    expect(counts(st).map((n, i) => n - counts(was)[i])).toEqual([3, 1, 3, 3, 3, 3]);
    expect(st.compute_input.count).toBe(st.success.count);
    expect(st.compute_infer.ns).toBeGreaterThan(0);
    // The stages happen within the request's time.
    expect(st.queue.ns + st.compute_input.ns + st.compute_infer.ns + st.compute_output.ns).toBeLessThanOrEqual(st.success.ns);
    expect(fixed.batch_stats).toEqual([expect.objectContaining({ batch_size: 1, compute_infer: { count: st.success.count, ns: expect.any(Number) } })]);

    expect((await json(await fetch(v2('/models/fixed/versions/1.0/stats')))).model_stats[0].inference_count).toBe(fixed.inference_count);
    expect((await json(await fetch(v2('/models/fixed/versions/1/stats')))).model_stats[0].inference_count).toBe(fixed.inference_count);
    const all = (await json(await fetch(v2('/models/stats')))).model_stats as { name: string }[];
    expect(all.map((m) => m.name)).toEqual(expect.arrayContaining(['two', 'half', 'fixed', 'mean']));
    const unknown = await fetch(v2('/models/nope/stats'));
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ error: expect.stringContaining('nope') });
  });
});

describe('logging extension', () => {
  test('GET reads the level as Triton\'s settings; POST changes it and answers them all; what one level cannot say is a 400', async () => {
    const settings = async () => json(await fetch(v2('/logging')));
    const post = (body: unknown) => postJson(v2('/logging'), body);
    const before = await settings();
    expect(Object.keys(before).sort()).toEqual(['log_errors', 'log_file', 'log_format', 'log_info', 'log_verbose_level', 'log_warnings']);
    try {
      const verbose = await post({ log_verbose_level: 1 });
      expect(verbose.status).toBe(200);
      expect(await json(verbose)).toEqual({ log_file: '', log_info: true, log_warnings: true, log_errors: true, log_verbose_level: 1, log_format: 'default' });
      expect(await settings()).toMatchObject({ log_verbose_level: 1, log_info: true });
      expect(await json(await post({ log_verbose_level: 0, log_info: false }))).toMatchObject({ log_info: false, log_warnings: true, log_verbose_level: 0 });
      for (const [body, message] of [[{ log_warnings: false, log_info: true }, /nest/], [{ log_file: '/tmp/triton.log' }, /standard output/], [{ nope: 1 }, /unknown log setting/]] as const) {
        const r = await post(body);
        expect(r.status).toBe(400);
        expect((await json(r)).error).toMatch(message);
      }
      // A refused update changes nothing.
      expect(await settings()).toMatchObject({ log_info: false, log_warnings: true });
    } finally {
      await post({ log_verbose_level: before.log_verbose_level, log_info: before.log_info, log_warnings: before.log_warnings, log_errors: before.log_errors });
    }
    expect(await settings()).toEqual(before);
  });
});

describe('model repository extension', () => {
  test('index lists registered models and the store\'s others; load (with a config) → infer → unload', async () => {
    const before = await json(await fetch(v2('/repository/index'), { method: 'POST' }));
    expect(before).toContainEqual({ name: 'two', version: '1.0', state: 'READY', reason: '' });
    expect(before).toContainEqual({ name: 'triton', version: '', state: 'UNAVAILABLE', reason: 'unloaded' });

    const config = JSON.stringify({ max_batch_size: 8, dynamic_batching: { max_queue_delay_microseconds: 2000 }, instance_group: [{ count: 1, kind: 'KIND_CPU' }] });
    const loaded = await postJson(v2('/repository/models/triton/load'), { parameters: { config } });
    expect(loaded.status).toBe(200);
    // Triton's <version>/model.onnx layout gives the version.
    expect(await json(await fetch(v2('/models/triton')))).toMatchObject({ versions: ['3'] });
    expect(await json(await fetch(v2('/models/triton/config')))).toMatchObject({ max_batch_size: 8, dynamic_batching: { max_queue_delay_microseconds: 2000 } });
    const out = await json(await postJson(v2('/models/triton/versions/3/infer'), { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }));
    expect(out.outputs[1].data).toEqual([2, 4]);
    const ready = await json(await fetch(v2('/repository/index'), { method: 'POST', body: JSON.stringify({ ready: true }), headers: { 'content-type': 'application/json' } }));
    expect(ready.every((m: any) => m.state === 'READY')).toBe(true);
    expect(ready.map((m: any) => m.name)).toContain('triton');

    expect((await fetch(v2('/repository/models/triton/unload'), { method: 'POST' })).status).toBe(200);
    expect((await fetch(v2('/models/triton/ready'))).status).toBe(404);
    // MMS sees the same lifecycle.
    expect((await fetch(`${s.management}/models/triton`)).status).toBe(404);
  });

  test('load of a model the store does not have, or with model files in the request, is refused', async () => {
    const missing = await fetch(v2('/repository/models/absent/load'), { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ error: expect.stringContaining('absent') });
    const files = await postJson(v2('/repository/models/two/load'), { parameters: { 'file:1/model.onnx': 'AAAA' } });
    expect(files.status).toBe(400);
  });
});
