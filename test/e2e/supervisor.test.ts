// `quiver serve` runs the server under a supervisor: kill the server process and the endpoint comes
// back by itself with the same models; SIGTERM drains and exits 0.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { restartDelay, serverNodeArgs } from '../../src/cli/supervisor';
import { addModel, scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, tempDir } from '../fixtures/server';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, tries = 300): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('restart back-off doubles and is capped', () => {
  expect([1, 2, 3, 4, 10].map((n) => restartDelay(n, 250, 3000))).toEqual([250, 500, 1000, 2000, 3000]);
});

test('the server process gets a small main-thread young generation unless the user set one, and gc for the scheduler', () => {
  expect(serverNodeArgs([], '')).toEqual(['--max-semi-space-size=2', '--expose-gc']);
  expect(serverNodeArgs(['--max-semi-space-size=8'], '')).toEqual(['--max-semi-space-size=8', '--expose-gc']);
  expect(serverNodeArgs([], '--max-semi-space-size=4 --enable-source-maps')).toEqual(['--expose-gc']);
});

interface Supervised {
  pid: number | undefined;
  api: string;
  admin: string;
  output: () => string;
  serverPids: () => number[];
  exited: Promise<number | null>;
  stop: () => void;
  /** The files the supervisor process itself required, read once it has exited. */
  modulesLoaded: () => string[];
}

// Preloaded in the supervisor only (the server it starts gets its own node flags): lists its modules at exit.
const RECORDER = `process.on('exit', () => require('fs').writeFileSync(process.env.RECORD_MODULES_TO, JSON.stringify(Object.keys(require.cache))));`;

async function supervise(store: string, extra: string[] = []): Promise<Supervised> {
  const [inference, management] = [await freePort(), await freePort()];
  let output = '';
  const recorder = path.join(tempDir('recorder'), 'record.js');
  fs.writeFileSync(recorder, RECORDER);
  const modules = path.join(path.dirname(recorder), 'modules.json');
  const supervisor: ChildProcess = spawn(
    process.execPath,
    ['--require', recorder, CLI, 'serve', '--model-store', store, '--work-dir', tempDir('work'), '--workers', '1',
      '--inference-address', `127.0.0.1:${inference}`, '--management-address', `127.0.0.1:${management}`, '--grpc-inference-address', '127.0.0.1:0', ...extra],
    { env: { PATH: process.env.PATH, QUIVER_LOG_LEVEL: 'info', RECORD_MODULES_TO: modules } },
  );
  supervisor.stdout!.on('data', (d) => (output += d));
  supervisor.stderr!.on('data', (d) => (output += d));
  return {
    pid: supervisor.pid,
    api: `http://127.0.0.1:${inference}`,
    admin: `http://127.0.0.1:${management}`,
    output: () => output,
    serverPids: () => output.split('\n').filter((l) => l.includes('"msg":"quiver is serving"')).map((l) => JSON.parse(l).pid as number),
    exited: new Promise<number | null>((resolve) => supervisor.on('exit', resolve)),
    stop: () => supervisor.kill('SIGTERM'),
    modulesLoaded: () => JSON.parse(fs.readFileSync(modules, 'utf8')) as string[],
  };
}

test('a killed server process comes back with the models it had', async () => {
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'adder'), addModel([5]));
  const s = await supervise(store);
  const { api, admin, serverPids } = s;
  try {
    await waitFor(async () => ((await fetch(`${api}/ping`)).status === 200 ? true : undefined), 'the first start');
    expect((await fetch(`${admin}/models?url=adder&model_name=plus5`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${admin}/models?url=adder&model_name=plus5b`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${admin}/models/plus5b`, { method: 'DELETE' })).status).toBe(200);
    expect(await json(await postJson(`${api}/predictions/plus5`, { x: [[1]] }))).toEqual({ y: [[6]] });

    const [first] = serverPids();
    expect(first).not.toBe(s.pid);
    process.kill(first, 'SIGKILL');
    const second = await waitFor(async () => serverPids()[1], 'the restarted server');
    expect(second).not.toBe(first);
    await waitFor(async () => ((await fetch(`${api}/ping`)).status === 200 ? true : undefined), 'the restart');
    const listed = await json(await fetch(`${admin}/models`));
    expect(listed.models).toEqual([{ modelName: 'plus5', modelUrl: 'adder' }]);
    expect(await json(await postJson(`${api}/predictions/plus5`, { x: [[2]] }))).toEqual({ y: [[7]] });
    expect(s.output()).toContain('server process died; restarting it');
  } finally {
    s.stop();
  }
  expect(await s.exited).toBe(0);
  // The supervisor only watches: the server's modules (express, gRPC, the scheduler) were 27 MB of its RSS.
  const loaded = s.modulesLoaded();
  expect(loaded.some((m) => m.endsWith(path.join('cli', 'supervisor.js')))).toBe(true);
  expect(loaded.filter((m) => m.includes(`${path.sep}express${path.sep}`) || m.includes('@grpc') || m.endsWith(`${path.sep}server.js`))).toEqual([]);
});

test('a model unregistered while evicted does not come back after kill -9 of the server', async () => {
  const N = 1024; // 4 MiB of weights: four do not fit in 14 MiB
  const store = tempDir('store');
  for (let k = 1; k <= 4; k++) writeModelFolder(path.join(store, `m${k}`), scaleModel(N, k));
  const s = await supervise(store, ['--memory-budget', String(14 * 2 ** 20)]);
  const { api, admin, serverPids } = s;
  const predict = (k: number) => postJson(`${api}/predictions/m${k}`, { x: [Array.from({ length: N }, (_, i) => (i === 0 ? 1 : 0))] });
  try {
    await waitFor(async () => ((await fetch(`${api}/ping`)).status === 200 ? true : undefined), 'the first start');
    for (let k = 1; k <= 4; k++) {
      const r = await fetch(`${admin}/models?url=m${k}`, { method: 'POST' });
      expect({ k, status: r.status, body: r.status === 200 ? '' : await r.text() }).toEqual({ k, status: 200, body: '' });
    }
    const status = await json(await fetch(`${admin}/status`));
    const evicted = (status.models as { modelName: string; status: string }[]).filter((m) => m.status === 'EVICTED').map((m) => m.modelName);
    expect(evicted.length).toBeGreaterThan(0);
    const gone = evicted[0];
    expect((await fetch(`${admin}/models/${gone}`, { method: 'DELETE' })).status).toBe(200);
    const kept = ['m1', 'm2', 'm3', 'm4'].filter((m) => m !== gone);

    const [first] = serverPids();
    process.kill(first, 'SIGKILL');
    await waitFor(async () => serverPids()[1], 'the restarted server');
    await waitFor(async () => ((await fetch(`${api}/ping`)).status === 200 ? true : undefined), 'the restart');
    const listed = await json(await fetch(`${admin}/models`));
    expect((listed.models as { modelName: string }[]).map((m) => m.modelName).sort()).toEqual(kept);
    expect((await predict(Number(gone.slice(1)))).status).toBe(404);
    for (const m of kept) {
      const r = await predict(Number(m.slice(1)));
      expect(r.status).toBe(200);
      expect((await json(r)).y[0][0]).toBe(Number(m.slice(1)));
    }
  } finally {
    s.stop();
  }
  expect(await s.exited).toBe(0);
}, 60_000);
