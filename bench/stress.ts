// npm run bench -- [options] (also `quiver bench`) — the multi-model stress scenario against any target
// that speaks MMS's /predictions/{model} or SageMaker's /invocations, and, in the same run, the
// in-process baseline: the same models, requests, preprocessing and inference threads, no HTTP.
//
//   --target quiver|URL     quiver: start Quiver (default); URL: a running server (MMS, Quiver, ...)
//   --api mms|sagemaker     how to call the target (default mms)
//   --models det,rec,cls    which PP-OCR models (default all three)
//   --names det=NAME,...    model names on an external target (default ocr-det, ocr-rec, ocr-cls)
//   --duration S            seconds per scenario (default 5)
//   --concurrency 1,4       concurrency per model (default 1,4)
//   --workers N             Quiver worker threads = baseline lanes (default: CPU count)
//   --report FILE           markdown report (default bench/report.md)
//   --chart FILE            SVG chart (default bench/report.svg)
import { serverNodeArgs } from '../src/cli/supervisor';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { selectImageKernels } from '../src/preprocess/kernels';
import { runInference } from '../src/workers/inference';
import type { ModelSpec } from '../src/workers/messages';
import { SessionCache } from '../src/workers/session-cache';
import { parseModelConfig } from '../src/models/model-config';
import { percentile, runLoad, LoadResult } from './load';
import { renderChart } from './chart';
import { ModelKey, Workload, workloads } from './workloads';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Measurement {
  target: string;
  scenario: string;
  model: ModelKey;
  concurrency: number;
  throughput: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
  rssMb?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function rssOf(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The standalone execution: the worker's own pipeline called in this process, lanes = worker threads. */
class InProcessBaseline {
  private readonly sessions: SessionCache;
  private readonly kernels = selectImageKernels('auto');
  private readonly specs = new Map<ModelKey, ModelSpec>();

  constructor() {
    this.sessions = new SessionCache({ intraOpThreads: 1, interOpThreads: 1 });
  }

  async load(w: Workload): Promise<void> {
    const dir = path.join(BUILTIN_MODEL_STORE, w.folder);
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(dir, 'model-config.json'), 'utf8')), 'model-config.json');
    const spec: ModelSpec = {
      key: `baseline-${w.key}`, name: w.folder, version: '1.0', modelPath: path.join(dir, 'model.onnx'), config,
      labels: config.postprocess.type === 'topk' ? config.postprocess.labels : undefined,
      handlerPath: config.handler ? path.join(dir, config.handler) : undefined,
    };
    this.specs.set(w.key, spec);
    await this.sessions.ensure(spec);
  }

  private async once(w: Workload): Promise<string> {
    const model = await this.sessions.ensure(this.specs.get(w.key)!);
    const result = await runInference(model, { body: new Uint8Array(w.body), contentType: w.contentType, requestId: 'b', enqueuedAt: Date.now() }, {
      maxImagePixels: 1e8, kernels: this.kernels.kernels,
    });
    return result.body;
  }

  answer(w: Workload): Promise<string> {
    return this.once(w);
  }

  /**
   * `clients` closed loops for `seconds`, sharing `lanes` inference lanes (as Quiver's clients share its
   * worker threads), each picking the next model from `pick`; latency includes waiting for a lane.
   */
  async run(pick: Workload[], lanes: number, seconds: number, clients = lanes): Promise<Map<ModelKey, number[]>> {
    const latencies = new Map<ModelKey, number[]>(pick.map((w) => [w.key, []]));
    const end = Date.now() + seconds * 1000;
    let turn = 0;
    let free = lanes;
    const waiting: (() => void)[] = [];
    const acquire = () => (free > 0 ? (free--, Promise.resolve()) : new Promise<void>((resolve) => waiting.push(resolve)));
    const release = () => {
      const next = waiting.shift();
      if (next) next();
      else free++;
    };
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < end) {
          const w = pick[turn++ % pick.length];
          const t = process.hrtime.bigint();
          await acquire();
          try {
            await this.once(w);
          } finally {
            release();
          }
          latencies.get(w.key)!.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
      }),
    );
    return latencies;
  }
}

const ROUNDS = 3;

/** Field by field median of measurements of one scenario. */
function medianOf(ms: Measurement[]): Measurement {
  const med = (f: (m: Measurement) => number) => [...ms.map(f)].sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  return {
    ...ms[0], throughput: med((m) => m.throughput), p50: med((m) => m.p50), p90: med((m) => m.p90), p99: med((m) => m.p99),
    errors: ms.reduce((a, m) => a + m.errors, 0),
  };
}

function summarize(target: string, scenario: string, model: ModelKey, concurrency: number, seconds: number, lat: number[]): Measurement {
  const sorted = [...lat].sort((a, b) => a - b);
  return {
    target, scenario, model, concurrency, throughput: lat.length / seconds,
    p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), errors: 0,
  };
}

