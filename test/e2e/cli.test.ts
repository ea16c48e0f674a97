// `quiver serve` as its own process: SageMaker's conventions, bad flags, and shutdown on SIGTERM.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import sharp from 'sharp';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, tempDir } from '../fixtures/server';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const machineHasLibjpeg = execFileSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'scripts', 'has-libjpeg.js')]).toString() === '1';
const withLibjpeg = machineHasLibjpeg ? test : test.skip;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function run(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, QUIVER_LOG_LEVEL: 'info', ...env } });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForPing(url: string, exited: Promise<unknown>): Promise<void> {
  let done = false;
  exited.then(() => (done = true));
  // Under a busy suite a child process may take a while to warm its workers up.
  for (let i = 0; i < 600 && !done; i++) {
    try {
      if ((await fetch(`${url}/ping`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('server did not come up');
}

describe('quiver serve', () => {
  test('started as SageMaker starts it: `serve`, port from SAGEMAKER_BIND_TO_PORT, models under the model root', async () => {
    const root = tempDir('opt-ml-models');
    writeModelFolder(path.join(root, 'abc123', 'model'), addModel([40, 2]));
    const port = await freePort();
    const server = run(['serve', '--inference-address', `127.0.0.1:${port}`, '--workers', '1'], { SAGEMAKER_BIND_TO_PORT: String(port), SAGEMAKER_MODEL_ROOT: root });
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitForPing(url, server.exited);
      expect((await postJson(`${url}/models`, { model_name: 'abc123', url: path.join(root, 'abc123', 'model') })).status).toBe(200);
      const answer = await postJson(`${url}/models/abc123/invoke`, { x: [[0, 0]] });
      expect(await json(answer)).toEqual({ y: [[40, 2]] });
      expect(server.output()).toContain('"mode":"sagemaker"');
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  test('MMS mode loads the models named on the command line and exits 0 on SIGTERM', async () => {
    const store = tempDir('store');
    writeModelFolder(path.join(store, 'adder'), addModel([1]));
    const [inference, management] = [await freePort(), await freePort()];
    const server = run(
      ['serve', '--model-store', store, '--models', 'plus=adder', '--inference-address', `127.0.0.1:${inference}`, '--management-address', `127.0.0.1:${management}`, '--grpc-inference-address', '127.0.0.1:0', '--workers', '1'],
      {},
    );
    try {
      await waitForPing(`http://127.0.0.1:${inference}`, server.exited);
      const traced = await postJson(`http://127.0.0.1:${inference}/predictions/plus`, { x: [[1]], secret: 'do-not-log-me' }, { 'X-Request-Id': 'trace-42' });
      expect(traced.status).toBe(400);
      expect(traced.headers.get('x-request-id')).toBe('trace-42');
      const answered = await postJson(`http://127.0.0.1:${inference}/predictions/plus`, { x: [[1]] });
      expect(await json(answered)).toEqual({ y: [[2]] });
      const generatedId = answered.headers.get('x-request-id')!;
      expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
      expect((await json(await fetch(`http://127.0.0.1:${management}/models`))).models).toEqual([{ modelName: 'plus', modelUrl: 'adder' }]);
      // One JSON access-log line per request, with its id, model, status and the time split; never the body.
      // The line is written when the response closes, which can be just after the client has read it.
      // Whole lines only: the last piece may be a line still being written.
      const logLines = () => server.output().split('\n').slice(0, -1).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      for (let waited = 0; waited < 5000 && !logLines().some((l) => l.reqId === generatedId); waited += 20) await new Promise((r) => setTimeout(r, 20));
      const lines = logLines();
      const traceLine = lines.find((l) => l.reqId === 'trace-42');
      expect(traceLine).toMatchObject({ msg: 'request', api: 'inference', method: 'POST', path: '/predictions/plus', model: 'plus', status: 400 });
      const okLine = lines.find((l) => l.reqId === generatedId);
      expect(okLine).toMatchObject({ status: 200, model: 'plus' });
      for (const key of ['durationMs', 'queueMs', 'preprocessMs', 'inferenceMs', 'postprocessMs']) expect(typeof okLine?.[key]).toBe('number');
      expect(server.output()).not.toContain('do-not-log-me');
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  // JPEGs skip libvips only where the addon was built with libjpeg (binding.gyp asks as has-libjpeg.js does).
  withLibjpeg('libvips is loaded on the first picture the direct decoders leave to it, not for JPEGs', async () => {
    const [inference, management] = [await freePort(), await freePort()];
    const server = run(
      ['serve', '--no-supervisor', '--models', 'ocr-cls', '--inference-address', `127.0.0.1:${inference}`, '--management-address', `127.0.0.1:${management}`, '--grpc-inference-address', 'off', '--workers', '1'],
      {},
    );
    const libvipsMapped = () => fs.readFileSync(`/proc/${server.child.pid}/maps`, 'utf8').includes('libvips');
    const classify = async (body: Buffer, type: string) => {
      const r = await fetch(`http://127.0.0.1:${inference}/predictions/ocr-cls`, { method: 'POST', headers: { 'content-type': type }, body });
      return { status: r.status, labels: ((await r.json()) as { label: string }[]).map((c) => c.label).sort() };
    };
    try {
      await waitForPing(`http://127.0.0.1:${inference}`, server.exited);
      const picture = sharp({ create: { width: 192, height: 48, channels: 3, background: { r: 250, g: 250, b: 250 } } });
      expect(await classify(await picture.clone().jpeg().toBuffer(), 'image/jpeg')).toEqual({ status: 200, labels: ['0', '180'] });
      expect(libvipsMapped()).toBe(false);
      expect(await classify(await picture.clone().webp().toBuffer(), 'image/webp')).toEqual({ status: 200, labels: ['0', '180'] });
      expect(libvipsMapped()).toBe(true);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  test('config --print shows every key, its value and where it came from', async () => {
    const dir = tempDir('cfg');
    fs.writeFileSync(path.join(dir, 'config.properties'), 'job_queue_size=42\n');
    const printed = run(['config', '--print', '--config-file', path.join(dir, 'config.properties'), '--workers', '3'], { QUIVER_MAX_REQUEST_SIZE: '1000' });
    expect(await printed.exited).toBe(0);
    expect(printed.output()).toMatch(/^job_queue_size\s+= 42\s+# file config.properties:1$/m);
    expect(printed.output()).toMatch(/^workers\s+= 3\s+# flag --workers$/m);
    expect(printed.output()).toMatch(/^max_request_size\s+= 1000\s+# env QUIVER_MAX_REQUEST_SIZE$/m);
    expect(printed.output()).toMatch(/^inference_address\s+= 127.0.0.1:8080\s+# default$/m);
  });

  test('a bad config file key stops start-up with one line naming it', async () => {
    const dir = tempDir('cfg');
    fs.writeFileSync(path.join(dir, 'config.properties'), 'number_of_netty_threads=4\n');
    const bad = run(['serve', '--config-file', path.join(dir, 'config.properties')], {});
    expect(await bad.exited).toBe(2);
    expect(bad.output().trim()).toBe(
      "quiver: InvalidConfigException: config.properties:1: MMS and TorchServe key number_of_netty_threads is not used by Quiver: remove it (Quiver serves HTTP from Node's event loop, not Netty threads)",
    );
  });

  test('a bad option stops it with one clear line', async () => {
    const bad = run(['serve', '--workers', 'many'], {});
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/quiver: InvalidConfigException: workers \(from flag --workers\): expected a whole number, got "many"/);
    const unknown = run(['serve', '--no-such-flag', 'x'], {});
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toMatch(/Unknown option '--no-such-flag'/);
  });
});
