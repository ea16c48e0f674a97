// Triton's system shared memory extension over real HTTP and gRPC, as tritonclient's shm examples use it:
// regions of /dev/shm objects registered, tensors read from and written to them, status and unregister;
// and a server started without allow_client_shm, which takes none.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { clientConstructors } from '../../src/grpc/protos';
import { twoOutputModel, writeModelFolder } from '../fixtures/onnx-models';
import { call, failure } from '../fixtures/grpc-calls';
import { TestServer, json, postJson, startServer, tempDir } from '../fixtures/server';

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const floats = (b: Buffer) => Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));

/** A POSIX shared memory object, as shm_open(key, O_CREAT) and ftruncate leave it. */
const keys: string[] = [];
function shmObject(bytes: number | Buffer): string {
  const key = `/quiver-test-${process.pid}-${keys.length}`;
  fs.writeFileSync(path.join('/dev/shm', key), typeof bytes === 'number' ? Buffer.alloc(bytes) : bytes);
  keys.push(key);
  return key;
}
const contents = (key: string) => fs.readFileSync(path.join('/dev/shm', key));

let s: TestServer;
let off: TestServer;
let inference: grpc.Client;
let inferenceOff: grpc.Client;

beforeAll(async () => {
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'two'), twoOutputModel(3));
  s = await startServer({ workers: '1', 'model-store': store, models: ['two'], 'allow-client-shm': 'true' });
  off = await startServer({ workers: '1', 'model-store': store, models: ['two'] });
  const C = clientConstructors();
  inference = new C.inference(s.grpc, grpc.credentials.createInsecure());
  inferenceOff = new C.inference(off.grpc, grpc.credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  inference?.close();
  inferenceOff?.close();
  await s?.close();
  await off?.close();
  for (const key of keys) fs.rmSync(path.join('/dev/shm', key), { force: true });
});

const v2 = (p: string) => `${s.inference}/v2${p}`;
const register = (name: string, body: object) => postJson(v2(`/systemsharedmemory/region/${name}/register`), body);

