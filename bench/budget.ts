// npm run bench:budget [-- --requests N --models M] — many models of different sizes, a memory budget
// that holds about a fifth of them, and a Zipf-distributed stream of requests at concurrency 16 through
// HTTP, once with LRU and once with GreedyDual-Size-Frequency. Every answer names its model and is checked.
import { serverNodeArgs } from '../src/cli/supervisor';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, rssOf } from './process-info';
import { onnx } from 'onnx-proto';
import { percentile } from './load';
import { rng } from './models';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const MiB = 2 ** 20;

/** y = x · (k × I): n² float weights; the answer's first element is k, which names the model. */
function scaleModel(n: number, k: number): Uint8Array {
  const weights = new Float32Array(n * n);
  for (let i = 0; i < n; i++) weights[i * n + i] = k;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: n }] } } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'scale', node: [{ opType: 'MatMul', input: ['x', 'W'], output: ['y'] }], initializer: [{ name: 'W', dims: [n, n], dataType: FLOAT, rawData: new Uint8Array(weights.buffer) }], input: [info('x')], output: [info('y')] },
  })).finish();
}

/** y = x + 0, x: [N, n]: n floats of weights. */
function zeroAddModel(n: number): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: n }] } } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'zero', node: [{ opType: 'Add', input: ['x', 'b'], output: ['y'] }], initializer: [{ name: 'b', dims: [n], dataType: FLOAT, rawData: new Uint8Array(new Float32Array(n).buffer) }], input: [info('x')], output: [info('y')] },
  })).finish();
}

