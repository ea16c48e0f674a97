// Part of bench/gpu.sh. Where there is a GPU and onnxruntime's CUDA provider: the three PP-OCR models
// on the GPU against the CPU in the same run (c=1, p50 per model), then one GPU's budget filled with more
// copies of the detector than fit, every answer checked. Where either is missing it says so and stops.
//   node dist/bench/gpu-sessions.js [--requests 40]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load';
import { QuiverServer } from '../src/server';
import { probeDevices } from '../src/workers/device-probe';
import { ModelKey, workloads } from './workloads';

const ROOT = path.resolve(__dirname, '..', '..');
const MiB = 2 ** 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function start(store: string, flags: Record<string, string>): Promise<{ server: QuiverServer; base: string; admin: string }> {
  const config = loadConfig({
    'model-store': store, 'work-dir': fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-gpu-work-')), workers: '1', 'log-level': 'warn',
    'inference-address': '127.0.0.1:0', 'management-address': '127.0.0.1:0', 'grpc-inference-address': 'off', ...flags,
  }, {});
  const server = await QuiverServer.start(config, { restoreSnapshot: false });
  const urls = server.urls();
  return { server, base: urls.inference, admin: urls.management ?? urls.inference };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '40' } } });
  const n = Number(values.requests);
  const probe = probeDevices([]);
  if (probe.gpus.length === 0 || !probe.cudaProvider.available) {
    console.log(`GPU sessions NOT run: ${probe.gpus.length === 0 ? probe.noGpuReason : probe.cudaProvider.reason}`);
    console.log('RESULT gpu_sessions ran=0');
    return;
  }
  if (probe.fake) console.log('FAKE GPUs (QUIVER_FAKE_GPUS): the "GPU" sessions run on the CPU; this checks the script, not a GPU');
  const w = await workloads('jpeg');
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-gpu-store-'));
  for (const k of ['det', 'rec', 'cls'] as ModelKey[]) fs.cpSync(path.join(ROOT, 'models', w[k].folder), path.join(store, w[k].folder), { recursive: true });
  const predict = async (base: string, k: ModelKey, name = w[k].folder) => {
    const r = await fetch(`${base}/predictions/${name}`, { method: 'POST', headers: { 'content-type': w[k].contentType }, body: w[k].body });
    if (r.status !== 200) throw new Error(`${name}: ${r.status} ${await r.text()}`);
    return r.text();
  };

  // The same models, requests and answers on a CPU server and a GPU server, taking turns.
  const cpu = await start(store, { 'default-device': 'cpu' });
  const gpu = await start(store, { 'default-device': 'cuda' });
  console.log('\n| model | CPU p50 ms | GPU p50 ms | speed-up | answers equal |\n|---|---:|---:|---:|---|');
  const speedups: Record<string, number> = {};
  let gpuCopyBytes = 0;
  for (const k of ['det', 'rec', 'cls'] as ModelKey[]) {
    for (const s of [cpu, gpu]) await fetch(`${s.admin}/models?url=${w[k].folder}`, { method: 'POST' });
    const d = await (await fetch(`${gpu.admin}/models/${w[k].folder}`)).json() as { device: string; deviceReason?: string; workers: { gpuMemoryUsage?: number }[] };
    if (d.device !== 'cuda') throw new Error(`${k} did not go on the GPU: ${d.deviceReason}`);
    const same = (await predict(cpu.base, k)) === (await predict(gpu.base, k));
    const times = { cpu: [] as number[], gpu: [] as number[] };
    for (let i = 0; i < n; i++) {
      for (const [name, s] of [['cpu', cpu], ['gpu', gpu]] as const) {
        const t = performance.now();
        await predict(s.base, k);
        times[name].push(performance.now() - t);
      }
    }
    speedups[k] = median(times.cpu) / median(times.gpu);
    if (k === 'det') gpuCopyBytes = (await (await fetch(`${gpu.admin}/models/${w[k].folder}`)).json() as { workers: { gpuMemoryUsage: number }[] }).workers[0].gpuMemoryUsage;
    console.log(`| ${k} | ${median(times.cpu).toFixed(2)} | ${median(times.gpu).toFixed(2)} | ${speedups[k].toFixed(2)} | ${same ? 'yes' : 'no (float differences)'} |`);
  }
  await cpu.server.close();
  await gpu.server.close();

  // One GPU whose budget holds 2.5 detector copies, 6 detectors in turn: evictions, never an error or over-budget.
  const total = probe.gpus[0].totalBytes;
  const reserve = Math.max(0, total - Math.round(2.5 * gpuCopyBytes));
  const tight = await start(store, { 'default-device': 'cuda', 'gpu-ids': String(probe.gpus[0].id), 'gpu-memory-percent': '100', 'gpu-memory-reserve': String(reserve), 'memory-budget': '0' });
  let failures = 0;
  let overBudget = 0;
  for (let i = 0; i < 6; i++) await fetch(`${tight.admin}/models?url=${w.det.folder}&model_name=det${i}&synchronous=false`, { method: 'POST' });
  const reference = await predict(tight.base, 'det', 'det0');
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 6; i++) {
      const answer = await predict(tight.base, 'det', `det${i}`).catch(() => undefined);
      if (answer !== reference) failures++;
      const status = await (await fetch(`${tight.admin}/status`)).json() as { budget: { gpus: { bytes: number; usedBytes: number }[] } };
      overBudget = Math.max(overBudget, ...status.budget.gpus.map((g) => g.usedBytes - g.bytes));
    }
  }
  const metrics = await (await fetch(`${tight.admin}/metrics`)).text();
  const evictions = metrics.split('\n').filter((l) => l.startsWith('quiver_model_evictions_total{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  await tight.server.close();
  console.log(`\nGPU ${probe.gpus[0].id} budget ${(2.5 * gpuCopyBytes / MiB).toFixed(0)} MiB (2.5 detector copies of ${(gpuCopyBytes / MiB).toFixed(0)} MiB), 6 detectors × 3 rounds: ${evictions} evictions, ${failures} wrong or failed answers, most over budget ${overBudget} bytes`);
  fs.rmSync(store, { recursive: true, force: true });
  console.log(`RESULT gpu_sessions ran=1${probe.fake ? ' fake=1' : ''} det_speedup=${speedups.det.toFixed(2)} rec_speedup=${speedups.rec.toFixed(2)} cls_speedup=${speedups.cls.toFixed(2)} budget_evictions=${evictions} budget_failures=${failures} over_budget_bytes=${overBudget}`);
  if (failures > 0 || overBudget > 0) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