function fromLoad(target: string, scenario: string, model: ModelKey, concurrency: number, r: LoadResult, rssMb?: number): Measurement {
  return { target, scenario, model, concurrency, throughput: r.throughput, p50: r.p50, p90: r.p90, p99: r.p99, errors: r.errors + r.timeouts + r.non2xx, rssMb };
}

/** Mean seconds per stage of a model, from Quiver's own histograms (where the time goes). */
function stageMeans(metrics: string, model: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stage of ['queue', 'preprocess', 'inference', 'postprocess']) {
    const find = (suffix: string) => {
      const line = metrics.split('\n').find((l) => l.startsWith(`quiver_inference_stage_duration_seconds_${suffix}{model="${model}",stage="${stage}"}`));
      return line ? Number(line.split(' ').pop()) : NaN;
    };
    out[stage] = (find('sum') / find('count')) * 1000;
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      target: { type: 'string', default: 'quiver' }, api: { type: 'string', default: 'mms' }, models: { type: 'string', default: 'det,rec,cls' },
      names: { type: 'string', default: '' }, duration: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '1,4' },
      workers: { type: 'string', default: String(os.availableParallelism()) }, report: { type: 'string', default: path.join(ROOT, 'bench', 'report.md') },
      chart: { type: 'string', default: path.join(ROOT, 'bench', 'report.svg') },
    },
    strict: true,
  });
  const seconds = Number(values.duration);
  const concurrencies = values.concurrency!.split(',').map(Number);
  const workers = Number(values.workers);
  const all = await workloads();
  const chosen = values.models!.split(',').map((k) => all[k as ModelKey]).filter(Boolean);
  const names: Record<ModelKey, string> = { det: 'ocr-det', rec: 'ocr-rec', cls: 'ocr-cls' };
  for (const pair of values.names!.split(',').filter(Boolean)) {
    const [k, v] = pair.split('=');
    names[k as ModelKey] = v;
  }

  let server: ChildProcess | undefined;
  let base = values.target!;
  let metricsUrl: string | undefined;
  const targetName = base === 'quiver' ? 'quiver' : `target ${base}`;
  if (base === 'quiver') {
    const [port, admin] = [await freePort(), await freePort()];
    // With the V8 flags the supervisor gives the server (npm start's way), without the supervisor's own process.
    server = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--no-supervisor', '--models', 'ALL', '--workers', String(workers), '--workers-per-model', '1', '--log-level', 'warn',
      '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', '127.0.0.1:0', '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-bench-'))], { stdio: 'inherit' });
    base = `http://127.0.0.1:${port}`;
    metricsUrl = `http://127.0.0.1:${admin}/metrics`;
    for (let i = 0; i < 600; i++) {
      if (await fetch(`${base}/ping`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const job = (w: Workload, connections: number, durationS: number) => ({
    url: values.api === 'sagemaker' ? `${base}/invocations` : `${base}/predictions/${names[w.key]}`,
    headers: { 'content-type': w.contentType, ...(values.api === 'sagemaker' ? { 'X-Amzn-SageMaker-Target-Model': names[w.key] } : {}) },
    bodies: [w.body.toString('base64')],
    connections,
    durationS,
  });

  const results: Measurement[] = [];
  const where: string[] = [];
  const baseline = new InProcessBaseline();
  try {
    // Answers first: the target must answer what the in-process pipeline answers.
    for (const w of chosen) {
      await baseline.load(w);
      const r = await fetch(job(w, 1, 1).url, { method: 'POST', headers: job(w, 1, 1).headers, body: w.body });
      if (r.status !== 200) throw new Error(`${targetName} answered ${r.status} for ${w.key}: ${await r.text()}`);
      if (base.startsWith('http://127.0.0.1') && server && (await r.text()) !== (await baseline.answer(w))) throw new Error(`${w.key}: Quiver and the in-process pipeline disagree`);
    }

    for (const w of chosen) {
      for (const c of concurrencies) {
        await runLoad(job(w, c, 1));
        let peak = 0;
        const sampler = setInterval(() => (peak = Math.max(peak, rssOf(server?.pid) ?? 0)), 100);
        // Target and baseline take turns in short rounds, so that the shared machine's drifts hit both;
        // each figure is the median over the rounds.
        const rounds: { target: Measurement; base: Measurement }[] = [];
        for (let k = 0; k < ROUNDS; k++) {
          const r = await runLoad(job(w, c, seconds / ROUNDS));
          // Quiver places each model on one worker (workers-per-model 1): the baseline gets one lane,
          // shared by the same number of clients.
          const lat = await baseline.run([w], 1, seconds / ROUNDS, c);
          rounds.push({
            target: fromLoad(targetName, 'one model', w.key, c, r),
            base: summarize('in-process', 'one model', w.key, c, seconds / ROUNDS, lat.get(w.key)!),
          });
        }
        clearInterval(sampler);
        results.push({ ...medianOf(rounds.map((x) => x.target)), rssMb: peak || undefined });
        results.push(medianOf(rounds.map((x) => x.base)));
      }
    }

    // All models at once at the highest concurrency: the stress scenario.
    const c = Math.max(...concurrencies);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(server?.pid) ?? 0)), 100);
    const together = await Promise.all(chosen.map((w) => runLoad(job(w, c, seconds))));
    clearInterval(sampler);
    together.forEach((r, i) => results.push(fromLoad(targetName, 'all at once', chosen[i].key, c, r, peak || undefined)));
    // The baseline serves the same mix: models in proportion to what the target answered.
    const mix: Workload[] = [];
    const smallest = Math.max(1, Math.min(...together.map((r) => r.requests)));
    together.forEach((r, i) => {
      for (let k = 0; k < Math.max(1, Math.round(r.requests / smallest)); k++) mix.push(chosen[i]);
    });
    const lat = await baseline.run(mix, workers, seconds, c * chosen.length);
    for (const w of chosen) results.push(summarize('in-process', 'all at once', w.key, c, seconds, lat.get(w.key)!));

    if (metricsUrl) {
      const metrics = await (await fetch(metricsUrl)).text();
      for (const w of chosen) {
        const m = stageMeans(metrics, names[w.key]);
        where.push(`| ${w.key} | ${m.queue.toFixed(2)} | ${m.preprocess.toFixed(2)} | ${m.inference.toFixed(2)} | ${m.postprocess.toFixed(2)} |`);
      }
    }
  } finally {
    server?.kill('SIGTERM');
  }

  const get = (target: string, scenario: string, model: ModelKey, c: number) => results.find((r) => r.target === target && r.scenario === scenario && r.model === model && r.concurrency === c);
  const lines: string[] = [];
  lines.push(`# Multi-model benchmark`, '', `${new Date().toISOString()}; target: ${targetName} (${values.api} API); ${workers} inference threads (Quiver workers = baseline lanes), one intra-op thread each; ${seconds} s per scenario; load from a separate process (bench/load-client.ts).`, '');
  for (const w of chosen) lines.push(`- ${w.key}: ${w.description}`);
  lines.push('', '| scenario | model | concurrency | target | req/s | p50 ms | p90 ms | p99 ms | errors | server RSS MB | p50 − in-process p50 | throughput ÷ in-process |', '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results.filter((x) => x.target !== 'in-process')) {
    const b = get('in-process', r.scenario, r.model, r.concurrency)!;
    lines.push(`| ${r.scenario} | ${r.model} | ${r.concurrency} | ${r.target} | ${r.throughput.toFixed(1)} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.errors} | ${r.rssMb?.toFixed(0) ?? '–'} | ${(r.p50 - b.p50).toFixed(2)} ms | ${(r.throughput / b.throughput).toFixed(2)} |`);
    lines.push(`| ${r.scenario} | ${r.model} | ${r.concurrency} | in-process | ${b.throughput.toFixed(1)} | ${b.p50.toFixed(2)} | ${b.p90.toFixed(2)} | ${b.p99.toFixed(2)} | 0 | – | | |`);
  }
  if (where.length) lines.push('', 'Where the time goes inside Quiver (means over the whole run, ms):', '', '| model | queue | preprocess | inference | postprocess |', '|---|---:|---:|---:|---:|', ...where);

  const overheadCls = get(targetName, 'one model', 'cls', 1) && get('in-process', 'one model', 'cls', 1) ? get(targetName, 'one model', 'cls', 1)!.p50 - get('in-process', 'one model', 'cls', 1)!.p50 : NaN;
  const det = get(targetName, 'one model', 'det', 1);
  const detBase = get('in-process', 'one model', 'det', 1);
  const detPct = det && detBase ? ((det.p50 - detBase.p50) / detBase.p50) * 100 : NaN;
  const sum = (target: string) => results.filter((r) => r.target === target && r.scenario === 'all at once').reduce((a, r) => a + r.throughput, 0);
  const stressRatio = sum(targetName) / sum('in-process');
  const result = `RESULT bench overhead_c1_ms=${overheadCls.toFixed(2)} det_overhead_pct=${detPct.toFixed(1)} stress_throughput_ratio=${stressRatio.toFixed(2)}`;
  lines.push('', '```', result, '```', '', `![latency and throughput](${path.basename(values.chart!)})`);
  fs.writeFileSync(values.report!, `${lines.join('\n')}\n`);
  fs.writeFileSync(values.chart!, renderChart(results, targetName));
  console.log(lines.join('\n'));
  console.log(`\nreport: ${values.report}\nchart: ${values.chart}`);
  console.log(result);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
