// Token authorization as TorchServe's: inference and management keys in a key file, Bearer tokens,
// on by default beyond loopback, 401 with a JSON body, and /ping left open for health checks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load';
import { clientConstructors } from '../../src/grpc/protos';
import { tokenAuthFor } from '../../src/http/token-auth';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, startServer, tempDir, TestServer } from '../fixtures/server';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const keysIn = (workDir: string) => JSON.parse(fs.readFileSync(path.join(workDir, 'key_file.json'), 'utf8')) as { inference: { key: string }; management: { key: string } };

describe('token authorization', () => {
  let s: TestServer;
  const workDir = tempDir('tokens');
  afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

  test('token_auth=on: each API takes its own key; /ping needs none', async () => {
    s = await startServer({ 'token-auth': 'on', 'work-dir': workDir });
    const file = path.join(workDir, 'key_file.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const { inference, management } = keysIn(workDir);
    expect(inference.key).not.toBe(management.key);
    writeModelFolder(path.join(s.store, 'adder'), addModel([1]));

    const anonymous = await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await json(anonymous)).toMatchObject({ code: 401, type: 'TokenAuthorizationException', message: expect.stringContaining('Authorization: Bearer <management key>') });
    const wrongKey = await fetch(`${s.management}/models`, { headers: bearer(inference.key) });
    expect(wrongKey.status).toBe(401);
    expect((await json(wrongKey)).message).not.toContain(inference.key);
    expect((await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST', headers: bearer(management.key) })).status).toBe(200);
    expect((await fetch(`${s.management}/metrics`)).status).toBe(401);

    const predict = (headers: Record<string, string>) => fetch(`${s.inference}/predictions/adder`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"x":[[1]]}' });
    expect((await predict({})).status).toBe(401);
    expect((await predict(bearer(management.key))).status).toBe(401);
    const answered = await predict(bearer(inference.key));
    expect(await json(answered)).toEqual({ y: [[2]] });
    expect((await fetch(`${s.inference}/ping`)).status).toBe(200);
    await s.close();

    // A restart (the supervisor's, say) keeps the keys clients hold.
    s = await startServer({ 'token-auth': 'on', 'work-dir': workDir });
    expect(keysIn(workDir).inference.key).toBe(inference.key);
    expect((await fetch(`${s.management}/models`, { headers: bearer(management.key) })).status).toBe(200);
    await s.close();
  });

  test('health checks stay open, as probes and Triton clients send no token; the rest of /v2 needs the inference key, its repository routes the management key', async () => {
    const dir = tempDir('tokens-v2');
    s = await startServer({ 'token-auth': 'on', 'work-dir': dir });
    const [inference, management] = [keysIn(dir).inference.key, keysIn(dir).management.key];
    try {
      for (const route of ['/ping', '/v2/health/live', '/v2/health/ready']) expect((await fetch(`${s.inference}${route}`)).status).toBe(200);
      const metadata = await fetch(`${s.inference}/v2`);
      expect(metadata.status).toBe(401);
      expect(await json(metadata)).toEqual({ error: expect.stringContaining('Authorization: Bearer <inference key>') });
      expect((await fetch(`${s.inference}/v2`, { headers: bearer(inference) })).status).toBe(200);
      // Loads and unloads are management's, though Triton puts them on the inference port (any case of the path).
      for (const route of ['/v2/repository/index', '/V2/Repository/index']) {
        const refused = await fetch(`${s.inference}${route}`, { method: 'POST', headers: bearer(inference) });
        expect(refused.status).toBe(401);
        expect((await json(refused)).error).toBe('the token is not the management key');
      }
      expect((await fetch(`${s.inference}/v2/repository/index`, { method: 'POST', headers: bearer(management) })).status).toBe(200);
      // The log level is the server's: management's too.
      expect((await fetch(`${s.inference}/v2/logging`, { headers: bearer(inference) })).status).toBe(401);
      expect((await fetch(`${s.inference}/v2/logging`, { headers: bearer(management) })).status).toBe(200);
      // So are shared memory regions: registering one makes the server open a file (off here: 403 past the
      // token, while the status, with none to list, answers).
      expect((await fetch(`${s.inference}/v2/systemsharedmemory/status`, { headers: bearer(inference) })).status).toBe(401);
      expect((await fetch(`${s.inference}/v2/systemsharedmemory/status`, { headers: bearer(management) })).status).toBe(200);
      const register = { method: 'POST', body: JSON.stringify({ key: '/x', offset: 0, byte_size: 8 }) };
      expect((await fetch(`${s.inference}/v2/systemsharedmemory/region/r/register`, { ...register, headers: { ...bearer(inference), 'content-type': 'application/json' } })).status).toBe(401);
      expect((await fetch(`${s.inference}/v2/systemsharedmemory/region/r/register`, { ...register, headers: { ...bearer(management), 'content-type': 'application/json' } })).status).toBe(403);
    } finally {
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a gRPC inference service that needs tokens on the ModelMesh address (which sends none) stops the start', async () => {
    await expect(startServer({ 'token-auth': 'on', 'grpc-inference-address': '127.0.0.1:18711', 'modelmesh-address': '127.0.0.1:18711' })).rejects.toThrow(/gRPC inference service on an address of its own/);
  });

  test('gRPC: inference calls take the inference key, repository calls the management key, liveness none', async () => {
    const dir = tempDir('tokens-grpc');
    s = await startServer({ 'token-auth': 'on', 'work-dir': dir });
    const [inference, management] = [keysIn(dir).inference.key, keysIn(dir).management.key];
    writeModelFolder(path.join(s.store, 'adder'), addModel([1]));
    const client = new (clientConstructors().inference)(s.grpc, grpc.credentials.createInsecure());
    type Callable = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
    const call = (method: string, request: unknown, key?: string) => new Promise<{ code: number; res?: unknown }>((resolve) => {
      const md = new grpc.Metadata();
      if (key) md.set('authorization', `Bearer ${key}`);
      ((client as unknown as Record<string, Callable>)[method]).call(client, request, md, (err, res) => resolve(err ? { code: err.code } : { code: 0, res }));
    });
    try {
      expect(await call('ServerLive', {})).toEqual({ code: 0, res: expect.objectContaining({ live: true }) });
      expect((await call('ServerMetadata', {})).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await call('ServerMetadata', {}, management)).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await call('ServerMetadata', {}, inference)).code).toBe(0);
      expect((await call('RepositoryModelLoad', { model_name: 'adder' }, inference)).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await call('RepositoryModelLoad', { model_name: 'adder' }, management)).code).toBe(0);
      expect(await call('ModelReady', { name: 'adder' }, inference)).toEqual({ code: 0, res: expect.objectContaining({ ready: true }) });
      // A stream without the key ends at once with UNAUTHENTICATED.
      const stream = (client as unknown as { ModelStreamInfer(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }).ModelStreamInfer(new grpc.Metadata());
      const status = await new Promise<number>((resolve) => {
        stream.on('error', (err: grpc.ServiceError) => resolve(err.code));
        stream.on('data', () => undefined);
      });
      expect(status).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a broken, shared or linked key file stops the start rather than open the APIs', async () => {
    const broken = tempDir('tokens-broken');
    const file = path.join(broken, 'key_file.json');
    fs.writeFileSync(file, '{"inference":{"key":"short"}}', { mode: 0o600 });
    await expect(startServer({ 'token-auth': 'on', 'work-dir': broken })).rejects.toThrow(/key_file .* does not hold an inference and a management key/);
    fs.writeFileSync(file, JSON.stringify({ inference: { key: 'k'.repeat(20) }, management: { key: 'm'.repeat(20) } }));
    fs.chmodSync(file, 0o644);
    await expect(startServer({ 'token-auth': 'on', 'work-dir': broken })).rejects.toThrow(/readable by it alone \(chmod 600\)/);
    fs.rmSync(file);
    fs.symlinkSync(path.join(workDir, 'key_file.json'), file);
    await expect(startServer({ 'token-auth': 'on', 'work-dir': broken })).rejects.toThrow(/must be a plain file/);
    fs.rmSync(broken, { recursive: true, force: true });
  });
});

describe('when tokens are needed', () => {
  const needs = (flags: Record<string, string>, env: NodeJS.ProcessEnv = {}) => tokenAuthFor(loadConfig(flags, env));

  test('auto: for each API bound beyond loopback, never the SageMaker contract', () => {
    expect(needs({})).toEqual({ inference: false, management: false, grpc: false });
    expect(needs({ 'inference-address': '0.0.0.0:8080' })).toEqual({ inference: true, management: false, grpc: false });
    expect(needs({ 'inference-address': '[::1]:8080', 'management-address': '10.0.0.5:8081' })).toEqual({ inference: false, management: true, grpc: false });
    expect(needs({ 'grpc-inference-address': '0.0.0.0:8001' })).toEqual({ inference: false, management: false, grpc: true });
    expect(needs({ 'grpc-inference-address': 'unix:/tmp/quiver.sock' }).grpc).toBe(false);
    expect(needs({}, { SAGEMAKER_BIND_TO_PORT: '8080' })).toEqual({ inference: false, management: false, grpc: false });
  });

  test('on and off override it', () => {
    expect(needs({ 'token-auth': 'off', 'inference-address': '0.0.0.0:8080', 'grpc-inference-address': '0.0.0.0:8001' })).toEqual({ inference: false, management: false, grpc: false });
    expect(needs({ 'token-auth': 'on' }, { SAGEMAKER_BIND_TO_PORT: '8080' })).toMatchObject({ inference: true, management: true });
    expect(needs({ 'token-auth': 'on' }).grpc).toBe(true);
    expect(needs({ 'token-auth': 'on', 'grpc-inference-address': 'off' }).grpc).toBe(false);
  });
});