describe('REST', () => {
  test('listed in extensions where allow_client_shm is on', async () => {
    expect((await json(await fetch(v2('')))).extensions).toContain('system_shared_memory');
  });

  test('register, status, infer with inputs and outputs in regions, unregister', async () => {
    // As tritonclient's simple_http_shm_client starts: both kinds unregistered (no CUDA regions here).
    expect((await fetch(v2('/systemsharedmemory/unregister'), { method: 'POST' })).status).toBe(200);
    expect((await fetch(v2('/cudasharedmemory/unregister'), { method: 'POST' })).status).toBe(200);
    expect(await json(await fetch(v2('/cudasharedmemory/status')))).toEqual([]);
    const cuda = await postJson(v2('/cudasharedmemory/region/c/register'), { raw_handle: { b64: '' }, device_id: 0, byte_size: 8 });
    expect(cuda.status).toBe(400);
    expect(await json(cuda)).toEqual({ error: expect.stringContaining('CUDA shared memory is not supported') });
    const input = shmObject(f32([1, 2, 3, 4, 5, 6]));
    const output = shmObject(48);
    expect((await register('in', { key: input, offset: 0, byte_size: 24 })).status).toBe(200);
    expect((await register('out', { key: output, offset: 0, byte_size: 48 })).status).toBe(200);
    expect(await json(await fetch(v2('/systemsharedmemory/status')))).toEqual(expect.arrayContaining([
      { name: 'in', key: input, offset: 0, byte_size: 24 }, { name: 'out', key: output, offset: 0, byte_size: 48 },
    ]));
    expect(await json(await fetch(v2('/systemsharedmemory/region/in/status')))).toEqual([{ name: 'in', key: input, offset: 0, byte_size: 24 }]);

    const r = await postJson(v2('/models/two/infer'), {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 24 } }],
      outputs: [
        { name: 'plus', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 24 } },
        { name: 'times', parameters: { shared_memory_region: 'out', shared_memory_offset: 24, shared_memory_byte_size: 24 } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    const answer = await json(r);
    // As Triton answers: no data and no parameters (its C++ client reads any as a binary section's).
    expect(answer.outputs).toEqual([{ name: 'plus', datatype: 'FP32', shape: [2, 3] }, { name: 'times', datatype: 'FP32', shape: [2, 3] }]);
    expect(floats(contents(output))).toEqual([2, 3, 4, 5, 6, 7, 2, 4, 6, 8, 10, 12]);

    // One output to a region, the other as JSON data: only that one is in the answer's body.
    fs.writeFileSync(path.join('/dev/shm', input), f32([0, 1, 2, 3, 4, 5]));
    const mixed = await json(await postJson(v2('/models/two/infer'), {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 24 } }],
      outputs: [{ name: 'plus', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 24 } }, { name: 'times' }],
    }));
    expect(mixed.outputs[1]).toEqual({ name: 'times', datatype: 'FP32', shape: [2, 3], data: [0, 2, 4, 6, 8, 10] });
    expect(floats(contents(output).subarray(0, 24))).toEqual([1, 2, 3, 4, 5, 6]);

    // tritonclient.http.aio posts an all-shared-memory request as application/octet-stream, with no
    // header length: the body is the JSON header, as Triton reads it.
    fs.writeFileSync(path.join('/dev/shm', input), f32([3, 3, 3, 3, 3, 3]));
    const aio = await fetch(v2('/models/two/infer'), {
      method: 'POST', headers: { 'content-type': 'application/octet-stream' },
      body: JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 24 } }],
        outputs: [{ name: 'times', parameters: { shared_memory_region: 'out', shared_memory_offset: 24, shared_memory_byte_size: 24 } }],
      }),
    });
    expect(aio.status).toBe(200);
    expect((await json(aio)).outputs).toEqual([{ name: 'times', datatype: 'FP32', shape: [2, 3] }]);
    expect(floats(contents(output).subarray(24))).toEqual([6, 6, 6, 6, 6, 6]);

    expect((await fetch(v2('/systemsharedmemory/region/in/unregister'), { method: 'POST' })).status).toBe(200);
    expect((await fetch(v2('/systemsharedmemory/region/in/status'))).status).toBe(404);
    expect((await fetch(v2('/systemsharedmemory/unregister'), { method: 'POST' })).status).toBe(200);
    expect(await json(await fetch(v2('/systemsharedmemory/status')))).toEqual([]);
  });

  test('refused with a JSON error: a name taken, a key out of /dev/shm or missing, past the end, an output region too small, an unknown region', async () => {
    const key = shmObject(24);
    expect((await register('taken', { key, offset: 0, byte_size: 24 })).status).toBe(200);
    const taken = await register('taken', { key, offset: 0, byte_size: 24 });
    expect(taken.status).toBe(409);
    expect(await json(taken)).toEqual({ error: expect.stringContaining('already registered') });
    for (const bad of [{ key: '/../etc/passwd', byte_size: 8 }, { key: '/no-such-object', byte_size: 8 }, { key, offset: 8, byte_size: 24 }, { key, byte_size: -1 }]) {
      const r = await register('bad', bad);
      expect(r.status).toBe(400);
      expect(await json(r)).toEqual({ error: expect.any(String) });
    }
    const infer = (outputBytes: number, region = 'taken') => postJson(v2('/models/two/infer'), {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
      outputs: [{ name: 'plus', parameters: { shared_memory_region: region, shared_memory_byte_size: outputBytes } }],
    });
    const small = await infer(8);
    expect(small.status).toBe(400);
    expect((await json(small)).error).toMatch(/should be at least 12 bytes/);
    expect((await infer(12, 'nope')).status).toBe(404);
    // The server goes on serving.
    expect((await infer(12)).status).toBe(200);
    expect(floats(contents(key).subarray(0, 12))).toEqual([2, 3, 4]);
    await fetch(v2('/systemsharedmemory/unregister'), { method: 'POST' });
  });

  test('a sparse object far larger than memory: reading more than the request limit is 413, and the server lives', async () => {
    const key = shmObject(0);
    fs.truncateSync(path.join('/dev/shm', key), 2 ** 40);
    expect((await register('huge', { key, offset: 0, byte_size: 2 ** 40 })).status).toBe(200);
    const r = await postJson(v2('/models/two/infer'), {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2 ** 30, 3], parameters: { shared_memory_region: 'huge', shared_memory_byte_size: 2 ** 40 } }],
    });
    expect(r.status).toBe(413);
    expect(await json(r)).toEqual({ error: expect.stringContaining('oip_max_request_size') });
    const grpcRefused = await failure(call(inference, 'ModelInfer', {
      model_name: 'two',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2 ** 30, 3], parameters: { shared_memory_region: { string_param: 'huge' }, shared_memory_byte_size: { int64_param: 2 ** 40 } } }],
    }));
    expect(grpcRefused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await fetch(v2('/systemsharedmemory/region/huge/unregister'), { method: 'POST' });
    expect((await fetch(v2('/health/ready'))).status).toBe(200);
  });

  test('off by default: not listed, registering is 403; status lists none and unregistering succeeds (clients unregister first)', async () => {
    expect((await json(await fetch(`${off.inference}/v2`))).extensions).not.toContain('system_shared_memory');
    const r = await postJson(`${off.inference}/v2/systemsharedmemory/region/r/register`, { key: shmObject(8), offset: 0, byte_size: 8 });
    expect(r.status).toBe(403);
    expect(await json(r)).toEqual({ error: expect.stringContaining('allow_client_shm') });
    expect(await json(await fetch(`${off.inference}/v2/systemsharedmemory/status`))).toEqual([]);
    expect((await fetch(`${off.inference}/v2/systemsharedmemory/region/r/status`)).status).toBe(404);
    for (const kind of ['system', 'cuda']) expect((await fetch(`${off.inference}/v2/${kind}sharedmemory/unregister`, { method: 'POST' })).status).toBe(200);
    expect(await json(await fetch(`${off.inference}/v2/cudasharedmemory/status`))).toEqual([]);
    const infer = await postJson(`${off.inference}/v2/models/two/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: { shared_memory_region: 'r', shared_memory_byte_size: 12 } }],
    });
    expect(infer.status).toBe(403);
    expect(await json(infer)).toEqual({ error: expect.stringContaining('allow_client_shm is false') });
    // An output in a region would be left unwritten (the client would read stale bytes): refused too.
    const output = await postJson(`${off.inference}/v2/models/two/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
      outputs: [{ name: 'plus', parameters: { shared_memory_region: 'r', shared_memory_byte_size: 12 } }],
    });
    expect(output.status).toBe(403);
  });

  test('bytes read from regions count against max_inflight_bytes: 503 / UNAVAILABLE past it, and are given back', async () => {
    const tight = await startServer({ workers: '1', 'model-store': s.store, models: ['two'], 'allow-client-shm': 'true', 'max-inflight-bytes': '16384' });
    const client = new (clientConstructors().inference)(tight.grpc, grpc.credentials.createInsecure());
    try {
      const key = shmObject(24480);
      expect((await postJson(`${tight.inference}/v2/systemsharedmemory/region/big/register`, { key, offset: 0, byte_size: 24480 })).status).toBe(200);
      const input = { name: 'x', datatype: 'FP32', shape: [2040, 3] };
      const r = await postJson(`${tight.inference}/v2/models/two/infer`, { inputs: [{ ...input, parameters: { shared_memory_region: 'big', shared_memory_byte_size: 24480 } }] });
      expect(r.status).toBe(503);
      expect((await json(r)).error).toMatch(/max_inflight_bytes/);
      const g = await failure(call(client, 'ModelInfer', {
        model_name: 'two', inputs: [{ ...input, parameters: { shared_memory_region: { string_param: 'big' }, shared_memory_byte_size: { int64_param: 24480 } } }],
      }));
      expect(g.code).toBe(grpc.status.UNAVAILABLE);
      // A small one still goes.
      const small = await postJson(`${tight.inference}/v2/models/two/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: { shared_memory_region: 'big', shared_memory_byte_size: 12 } }] });
      expect(small.status).toBe(200);
      // What a call held is given back when it is answered: ten calls of 8 KB in turn all go under 16 KB
      // (a body over 4 KB goes to the worker by transfer, which empties it here).
      for (let i = 0; i < 10; i++) {
        const r8k = await call(client, 'ModelInfer', {
          model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [680, 3], parameters: { shared_memory_region: { string_param: 'big' }, shared_memory_byte_size: { int64_param: 8160 } } }],
        });
        expect(r8k.outputs).toHaveLength(2);
      }
    } finally {
      client.close();
      await tight.close();
    }
  });
});

describe('gRPC', () => {
  const shmParams = (region: string, bytes: number, offset = 0) => ({
    shared_memory_region: { string_param: region },
    shared_memory_byte_size: { int64_param: bytes },
    ...(offset ? { shared_memory_offset: { int64_param: offset } } : {}),
  });

  test('register, status, ModelInfer through regions (an empty raw entry for each such output), unregister', async () => {
    const input = shmObject(f32([1, 2, 3]));
    const output = shmObject(24);
    await call(inference, 'SystemSharedMemoryRegister', { name: 'gin', key: input, offset: 0, byte_size: 12 });
    await call(inference, 'SystemSharedMemoryRegister', { name: 'gout', key: output, offset: 0, byte_size: 24 });
    const status = await call(inference, 'SystemSharedMemoryStatus', { name: '' });
    expect(status.regions.gin).toEqual({ name: 'gin', key: input, offset: 0, byte_size: 12 });
    expect(Object.keys(status.regions).sort()).toEqual(['gin', 'gout']);
    expect((await call(inference, 'ServerMetadata', {})).extensions).toContain('system_shared_memory');

    const r = await call(inference, 'ModelInfer', {
      model_name: 'two',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: shmParams('gin', 12) }],
      outputs: [{ name: 'plus', parameters: shmParams('gout', 12) }, { name: 'times', parameters: shmParams('gout', 12, 12) }],
    });
    expect(r.outputs.map((o: any) => [o.name, o.datatype, o.shape])).toEqual([['plus', 'FP32', [1, 3]], ['times', 'FP32', [1, 3]]]);
    expect(r.raw_output_contents.map((b: Buffer) => b.length)).toEqual([0, 0]);
    expect(floats(contents(output))).toEqual([2, 3, 4, 2, 4, 6]);

    // An input in a region beside none in raw_input_contents; an output asked for as raw.
    const mixed = await call(inference, 'ModelInfer', {
      model_name: 'two',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: shmParams('gin', 12) }],
      outputs: [{ name: 'times' }],
    });
    expect(floats(mixed.raw_output_contents[0])).toEqual([2, 4, 6]);

    const unknown = await failure(call(inference, 'SystemSharedMemoryStatus', { name: 'nope' }));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    const taken = await failure(call(inference, 'SystemSharedMemoryRegister', { name: 'gin', key: input, offset: 0, byte_size: 12 }));
    expect(taken.code).toBe(grpc.status.ALREADY_EXISTS);
    const wrongType = await failure(call(inference, 'ModelInfer', {
      model_name: 'two',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: { shared_memory_region: { int64_param: 1 }, shared_memory_byte_size: { int64_param: 12 } } }],
    }));
    expect(wrongType.code).toBe(grpc.status.INVALID_ARGUMENT);
    await call(inference, 'SystemSharedMemoryUnregister', { name: '' });
    expect(await call(inference, 'SystemSharedMemoryStatus', { name: '' })).toEqual({ regions: {} });
    // No CUDA regions: status empty, unregister succeeds, register is refused.
    expect(await call(inference, 'CudaSharedMemoryUnregister', { name: '' })).toEqual({});
    expect(await call(inference, 'CudaSharedMemoryStatus', { name: '' })).toEqual({ regions: {} });
    expect((await failure(call(inference, 'CudaSharedMemoryRegister', { name: 'c', raw_handle: Buffer.alloc(64), device_id: 0, byte_size: 8 }))).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  test('off by default: PERMISSION_DENIED for registering and for a tensor naming a region; status lists none, unregistering succeeds', async () => {
    expect((await call(inferenceOff, 'ServerMetadata', {})).extensions).not.toContain('system_shared_memory');
    expect(await call(inferenceOff, 'SystemSharedMemoryStatus', {})).toEqual({ regions: {} });
    expect(await call(inferenceOff, 'SystemSharedMemoryUnregister', {})).toEqual({});
    expect(await call(inferenceOff, 'CudaSharedMemoryUnregister', {})).toEqual({});
    expect((await failure(call(inferenceOff, 'SystemSharedMemoryRegister', { name: 'r', key: shmObject(8), offset: 0, byte_size: 8 }))).code).toBe(grpc.status.PERMISSION_DENIED);
    const infer = await failure(call(inferenceOff, 'ModelInfer', {
      model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: shmParams('r', 12) }],
    }));
    expect(infer.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});
