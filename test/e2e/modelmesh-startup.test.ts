// ModelMesh's puller gives its runtime 3 s to accept a gRPC connection and then exits; ModelMesh polls
// runtimeStatus until READY. So the ModelMesh listener is bound before the warm-up and startup models,
// and says STARTING until the server is ready; a load sent meanwhile waits for it, within its deadline. Here a startup model's download is
// held open, so the server stays starting for as long as the test wants.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load';
import { clientConstructors } from '../../src/grpc/protos';
import { QuiverServer } from '../../src/server';
import { addModel } from '../fixtures/onnx-models';
import { call } from '../fixtures/grpc-calls';
import { startServer, tempDir } from '../fixtures/server';

/** An HTTP origin whose every download of a small model is held open until `release`. */
async function heldOrigin(): Promise<{ origin: http.Server; port: number; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const origin = http.createServer((_req, res) => {
    void held.then(() => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(addModel([1, 2]))));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  return { origin, port: (origin.address() as AddressInfo).port, release };
}

test('while the server starts: runtimeStatus STARTING, not ready, a load waits (UNAVAILABLE past its deadline); then READY and the waiting load is done', async () => {
  const { origin, port, release } = await heldOrigin();
  const socketDir = tempDir('mesh-start');
  const socket = path.join(socketDir, 'mesh.sock');
  const store = tempDir('store');
  fs.mkdirSync(path.join(store, 'pulled'), { recursive: true });
  fs.writeFileSync(path.join(store, 'pulled', 'm.onnx'), addModel([5, 6]));
  const config = loadConfig({
    'model-store': store, 'work-dir': tempDir('work'), 'inference-address': '127.0.0.1:0', 'management-address': '127.0.0.1:0', 'grpc-inference-address': 'off',
    workers: '1', 'log-level': 'silent', 'modelmesh-address': `unix:${socket}`,
    'allowed-urls': 'http://127\\.0\\.0\\.1:\\d+/.*', models: [`held=http://127.0.0.1:${port}/held.onnx`],
  }, {});
  const starting = QuiverServer.start(config);
  const C = clientConstructors();
  const mesh = new C.modelRuntime(`unix:${socket}`, grpc.credentials.createInsecure());
  const inference = new C.inference(`unix:${socket}`, grpc.credentials.createInsecure());
  const health = new C.health(`unix:${socket}`, grpc.credentials.createInsecure());
  let server: QuiverServer | undefined;
  try {
    for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'STARTING' });
    const mPath = path.join(store, 'pulled', 'm.onnx');
    // A load that cannot wait long enough hears why before its deadline passes.
    const refused = await call(mesh, 'loadModel', { modelId: 'm', modelPath: mPath }, new grpc.Metadata(), 600).catch((e: grpc.ServiceError) => e);
    expect(refused).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/still starting/) });
    // Nothing of ModelMesh's is here before the warm-up ends: modelSize says so at once.
    expect(await call(mesh, 'modelSize', { modelId: 'm' }).catch((e: grpc.ServiceError) => e.code)).toBe(grpc.status.NOT_FOUND);
    // An unload then a load of one id, both while it starts: they keep their order (the load is not cancelled).
    const unloadFirst = call(mesh, 'unloadModel', { modelId: 'early' });
    const afterUnload = call(mesh, 'loadModel', { modelId: 'early', modelPath: mPath });
    afterUnload.catch(() => undefined);
    // A load then an unload of one id while it starts: the load is cancelled at once, not after the warm-up.
    const doomed = call(mesh, 'loadModel', { modelId: 'doomed', modelPath: mPath }).then(() => undefined, (e: grpc.ServiceError) => e);
    await new Promise((r) => setTimeout(r, 100));
    await call(mesh, 'unloadModel', { modelId: 'doomed' });
    expect(await doomed).toMatchObject({ code: grpc.status.CANCELLED });
    await unloadFirst;
    // As after a restart of the runtime container alone: ModelMesh sends its loads at once.
    let waitingDone = false;
    const waiting = call(mesh, 'loadModel', { modelId: 'm', modelPath: mPath }).finally(() => (waitingDone = true));
    waiting.catch(() => undefined);
    expect(await call(inference, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(inference, 'ServerReady', {})).toEqual({ ready: false });
    expect(await call(health, 'Check', { service: '' })).toEqual({ status: 'NOT_SERVING' });
    // A request ModelMesh routed (mm-model-id) hears RESOURCE_EXHAUSTED, which sends it to another copy.
    const routed = new grpc.Metadata();
    routed.set('mm-model-id', 'm');
    const early = await new Promise<grpc.ServiceError | null>((resolve) => (inference as unknown as Record<string, (r: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => void>)
      .ModelInfer.call(inference, { model_name: 'm', inputs: [] }, routed, (e) => resolve(e)));
    expect(early).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/starting/) });
    // Still starting a moment later: the held download is what it waits for.
    await new Promise((r) => setTimeout(r, 300));
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'STARTING' });
    expect(waitingDone).toBe(false);

    release();
    server = await starting;
    expect((await waiting).sizeInBytes).toBeGreaterThan(0);
    expect((await afterUnload).sizeInBytes).toBeGreaterThan(0);
    expect(await fetch(`${server.urls().management}/models/doomed`).then((r) => r.status)).toBe(404);
    const routedReady = new grpc.Metadata();
    routedReady.set('mm-model-id', 'm');
    expect(await call(inference, 'ModelReady', { name: 'whatever' }, routedReady)).toEqual({ ready: true });
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'READY', capacityInBytes: expect.any(Number) });
    expect(await call(inference, 'ServerReady', {})).toEqual({ ready: true });
    expect((await call(mesh, 'loadModel', { modelId: 'm', modelPath: mPath })).sizeInBytes).toBeGreaterThan(0);
  } finally {
    release();
    for (const c of [mesh, inference, health]) c.close();
    await (server ?? (await starting.catch(() => undefined)))?.close();
    origin.close();
    fs.rmSync(socketDir, { recursive: true, force: true });
  }
}, 60_000);

