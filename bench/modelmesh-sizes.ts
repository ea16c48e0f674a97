// npm run bench:modelmesh — the sizes Quiver reports to ModelMesh against what the process really grew
// by, and against the guess ModelMesh's Triton adapter makes (the model file's size × 1.25). Drives the
// mmesh.ModelRuntime service as ModelMesh does: runtimeStatus, predictModelSize, loadModel, one request
// (the first run grows onnxruntime's arena), modelSize. RSS is the server's, read from /proc. One worker
// thread holds every model, so that a thread started for a model (28 MiB, paid from the budget apart
// from the model) is not counted as the model's.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { clientConstructors } from '../src/grpc/protos';
import { workloads } from './workloads';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MiB = 2 ** 20;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function main(): Promise<void> {
  const [port, admin, mesh] = [await freePort(), await freePort(), await freePort()];
  const server: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--no-supervisor', '--workers', '1', '--max-worker-threads', '1', '--log-level', 'warn',
    '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', 'off',
    '--modelmesh-address', `127.0.0.1:${mesh}`, '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-mm-'))], { stdio: 'inherit' });
  const client = new (clientConstructors().modelRuntime)(`127.0.0.1:${mesh}`, grpc.credentials.createInsecure());
  const call = (method: string, request: unknown): Promise<Record<string, number>> =>
    new Promise((resolve, reject) => (client as unknown as Record<string, (r: unknown, cb: (e: Error | null, r: Record<string, number>) => void) => void>)[method](request, (e, r) => (e ? reject(e) : resolve(r))));
  try {
    for (let i = 0; i < 600; i++) {
      if (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await call('runtimeStatus', {});
    const all = await workloads();
    const rows: string[] = [];
    const ratios: number[] = [];
    for (const w of [all.det, all.rec, all.cls]) {
      const modelPath = path.join(BUILTIN_MODEL_STORE, w.folder);
      const fileBytes = fs.statSync(path.join(modelPath, 'model.onnx')).size;
      const guess = fileBytes * 1.25;
      const predicted = (await call('predictModelSize', { modelId: w.folder, modelPath })).sizeInBytes;
      const before = rssOf(server.pid!);
      const loaded = (await call('loadModel', { modelId: w.folder, modelPath, modelType: 'onnx', modelKey: '{}' })).sizeInBytes;
      const r = await fetch(`http://127.0.0.1:${port}/v2/models/${w.folder}/infer`, { method: 'POST', headers: { 'content-type': w.contentType }, body: w.body });
      if (r.status !== 200) throw new Error(`${w.folder}: ${r.status} ${await r.text()}`);
      await new Promise((res) => setTimeout(res, 200));
      const measured = (await call('modelSize', { modelId: w.folder })).sizeInBytes;
      const grew = rssOf(server.pid!) - before;
      ratios.push(guess / grew, measured / grew);
      rows.push(
        `${w.folder.padEnd(8)} ${(fileBytes / MiB).toFixed(1).padStart(8)} ${(guess / MiB).toFixed(1).padStart(10)} ${(predicted / MiB).toFixed(1).padStart(10)} ` +
        `${(loaded / MiB).toFixed(1).padStart(10)} ${(measured / MiB).toFixed(1).padStart(12)} ${(grew / MiB).toFixed(1).padStart(10)}   ${(guess / grew).toFixed(2).padStart(5)}   ${(measured / grew).toFixed(2).padStart(5)}`,
      );
    }
    console.log('\nMiB      file      ×1.25 guess predicted  loadModel  modelSize(1st run)  RSS grew   guess/RSS  Quiver/RSS');
    for (const row of rows) console.log(row);
    const guessErr = Math.max(...ratios.filter((_, i) => i % 2 === 0).map((x) => Math.abs(Math.log(x))));
    const quiverErr = Math.max(...ratios.filter((_, i) => i % 2 === 1).map((x) => Math.abs(Math.log(x))));
    console.log(`RESULT modelmesh_sizes worst_guess_factor=${Math.exp(guessErr).toFixed(2)} worst_quiver_factor=${Math.exp(quiverErr).toFixed(2)}`);
  } finally {
    client.close();
    server.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
