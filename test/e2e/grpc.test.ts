// gRPC over a real socket, driven as Triton's gRPC client and ModelMesh drive a runtime:
// GRPCInferenceService (KServe v2 + Triton's config and repository RPCs), gRPC health, mmesh.ModelRuntime.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http2 from 'node:http2';
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { BUILTIN_MODEL_STORE } from '../../src/config/schema';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from '../../src/grpc/flow-control';
import { clientConstructors } from '../../src/grpc/protos';
import { addModel, scaleModel, twoOutputModel, writeModelFolder } from '../fixtures/onnx-models';
import { writeFaultyModel } from '../fixtures/fault-models';
import { call, failure } from '../fixtures/grpc-calls';
import { TestServer, json, startServer, tempDir } from '../fixtures/server';

let s: TestServer;
let socketDir: string;
let inference: grpc.Client;
let health: grpc.Client;
let mesh: grpc.Client;
let meshInference: grpc.Client;

/** runtimeStatus until READY, as ModelMesh polls it (the listener is bound while the server still starts). */
async function whenReady(runtime: grpc.Client): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const status = await call(runtime, 'runtimeStatus', {});
    if (status.status === 'READY') return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runtimeStatus never said READY');
}

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const floats = (b: Buffer) => Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));

beforeAll(async () => {
  socketDir = tempDir('mesh');
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'two'), twoOutputModel(3));
  writeModelFolder(path.join(store, 'plus'), addModel([10, 20]));
  writeFaultyModel(store, 'slow');
  // A model as ModelMesh's puller leaves it: a folder with a file of its own name.
  fs.mkdirSync(path.join(store, 'pulled', 'mnist__isvc-1'), { recursive: true });
  fs.writeFileSync(path.join(store, 'pulled', 'mnist__isvc-1', 'mnist.onnx'), addModel([5, 6]));
  s = await startServer(
    { workers: '1', 'max-worker-threads': '1', 'model-store': store, models: ['two', 'plus', 'slow'], 'job-queue-size': '2', 'modelmesh-address': `unix:${path.join(socketDir, 'mesh.sock')}` },
  );
  const C = clientConstructors();
  inference = new C.inference(s.grpc, grpc.credentials.createInsecure());
  health = new C.health(s.grpc, grpc.credentials.createInsecure());
  mesh = new C.modelRuntime(`unix:${path.join(socketDir, 'mesh.sock')}`, grpc.credentials.createInsecure());
  meshInference = new C.inference(`unix:${path.join(socketDir, 'mesh.sock')}`, grpc.credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  for (const c of [inference, health, mesh, meshInference]) c?.close();
  await s?.close();
  fs.rmSync(socketDir, { recursive: true, force: true });
});