test('a socket file left by a server that died is replaced; one that something listens on is not taken', async () => {
  const dir = tempDir('mesh-stale');
  const socket = path.join(dir, 'mesh.sock');
  // A process killed while listening leaves its socket file behind.
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  expect(fs.lstatSync(socket).isSocket()).toBe(true);
  const flags = { workers: '1', 'grpc-inference-address': 'off', 'modelmesh-address': `unix:${socket}` };
  const s = await startServer(flags);
  const mesh = new (clientConstructors().modelRuntime)(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'READY' });
    // The first server is alive on it: a second one fails to start rather than take its socket.
    await expect(startServer(flags)).rejects.toThrow(/gRPC could not listen on unix:/);
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'READY' });
  } finally {
    mesh.close();
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);


test('an unloadModel while its model still loads (ModelMesh cancelled the load): the load undoes itself, and the unload answers once nothing is left', async () => {
  const { origin, port, release } = await heldOrigin();
  const socketDir = tempDir('mesh-cancel');
  const socket = path.join(socketDir, 'mesh.sock');
  const s = await startServer({ workers: '1', 'grpc-inference-address': 'off', 'modelmesh-address': `unix:${socket}`, 'allowed-urls': 'http://127\\.0\\.0\\.1:\\d+/.*' });
  const mesh = new (clientConstructors().modelRuntime)(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'READY' });
    const loading = call(mesh, 'loadModel', { modelId: 'slow', modelPath: `http://127.0.0.1:${port}/slow.onnx` }).then(() => undefined, (e: grpc.ServiceError) => e);
    await new Promise((r) => setTimeout(r, 300));
    let unloaded = false;
    const unloading = call(mesh, 'unloadModel', { modelId: 'slow' }).then(() => (unloaded = true));
    await new Promise((r) => setTimeout(r, 300));
    // The download it waits for is still held: the load has not settled, so neither has the unload.
    expect(unloaded).toBe(false);
    release();
    await unloading;
    expect(await fetch(`${s.management}/models/slow`).then((r) => r.status)).toBe(404);
    expect(await loading).toMatchObject({ code: grpc.status.CANCELLED });
    // The id loads again once ModelMesh asks for it.
    expect((await call(mesh, 'loadModel', { modelId: 'slow', modelPath: `http://127.0.0.1:${port}/slow.onnx` })).sizeInBytes).toBeGreaterThan(0);
  } finally {
    release();
    mesh.close();
    await s.close();
    origin.close();
    fs.rmSync(socketDir, { recursive: true, force: true });
  }
}, 60_000);

test('two loads of one id at once take turns: one registration, both answered with its size', async () => {
  const socketDir = tempDir('mesh-twice');
  const socket = path.join(socketDir, 'mesh.sock');
  const s = await startServer({ workers: '1', 'grpc-inference-address': 'off', 'modelmesh-address': `unix:${socket}` });
  const mesh = new (clientConstructors().modelRuntime)(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    expect(await call(mesh, 'runtimeStatus', {})).toMatchObject({ status: 'READY' });
    const file = path.join(s.store, 'twice.onnx');
    fs.writeFileSync(file, addModel([3, 4]));
    const [a, b] = await Promise.all([0, 1].map(() => call(mesh, 'loadModel', { modelId: 'twice', modelPath: file })));
    expect(a.sizeInBytes).toBeGreaterThan(0);
    expect(b.sizeInBytes).toBe(a.sizeInBytes);
    expect((await fetch(`${s.management}/models/twice/all`).then((r) => r.json())) as unknown[]).toHaveLength(1);
  } finally {
    mesh.close();
    await s.close();
    fs.rmSync(socketDir, { recursive: true, force: true });
  }
}, 60_000);