/** A Zipf(1) stream over `models`, popularity rank shuffled so that size and popularity are unrelated. */
function zipfStream(models: number, length: number, seed: number): number[] {
  const random = rng(seed);
  const rank = Array.from({ length: models }, (_, i) => i).sort(() => random() - 0.5);
  const weights = rank.map((_, r) => 1 / (r + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  return Array.from({ length }, () => {
    let u = random() * total;
    for (let r = 0; r < models; r++) {
      u -= weights[r];
      if (u <= 0) return rank[r];
    }
    return rank[models - 1];
  });
}

interface RunResult {
  policy: string;
  hitRatio: number;
  loads: number;
  evictions: number;
  hitP50: number;
  hitP99: number;
  missP50: number;
  missP99: number;
  peakRss: number;
  idleRss: number;
  /** Peak RSS with one tiny model under the same load: the server's fixed overhead. */
  overheadRss: number;
  wrong: number;
  failed: number;
  seconds: number;
}

interface Outcome {
  ms: number;
  coldStart: boolean;
  ok: boolean;
  answer?: number;
}

/** Sends `stream` (model indexes) at `concurrency`, a row of width `widthOf(k)` each; RSS is sampled meanwhile. */
async function drive(base: string, pid: number | undefined, stream: number[], concurrency: number, nameOf: (k: number) => string, widthOf: (k: number) => number) {
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 50);
  const outcomes: { k: number; outcome: Outcome }[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= stream.length) return;
      const k = stream[i];
      const x = new Array(widthOf(k)).fill(0);
      x[0] = 1;
      const t = process.hrtime.bigint();
      try {
        const r = await fetch(`${base}/predictions/${nameOf(k)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: [x] }) });
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        if (r.status !== 200) {
          const text = await r.text();
          if (outcomes.filter((o) => !o.outcome.ok).length < 3) console.log(`failed: ${nameOf(k)} ${r.status} ${text.slice(0, 160)}`);
          outcomes.push({ k, outcome: { ms, coldStart: false, ok: false } });
          continue;
        }
        const body = (await r.json()) as { y: number[][] };
        outcomes.push({ k, outcome: { ms, coldStart: r.headers.get('x-quiver-cold-start') !== null, ok: true, answer: body.y[0][0] } });
      } catch {
        outcomes.push({ k, outcome: { ms: 0, coldStart: false, ok: false } });
      }
    }
  }));
  clearInterval(sampler);
  peakRss = Math.max(peakRss, rssOf(pid));
  return { outcomes, peakRss };
}

async function run(policy: 'lru' | 'gdsf', store: string, sizes: number[], stream: number[], budget: number, concurrency: number): Promise<RunResult> {
  const [port, admin] = [await freePort(), await freePort()];
  const server: ChildProcess = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--no-supervisor', '--model-store', store, '--workers', '2', '--log-level', 'warn',
    '--memory-budget', String(budget), '--eviction-policy', policy, '--job-queue-size', '1000', '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-budget-')),
    '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', '127.0.0.1:0', '--max-request-size', String(64 * MiB)], { stdio: 'inherit' });
  const base = `http://127.0.0.1:${port}`;
  const manage = (method: string, query: string) => fetch(`http://127.0.0.1:${admin}/models${query}`, { method });
  try {
    for (let i = 0; i < 600 && !(await fetch(`${base}/ping`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    // The server warms onnxruntime up on every worker before it answers /ping.
    const idleRss = rssOf(server.pid);
    // The server's fixed overhead under this load: as many requests, the same bodies, at the same concurrency, to
    // one tiny model on each worker (HTTP, JSON, V8 heaps, worker queues), with no model memory to speak of.
    const widest = Math.max(...sizes);
    const registered = await manage('POST', `?url=overhead&initial_workers=2`);
    if (registered.status !== 200) throw new Error(`register overhead: ${registered.status} ${await registered.text()}`);
    const burst = await drive(base, server.pid, Array.from({ length: stream.length }, () => 0), concurrency, () => 'overhead', () => widest);
    if (burst.outcomes.some((o) => !o.outcome.ok)) throw new Error('the overhead burst had failures');
    await manage('DELETE', '/overhead');
    const overheadRss = burst.peakRss;

    // Each registration loads its model, evicting others past the budget; the stream then reloads on demand.
    for (let k = 0; k < sizes.length; k++) {
      const r = await manage('POST', `?url=m${k}&initial_workers=1`);
      if (r.status !== 200) throw new Error(`register m${k}: ${r.status} ${await r.text()}`);
    }
    const started = Date.now();
    const { outcomes, peakRss } = await drive(base, server.pid, stream, concurrency, (k) => `m${k}`, (k) => sizes[k]);
    const seconds = (Date.now() - started) / 1000;
    const ok = outcomes.filter((o) => o.outcome.ok);
    const hits = ok.filter((o) => !o.outcome.coldStart).map((o) => o.outcome.ms).sort((a, b) => a - b);
    const misses = ok.filter((o) => o.outcome.coldStart).map((o) => o.outcome.ms).sort((a, b) => a - b);
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    const sum = (name: string) => metrics.split('\n').filter((l) => l.startsWith(`${name}{`) && !l.includes('model="overhead"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    return {
      policy, hitRatio: hits.length / Math.max(1, ok.length), loads: sum('quiver_model_loads_total'), evictions: sum('quiver_model_evictions_total'),
      hitP50: percentile(hits, 50), hitP99: percentile(hits, 99), missP50: percentile(misses, 50), missP99: percentile(misses, 99),
      peakRss, idleRss, overheadRss,
      wrong: ok.filter((o) => o.outcome.answer !== o.k + 1).length,
      failed: outcomes.length - ok.length + (stream.length - outcomes.length),
      seconds,
    };
  } finally {
    server.kill('SIGTERM');
  }
}

async function costPerFileByte(store: string, k: number): Promise<number> {
  const [port, admin] = [await freePort(), await freePort()];
  const server = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--no-supervisor', '--model-store', store, '--workers', '1', '--log-level', 'warn', '--memory-budget', '0',
    '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-budget-')), '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', '127.0.0.1:0'], { stdio: 'inherit' });
  try {
    for (let i = 0; i < 600 && !(await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    await fetch(`http://127.0.0.1:${admin}/models?url=m${k}`, { method: 'POST' });
    const d = (await (await fetch(`http://127.0.0.1:${admin}/models/m${k}`)).json()) as { memoryBytes: number; modelBytes: number };
    return d.memoryBytes / d.modelBytes;
  } finally {
    server.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '10000' }, models: { type: 'string', default: '30' }, concurrency: { type: 'string', default: '16' } } });
  const count = Number(values.models);
  const requests = Number(values.requests);
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-budget-store-'));
  // Sizes from 5 to 60 MB of weights, spread evenly, model k answers k + 1.
  const sizes = Array.from({ length: count }, (_, k) => Math.round(Math.sqrt(((5 + (55 * k) / Math.max(1, count - 1)) * 1e6) / 4)));
  let totalBytes = 0;
  for (let k = 0; k < count; k++) {
    fs.mkdirSync(path.join(store, `m${k}`));
    const bytes = scaleModel(sizes[k], k + 1);
    totalBytes += bytes.length;
    fs.writeFileSync(path.join(store, `m${k}`, 'model.onnx'), bytes);
  }
  // y = x + 0 at the widest input: drives the same request bodies without model memory.
  fs.mkdirSync(path.join(store, 'overhead'));
  fs.writeFileSync(path.join(store, 'overhead', 'model.onnx'), zeroAddModel(Math.max(...sizes)));
  // About a fifth of the models' measured cost: one load of the largest, without a budget, says what a
  // session costs per byte of file here (onnxruntime pre-packs MatMul weights, so more than the file).
  const ratio = await costPerFileByte(store, count - 1);
  // Never below what the largest model needs while it loads (its session plus, for a moment, the parsed
  // file: 2.1× its file measured here), so that every model can be loaded alone within the budget.
  const largest = fs.statSync(path.join(store, `m${count - 1}`, 'model.onnx')).size;
  const budget = Math.round(Math.max((totalBytes * ratio) / 5, (ratio + 1.2) * largest));
  const stream = zipfStream(count, requests, 7);
  const results: RunResult[] = [];
  for (const policy of ['lru', 'gdsf'] as const) results.push(await run(policy, store, sizes, stream, budget, Number(values.concurrency)));
  fs.rmSync(store, { recursive: true, force: true });

  const mb = (b: number) => (b / MiB).toFixed(0);
  console.log(`${count} models, ${mb(totalBytes)} MiB of weights (5–60 MB each), measured session cost ${ratio.toFixed(2)}× the file; budget ${mb(budget)} MiB; ${requests} requests, Zipf(1) popularity independent of size, concurrency ${values.concurrency}; 2 workers\n`);
  console.log('| policy | hit ratio | loads | evictions | hit p50/p99 ms | miss p50/p99 ms | peak RSS MiB | idle RSS MiB | overhead RSS MiB | wrong | failed | seconds |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.policy} | ${r.hitRatio.toFixed(3)} | ${r.loads} | ${r.evictions} | ${r.hitP50.toFixed(1)} / ${r.hitP99.toFixed(1)} | ${r.missP50.toFixed(1)} / ${r.missP99.toFixed(1)} | ${mb(r.peakRss)} | ${mb(r.idleRss)} | ${mb(r.overheadRss)} | ${r.wrong} | ${r.failed} | ${r.seconds.toFixed(1)} |`);
  }
  const [lru, gdsf] = results;
  // Fixed overhead: the peak RSS of the same server under the same load with one tiny model.
  const overOf = (r: RunResult) => r.peakRss - budget - r.overheadRss;
  console.log(`\nserver fixed overhead (peak RSS, tiny model, same load): ${results.map((r) => `${r.policy} ${mb(r.overheadRss)} MiB`).join(', ')} (idle: ${mb(results[0].idleRss)} MiB)`);
  console.log(`peak RSS over (budget + fixed overhead): ${results.map((r) => `${r.policy} ${mb(overOf(r))} MiB`).join(', ')}`);
  // The worse of the two passes.
  const over = Math.max(...results.map(overOf));
  console.log(
    `RESULT budget hit_ratio=${gdsf.hitRatio.toFixed(3)} lru_hit_ratio=${lru.hitRatio.toFixed(3)} wrong=${lru.wrong + gdsf.wrong} failed=${lru.failed + gdsf.failed} peak_rss_over_budget=${Math.max(0, over)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