describe('GRPCInferenceService', () => {
  test('live, ready, server metadata', async () => {
    expect(await call(inference, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(inference, 'ServerReady', {})).toEqual({ ready: true });
    const meta = await call(inference, 'ServerMetadata', {});
    expect(meta).toEqual({ name: 'quiver', version: expect.any(String), extensions: ['binary_tensor_data', 'classification', 'logging', 'model_configuration', 'model_repository', 'statistics'] });
  });

  test('model ready and metadata; unknown model is NOT_FOUND', async () => {
    expect(await call(inference, 'ModelReady', { name: 'two', version: '' })).toEqual({ ready: true });
    const meta = await call(inference, 'ModelMetadata', { name: 'two', version: '1.0' });
    expect(meta).toMatchObject({ name: 'two', versions: ['1.0'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }] });
    expect(meta.outputs.map((o: any) => o.name)).toEqual(['plus', 'times']);
    expect((await failure(call(inference, 'ModelMetadata', { name: 'nope' }))).code).toBe(grpc.status.NOT_FOUND);
    // As Triton answers it: not ready, not an error.
    expect(await call(inference, 'ModelReady', { name: 'two', version: '9' })).toEqual({ ready: false });
    expect(await call(inference, 'ModelReady', { name: 'nope' })).toEqual({ ready: false });
  });

  test('model config (Triton\'s ModelConfig message)', async () => {
    const { config } = await call(inference, 'ModelConfig', { name: 'two' });
    expect(config).toMatchObject({ name: 'two', platform: 'onnxruntime_onnx', backend: 'onnxruntime', max_batch_size: 0 });
    expect(config.input[0]).toMatchObject({ name: 'x', data_type: 'TYPE_FP32', dims: [-1, 3] });
    expect(config.instance_group[0]).toMatchObject({ kind: 'KIND_CPU', count: 1 });
  });

  test('infer with raw_input_contents: every output in raw_output_contents', async () => {
    const r = await call(inference, 'ModelInfer', {
      model_name: 'two', id: 'g-1', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])],
    });
    expect(r).toMatchObject({ model_name: 'two', model_version: '1.0', id: 'g-1' });
    expect(r.outputs.map((o: any) => [o.name, o.datatype, o.shape])).toEqual([['plus', 'FP32', [1, 3]], ['times', 'FP32', [1, 3]]]);
    expect(floats(r.raw_output_contents[0])).toEqual([2, 3, 4]);
    expect(floats(r.raw_output_contents[1])).toEqual([2, 4, 6]);
  });

  test('infer with typed contents, and only the requested output', async () => {
    const r = await call(inference, 'ModelInfer', {
      model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: [0, 1, 2, 3, 4, 5] } }], outputs: [{ name: 'times' }],
    });
    expect(r.outputs.map((o: any) => o.name)).toEqual(['times']);
    expect(floats(r.raw_output_contents[0])).toEqual([0, 2, 4, 6, 8, 10]);
  });

  test('ModelStatistics: a model\'s versions, or every model when none is named', async () => {
    await call(inference, 'ModelInfer', { model_name: 'plus', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([1, 1])] });
    const { model_stats: plus } = await call(inference, 'ModelStatistics', { name: 'plus' });
    expect(plus).toHaveLength(1);
    expect(plus[0]).toMatchObject({ name: 'plus', version: '1' });
    expect(plus[0].inference_count).toBeGreaterThanOrEqual(1);
    const st = plus[0].inference_stats;
    expect(st.compute_input.count).toBe(st.compute_infer.count);
    expect(st.compute_output.count).toBe(st.success.count);
    const { model_stats: all } = await call(inference, 'ModelStatistics', {});
    expect(all.map((m: { name: string }) => m.name)).toEqual(expect.arrayContaining(['two', 'plus', 'slow']));
    expect((await failure(call(inference, 'ModelStatistics', { name: 'nope' }))).code).toBe(grpc.status.NOT_FOUND);
  });

  test('a sequence_id is INVALID_ARGUMENT (no sequence batching here); 0 is none', async () => {
    const request = (sequenceId: number) => ({
      model_name: 'two', parameters: { sequence_id: { int64_param: sequenceId } }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])],
    });
    const refused = await failure(call(inference, 'ModelInfer', request(9)));
    expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.details).toMatch(/sequence_id 9: .* no sequence batching/);
    expect((await call(inference, 'ModelInfer', request(0))).raw_output_contents).toHaveLength(2);
  });

  test('ModelStreamInfer: each request answered on the stream, matched by id; a bad one is an error_message and the stream goes on', async () => {
    const stream = (inference as unknown as { ModelStreamInfer(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, any> }).ModelStreamInfer(new grpc.Metadata());
    const answers: any[] = [];
    let arrived: () => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (m) => {
        answers.push(m);
        arrived();
      });
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const request = (id: string, values: number[]) => ({ model_name: 'two', id, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32(values)] });
    // One at a time: this server's job_queue_size is 2, and a streamed request counts against it too.
    for (const [id, values] of [['a', [1, 2, 3]], ['bad', [1]], ['b', [4, 5, 6]]] as const) {
      const answered = new Promise<void>((resolve) => (arrived = resolve));
      stream.write(request(id, [...values]));
      await answered;
    }
    stream.end();
    await done;
    expect(answers).toHaveLength(3);
    const byId = new Map(answers.map((m) => [m.infer_response?.id, m]));
    expect(byId.get('a').error_message).toBe('');
    expect(floats(byId.get('a').infer_response.raw_output_contents[0])).toEqual([2, 3, 4]);
    expect(floats(byId.get('b').infer_response.raw_output_contents[1])).toEqual([8, 10, 12]);
    expect(byId.get('bad').error_message).toMatch(/4 bytes/);
  });

  test('bad input is INVALID_ARGUMENT with a message that says why', async () => {
    const short = await failure(call(inference, 'ModelInfer', { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1])] }));
    expect(short.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(short.details).toMatch(/4 bytes/);
    const none = await failure(call(inference, 'ModelInfer', { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }] }));
    expect(none.code).toBe(grpc.status.INVALID_ARGUMENT);
    const type = await failure(call(inference, 'ModelInfer', { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 3], contents: { fp64_contents: [1, 2, 3] } }] }));
    expect(type.details).toMatch(/FP64/);
    expect((await failure(call(inference, 'ModelInfer', { model_name: 'ghost', inputs: [] }))).code).toBe(grpc.status.NOT_FOUND);
    const classes = await failure(call(inference, 'ModelInfer', {
      model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])], outputs: [{ name: 'plus', parameters: { classification: { int64_param: 0 } } }],
    }));
    expect(classes.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(classes.details).toMatch(/classification must be a whole number of classes/);
  });

  test('classification (int64_param): the top classes as BYTES "value:index" in raw_output_contents', async () => {
    const r = await call(inference, 'ModelInfer', {
      model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 5, 3])], outputs: [{ name: 'plus', parameters: { classification: { int64_param: 2 } } }],
    });
    // 'two' does not batch: one ranking over the whole output, shape [k], as Triton gives it.
    expect(r.outputs).toEqual([expect.objectContaining({ name: 'plus', datatype: 'BYTES', shape: [2] })]);
    // BYTES raw contents: each element a 4-byte little-endian length, then its bytes (as tritonclient reads them).
    const raw: Buffer = r.raw_output_contents[0];
    const strings: string[] = [];
    for (let at = 0; at < raw.length; at += 4 + raw.readUInt32LE(at)) strings.push(raw.subarray(at + 4, at + 4 + raw.readUInt32LE(at)).toString());
    expect(strings).toEqual(['6.000000:1', '4.000000:2']);
  });

  test('a message over grpc_max_message_size is refused, and the server goes on', async () => {
    const huge = await failure(call(inference, 'ModelInfer', { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [Buffer.alloc(70 * 2 ** 20)] }));
    expect(huge.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await call(inference, 'ServerLive', {})).toEqual({ live: true });
  });

  test('the server opens wide HTTP/2 windows: a client need not wait for a WINDOW_UPDATE every 64 KB of a tensor', async () => {
    const session = http2.connect(`http://${s.grpc}`);
    try {
      await new Promise<void>((resolve, reject) => session.once('remoteSettings', () => resolve()).once('error', reject));
      expect(session.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
      // The connection's WINDOW_UPDATE goes out as the session opens, before the answer to a later ping.
      await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
      expect(session.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
    } finally {
      session.destroy();
    }
    // And a tensor over both windows (9.6 MB) goes through.
    const rows = 1_200_000;
    const big = Array.from({ length: 2 * rows }, (_, i) => i % 7);
    const client = new (clientConstructors().inference)(s.grpc, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
    try {
      const res = await call(client, 'ModelInfer', { model_name: 'plus', inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 2] }], raw_input_contents: [f32(big)] });
      const out = floats(res.raw_output_contents[0]);
      expect(out).toHaveLength(2 * rows);
      expect([out[0], out[1], out[2 * rows - 2], out[2 * rows - 1]]).toEqual([big[0] + 10, big[1] + 20, big[2 * rows - 2] + 10, big[2 * rows - 1] + 20]);
    } finally {
      client.close();
    }
  });

  test('a full queue is UNAVAILABLE; a request past its response_timeout is DEADLINE_EXCEEDED', async () => {
    const scaled = await fetch(`${s.management}/models/slow?min_worker=1&synchronous=true`, { method: 'PUT' });
    expect(scaled.status).toBe(200);
    // The faulty handler sleeps on 1000 (MMS route: handlers run there), holding the one thread.
    const hold = () => fetch(`${s.inference}/predictions/slow`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=1500' }, body: JSON.stringify({ x: [[1000]] }),
    });
    const held = [hold(), hold()];
    await new Promise((r) => setTimeout(r, 100));
    const full = await failure(call(inference, 'ModelInfer', { model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1] }], raw_input_contents: [f32([1])] }));
    expect(full.code).toBe(grpc.status.UNAVAILABLE);
    expect(full.details).toMatch(/job_queue_size/);
    // Through ModelMesh the same is RESOURCE_EXHAUSTED: the one code on which it tries another copy.
    const meshed = new grpc.Metadata();
    meshed.set('mm-model-id', 'slow');
    const busy = await failure(call(inference, 'ModelInfer', { model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1] }], raw_input_contents: [f32([1])] }, meshed));
    expect(busy.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(busy.details).toMatch(/job_queue_size/);
    // Refused at the door counts as a failure in the statistics, as Triton counts it.
    expect((await call(inference, 'ModelStatistics', { name: 'slow' })).model_stats[0].inference_stats.fail.count).toBeGreaterThanOrEqual(2);
    await Promise.all(held);

    const registered = await fetch(`${s.management}/models?url=slow&model_name=slow1&response_timeout=1&synchronous=true`, { method: 'POST' });
    expect(registered.status).toBe(200);
    // slow1 shares the one thread with slow: its request waits behind slow's 2.5 s run, past its own 1 s.
    const blocker = fetch(`${s.inference}/predictions/slow`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=2500' }, body: JSON.stringify({ x: [[1000]] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    const late = await failure(call(inference, 'ModelInfer', { model_name: 'slow1', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1] }], raw_input_contents: [f32([1])] }));
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await blocker;
  }, 30_000);

  test('a call\'s own deadline drops its request from the queue: it does not wait for response_timeout', async () => {
    const blocker = fetch(`${s.inference}/predictions/slow`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=2000' }, body: JSON.stringify({ x: [[1000]] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    // two shares the one thread with slow, so this waits behind slow's run.
    const late = await failure(call(inference, 'ModelInfer', { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])] }, new grpc.Metadata(), 300));
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 300));
    const metrics = await fetch(`${s.management}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/quiver_queue_depth\{model="two"\} 0/);
    await blocker;
  }, 30_000);

  test('a call the client cancels leaves the queue at once; the one before it is answered', async () => {
    const blocker = fetch(`${s.inference}/predictions/slow`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=4000' }, body: JSON.stringify({ x: [[1000]] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    const queued = async () => Number(/quiver_queue_depth\{model="two"\} (\d+)/.exec(await fetch(`${s.management}/metrics`).then((r) => r.text()))?.[1]);
    const request = { model_name: 'two', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])] };
    // two shares the one thread with slow, so both wait behind slow's run. A short task may be sent to the
    // thread ahead (it then runs whatever happens); the second one still waits in the queue.
    const first = call(inference, 'ModelInfer', request);
    let outcome: grpc.ServiceError | null | undefined;
    const second = (inference as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>).ModelInfer.call(
      inference, request, new grpc.Metadata(), {}, (err: grpc.ServiceError | null) => (outcome = err),
    );
    for (let i = 0; i < 40 && (await queued()) !== 2; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await queued()).toBe(2);
    second.cancel();
    for (let i = 0; i < 40 && (await queued()) !== 1; i++) await new Promise((r) => setTimeout(r, 25));
    // Gone from the queue while slow's run still holds the thread.
    expect(await queued()).toBe(1);
    expect(outcome?.code).toBe(grpc.status.CANCELLED);
    expect((await first).raw_output_contents).toHaveLength(2);
    await blocker;
  }, 30_000);

  test('Triton\'s timeout parameter: a request that waited past it is not run (UNAVAILABLE, as Triton\'s "Request timeout expired"); within it, it is', async () => {
    const blocker = fetch(`${s.inference}/predictions/slow`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=1500' }, body: JSON.stringify({ x: [[1000]] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    const request = (timeoutUs: number) => ({
      model_name: 'two', parameters: { timeout: { int64_param: timeoutUs } }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([1, 2, 3])],
    });
    // two shares the one thread with slow: this waits ~1.4 s for it, past its 200 ms.
    const late = await failure(call(inference, 'ModelInfer', request(200_000)));
    expect(late.code).toBe(grpc.status.UNAVAILABLE);
    expect(late.details).toMatch(/^Request timeout expired: .*past its timeout of 200 ms; it was not run/);
    await blocker;
    expect((await call(inference, 'ModelInfer', request(5_000_000))).raw_output_contents).toHaveLength(2);
  }, 30_000);

  test('repository index, load and unload (the MMS API sees the same models)', async () => {
    const { models } = await call(inference, 'RepositoryIndex', {});
    expect(models).toContainEqual({ name: 'two', version: '1.0', state: 'READY', reason: '' });
    await call(inference, 'RepositoryModelUnload', { model_name: 'plus' });
    expect((await fetch(`${s.management}/models/plus`)).status).toBe(404);
    await call(inference, 'RepositoryModelLoad', { model_name: 'plus', parameters: { config: { string_param: JSON.stringify({ max_batch_size: 4 }) } } });
    const { config } = await call(inference, 'ModelConfig', { name: 'plus' });
    expect(config.max_batch_size).toBe(4);
    expect(config.input[0].dims).toEqual([2]);
    expect((await fetch(`${s.management}/models/plus`)).status).toBe(200);
    expect((await failure(call(inference, 'RepositoryModelLoad', { model_name: 'absent' }))).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe('gRPC LogSettings (Triton\'s logging extension)', () => {
  test('each setting as its typed value; an update answers them all; a bad one is INVALID_ARGUMENT', async () => {
    const before = (await call(inference, 'LogSettings', {})).settings;
    expect(before.log_format).toMatchObject({ string_param: 'default' });
    try {
      const after = (await call(inference, 'LogSettings', { settings: { log_verbose_level: { uint32_param: 1 } } })).settings;
      expect(after.log_verbose_level).toMatchObject({ uint32_param: 1 });
      expect(after.log_info).toMatchObject({ bool_param: true });
      expect((await failure(call(inference, 'LogSettings', { settings: { log_file: { string_param: '/tmp/t.log' } } }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      const restore = Object.fromEntries(['log_info', 'log_warnings', 'log_errors'].map((k) => [k, { bool_param: before[k].bool_param }]));
      await call(inference, 'LogSettings', { settings: { ...restore, log_verbose_level: { uint32_param: before.log_verbose_level.uint32_param } } });
    }
    expect((await call(inference, 'LogSettings', {})).settings).toEqual(before);
  });
});

describe('gRPC health checking', () => {
  test('the server and its services are SERVING; an unknown service is NOT_FOUND', async () => {
    expect(await call(health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await call(health, 'Check', { service: 'inference.GRPCInferenceService' })).toEqual({ status: 'SERVING' });
    expect((await failure(call(health, 'Check', { service: 'nope.Service' }))).code).toBe(grpc.status.NOT_FOUND);
  });
});

describe('ModelMesh runtime (mmesh.ModelRuntime on its own socket)', () => {
  test('runtimeStatus purges, then load → infer by mm-model-id → size → unload', async () => {
    const status = await call(mesh, 'runtimeStatus', {});
    expect(status).toMatchObject({
      // model_load_timeout (120 s) and 120 s for the puller's download, which ModelMesh's timer includes.
      status: 'READY', maxLoadingConcurrency: 1, modelLoadingTimeoutMs: 240_000, allowAnyMethod: false, limitModelConcurrency: false,
      // ModelMesh forwards only these; field 1 of each request is the model's name.
      methodInfos: Object.fromEntries(['ModelInfer', 'ModelMetadata', 'ModelReady', 'ModelConfig', 'ModelStatistics'].map((m) => [`inference.GRPCInferenceService/${m}`, { idInjectionPath: [1] }])),
    });
    expect(status.capacityInBytes).toBeGreaterThan(0);
    // The runtime starts empty for ModelMesh.
    expect(((await fetch(`${s.management}/models`).then((r) => r.json())) as { models: unknown[] }).models).toEqual([]);

    const modelPath = path.join(s.store, 'pulled', 'mnist__isvc-1');
    const predicted = await call(mesh, 'predictModelSize', { modelId: 'mnist__isvc-1', modelPath });
    expect(predicted.sizeInBytes).toBeGreaterThan(0);
    const loaded = await call(mesh, 'loadModel', { modelId: 'mnist__isvc-1', modelType: 'onnx', modelPath, modelKey: '{"model_type":{"name":"onnx"}}' });
    expect(loaded.sizeInBytes).toBeGreaterThan(0);
    expect(loaded.maxConcurrency).toBeGreaterThanOrEqual(1);
    // As a ModelMesh runtime no snapshot is kept (none would be restored): a full disk fails no load.
    expect(fs.existsSync(path.join(s.server.config.work_dir, 'snapshot.json'))).toBe(false);

    const md = new grpc.Metadata();
    md.set('mm-model-id', 'mnist__isvc-1');
    // The model and version the client named are ModelMesh's business: mm-model-id is the model here.
    const r = await call(inference, 'ModelInfer', { model_name: 'whatever-the-client-said', model_version: '7', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([1, 1])] }, md);
    expect(r.model_name).toBe('mnist__isvc-1');
    expect(floats(r.raw_output_contents[0])).toEqual([6, 7]);

    // ModelMesh never calls the repository RPCs: its runtime's listener does not serve them.
    expect((await failure(call(meshInference, 'RepositoryIndex', {}))).code).toBe(grpc.status.UNIMPLEMENTED);
    // ModelMesh sends inference to the management socket when it has no serving port: it is served there too.
    const viaMesh = await call(meshInference, 'ModelInfer', { model_name: 'mnist__isvc-1', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([0, 0])] });
    expect(floats(viaMesh.raw_output_contents[0])).toEqual([5, 6]);
    const size = await call(mesh, 'modelSize', { modelId: 'mnist__isvc-1' });
    expect(size.sizeInBytes).toBeGreaterThanOrEqual(loaded.sizeInBytes);
    // Loading again what is loaded is success with its size.
    expect((await call(mesh, 'loadModel', { modelId: 'mnist__isvc-1', modelPath })).sizeInBytes).toBe(size.sizeInBytes);
    // A second runtimeStatus (ModelMesh's container restarted) purges again.
    await call(mesh, 'runtimeStatus', {});
    expect((await fetch(`${s.management}/models/mnist__isvc-1`)).status).toBe(404);
    // Behind the puller, predictModelSize names the remote path: a model id loaded before is sized as it was answered.
    expect((await call(mesh, 'predictModelSize', { modelId: 'mnist__isvc-1', modelPath: 'onnx/mnist' })).sizeInBytes).toBe(size.sizeInBytes);
    // A model of that name from elsewhere (the MMS API's, of another version) gives way to the one ModelMesh asks for.
    const other = path.join(s.store, 'pulled', 'other.onnx');
    fs.writeFileSync(other, addModel([100, 200]));
    expect((await fetch(`${s.management}/models?url=pulled/other.onnx&model_name=mnist__isvc-1&model_version=7&synchronous=true`, { method: 'POST' })).status).toBe(200);
    await call(mesh, 'loadModel', { modelId: 'mnist__isvc-1', modelPath });
    const replaced = await call(inference, 'ModelInfer', { model_name: 'x', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([1, 1])] }, md);
    expect(floats(replaced.raw_output_contents[0])).toEqual([6, 7]);
    expect((await json(await fetch(`${s.management}/models/mnist__isvc-1/all`))).map((m: { modelVersion: string }) => m.modelVersion)).toEqual(['1.0']);
    await call(mesh, 'unloadModel', { modelId: 'mnist__isvc-1' });
    // Unloading what is absent is success.
    await call(mesh, 'unloadModel', { modelId: 'mnist__isvc-1' });
    expect((await failure(call(inference, 'ModelInfer', { model_name: 'x', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([1, 1])] }, md))).code).toBe(grpc.status.NOT_FOUND);
    // The puller keeps the remote file's name: an ONNX file without the suffix is still one.
    const bare = path.join(s.store, 'pulled', 'bare__isvc-3');
    fs.mkdirSync(bare, { recursive: true });
    fs.writeFileSync(path.join(bare, 'mnist'), addModel([5, 6]));
    await call(mesh, 'loadModel', { modelId: 'bare__isvc-3', modelType: 'onnx', modelPath: path.join(bare, 'mnist'), modelKey: '{}' });
    const bareMd = new grpc.Metadata();
    bareMd.set('mm-model-id', 'bare__isvc-3');
    const bareAnswer = await call(inference, 'ModelInfer', { model_name: 'x', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [f32([1, 1])] }, bareMd);
    expect(floats(bareAnswer.raw_output_contents[0])).toEqual([6, 7]);
    await call(mesh, 'unloadModel', { modelId: 'bare__isvc-3' });
    // A file that is neither ONNX nor an archive is refused before any load: INVALID_ARGUMENT.
    fs.writeFileSync(path.join(bare, 'notes'), 'not a model');
    expect((await failure(call(mesh, 'loadModel', { modelId: 'notes', modelPath: path.join(bare, 'notes') }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    // No load was attempted: INVALID_ARGUMENT, as the model-runtime proto asks.
    expect((await failure(call(mesh, 'loadModel', { modelId: 'gone', modelPath: path.join(s.store, 'pulled', 'missing') }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    // Nothing local to size quickly (a path that is not there): ModelMesh's default, at once.
    expect((await call(mesh, 'predictModelSize', { modelId: 'gone', modelPath: path.join(s.store, 'pulled', 'missing') })).sizeInBytes).toBe(status.defaultModelSizeInBytes);
  });
});

describe('ModelMesh sizes', () => {
  test('loadModel answers the size with a first run in it: ModelMesh keeps that one (it asks modelSize only after a 0); no budget still gives a capacity', async () => {
    // A server process of its own: in a process where earlier requests freed memory, a first run grows RSS by less than it takes.
    const store = tempDir('store');
    const socket = path.join(tempDir('mesh'), 'mesh.sock');
    const detPath = path.join(store, 'pulled', 'det__isvc-2');
    fs.cpSync(path.join(BUILTIN_MODEL_STORE, 'ocr-det'), detPath, { recursive: true });
    const detFile = fs.statSync(path.join(detPath, 'model.onnx')).size;
    const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
    const server = spawn(process.execPath, [cli, 'serve', '--no-supervisor', '--workers', '1', '--max-worker-threads', '1', '--log-level', 'warn', '--model-store', store,
      '--work-dir', tempDir('work'), '--inference-address', '127.0.0.1:0', '--management-address', '127.0.0.1:0', '--grpc-inference-address', 'off', '--modelmesh-address', `unix:${socket}`, '--memory-budget', '0'], { stdio: 'ignore' });
    const runtime = new (clientConstructors().modelRuntime)(`unix:${socket}`, grpc.credentials.createInsecure());
    try {
      for (let i = 0; i < 300 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      // No budget (0) still gives ModelMesh a capacity: it refuses to start under 512 MiB.
      expect((await whenReady(runtime)).capacityInBytes).toBeGreaterThanOrEqual(512 * 2 ** 20);
      const det = await call(runtime, 'loadModel', { modelId: 'det__isvc-2', modelType: 'onnx', modelPath: detPath, modelKey: '{}' }, new grpc.Metadata(), 60_000);
      // The PP-OCR detector's load takes ~1.7× its file; its first run on a 960² page ~30× more.
      expect(det.sizeInBytes).toBeGreaterThan(4 * detFile);
      expect((await call(runtime, 'modelSize', { modelId: 'det__isvc-2' })).sizeInBytes).toBe(det.sizeInBytes);
    } finally {
      runtime.close();
      server.kill('SIGKILL');
    }
  }, 60_000);
});

describe('ModelMesh owns the cache', () => {
  test('a model ModelMesh loaded is never evicted here: a load that needs its room is FAILED_PRECONDITION (not attempted), and it goes on answering', async () => {
    const socket = path.join(tempDir('mesh'), 'mesh.sock');
    // Room for two 4 MiB models (each measured at 4.0–4.7 MiB) with ~1.5 MiB to spare, and not for three
    // (12 MiB at least); one thread, so no thread of its own is added to the sizes.
    const server = await startServer({ workers: '1', 'max-worker-threads': '1', 'memory-budget': String(11 * 2 ** 20), 'modelmesh-address': `unix:${socket}` });
    const runtime = new (clientConstructors().modelRuntime)(`unix:${socket}`, grpc.credentials.createInsecure());
    const meshInfer = new (clientConstructors().inference)(`unix:${socket}`, grpc.credentials.createInsecure());
    try {
      for (const k of [2, 3, 4]) fs.writeFileSync(path.join(server.store, `m${k}.onnx`), scaleModel(1024, k));
      const load = (k: number) => call(runtime, 'loadModel', { modelId: `m${k}`, modelPath: path.join(server.store, `m${k}.onnx`) });
      await whenReady(runtime);
      const sizes = [(await load(2)).sizeInBytes, (await load(3)).sizeInBytes];
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(4 * 2 ** 20);
      // An MMS registration would evict the least valuable model for it; ModelMesh's models stay.
      const refused = await failure(load(4));
      expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(await fetch(`${server.management}/models/m4`).then((r) => r.status)).toBe(404);
      for (const k of [2, 3]) expect((await json(await fetch(`${server.management}/models/m${k}`))).status).toBe('READY');
      const md = new grpc.Metadata();
      md.set('mm-model-id', 'm2');
      const x = Array.from({ length: 1024 }, (_, i) => (i === 0 ? 1 : 0));
      const r = await call(meshInfer, 'ModelInfer', { model_name: 'whatever', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1024] }], raw_input_contents: [f32(x)] }, md);
      expect(floats(r.raw_output_contents[0])[0]).toBe(2);
      // Once ModelMesh unloads one, there is room.
      await call(runtime, 'unloadModel', { modelId: 'm2' });
      expect((await load(4)).sizeInBytes).toBeGreaterThanOrEqual(4 * 2 ** 20);
    } finally {
      runtime.close();
      meshInfer.close();
      await server.close();
    }
  }, 60_000);
});
