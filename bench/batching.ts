// npm run bench:batching — the PP-OCR classifier and a generated MLP, batching off against on in the
// same run, at concurrency 1, 8, 32 and 64, with load from a separate process. Answers are checked.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../src/config/load';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { QuiverServer } from '../src/server';
import { runLoad, LoadResult } from './load';
import { mlpModel } from './models';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_LOAD_ROUNDS ?? 3);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,8,32,64').split(',').map(Number);
const WORKERS = Math.max(1, os.availableParallelism());
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 5);
// Wide enough that a run is bound by reading the weights (50 MB): the case dynamic batching is for.
const WIDTH = Number(process.env.BENCH_MLP_WIDTH ?? 2048);
const LAYERS = 3;

async function textLine(i: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="192" height="48"><rect width="100%" height="100%" fill="white"/><text x="6" y="34" font-family="DejaVu Sans, sans-serif" font-size="26" fill="black">Line ${i} ok</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

interface Workload {
  model: string;
  contentType: string;
  bodies: Buffer[];
}

async function check(base: string, a: string, b: string, w: Workload): Promise<void> {
  const post = (model: string, body: Buffer) =>
    fetch(`${base}/predictions/${model}`, { method: 'POST', headers: { 'content-type': w.contentType }, body }).then((r) => r.text());
  const bodies = Array.from({ length: 32 }, (_, i) => w.bodies[i % w.bodies.length]);
  const [off, on] = await Promise.all([Promise.all(bodies.map((body) => post(a, body))), Promise.all(bodies.map((body) => post(b, body)))]);
  for (let i = 0; i < bodies.length; i++) {
    const x = JSON.stringify(JSON.parse(off[i]), (_k, v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v));
    const y = JSON.stringify(JSON.parse(on[i]), (_k, v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v));
    if (x !== y) throw new Error(`batched answer differs for ${w.model} request ${i}: ${y.slice(0, 120)} vs ${x.slice(0, 120)}`);
  }
}

/**
 * onnxruntime alone, one thread, as a worker runs it: ms per item at batch 1 and at batch 8 (best of
 * five passes). Their ratio is what batching can gain inside the run; the rest of its gain is per-task
 * overhead saved around it.
 */
async function runGain(modelPath: string, itemShape: number[]): Promise<{ one: number; eight: number }> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const perItem = async (n: number) => {
    const size = itemShape.reduce((a, b) => a * b, n);
    const x = new ort.Tensor('float32', Float32Array.from({ length: size }, (_, i) => Math.sin(i)), [n, ...itemShape]);
    let best = Infinity;
    for (let pass = 0; pass < 5; pass++) {
      const runs = Math.max(3, Math.round(48 / n));
      const t = performance.now();
      for (let i = 0; i < runs; i++) await session.run({ [session.inputNames[0]]: x });
      best = Math.min(best, (performance.now() - t) / runs / n);
    }
    return best;
  };
  const result = { one: await perItem(1), eight: await perItem(8) };
  await session.release();
  return result;
}

/** The median of each figure over the rounds (errors are summed: every one counts). */
function medianRound(rounds: LoadResult[]): LoadResult {
  const median = (pick: (r: LoadResult) => number) => rounds.map(pick).sort((a, b) => a - b)[Math.floor(rounds.length / 2)];
  const sum = (pick: (r: LoadResult) => number) => rounds.reduce((n, r) => n + pick(r), 0);
  return {
    requests: sum((r) => r.requests), throughput: median((r) => r.throughput), p50: median((r) => r.p50), p90: median((r) => r.p90), p99: median((r) => r.p99),
    errors: sum((r) => r.errors), timeouts: sum((r) => r.timeouts), non2xx: sum((r) => r.non2xx),
    cpuMs: median((r) => r.cpuMs),
  };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-bench-batching-'));
  const store = path.join(root, 'store');
  fs.cpSync(path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), path.join(store, 'cls'), { recursive: true });
  fs.mkdirSync(path.join(store, 'mlp'), { recursive: true });
  fs.writeFileSync(path.join(store, 'mlp', 'model.onnx'), mlpModel(WIDTH, LAYERS));

  const server = await QuiverServer.start(
    loadConfig(
      {
        'model-store': store, 'work-dir': path.join(root, 'work'), workers: String(WORKERS), 'log-level': 'warn',
        'inference-address': '127.0.0.1:0', 'management-address': '127.0.0.1:0', 'grpc-inference-address': '127.0.0.1:0', 'job-queue-size': '1000',
      },
      {},
    ),
  );
  const { inference, management } = server.urls();
  for (const [name, url, batch] of [['cls-off', 'cls', 1], ['cls-on', 'cls', BATCH], ['mlp-off', 'mlp', 1], ['mlp-on', 'mlp', BATCH]] as const) {
    const r = await fetch(`${management}/models?url=${url}&model_name=${name}&initial_workers=${WORKERS}&batch_size=${batch}&max_batch_delay=${DELAY_MS}`, { method: 'POST' });
    if (r.status !== 200) throw new Error(`register ${name}: ${await r.text()}`);
  }

  const workloads: Workload[] = [
    { model: 'cls', contentType: 'image/png', bodies: await Promise.all([0, 1, 2, 3].map(textLine)) },
    {
      model: 'mlp',
      contentType: 'application/json',
      bodies: [0, 1, 2, 3].map((k) => Buffer.from(JSON.stringify({ x: [Array.from({ length: WIDTH }, (_, i) => Math.sin(i * (k + 1)))] }))),
    },
  ];

  const rows: string[] = [];
  const results = new Map<string, LoadResult>();
  for (const w of workloads) {
    await check(inference!, `${w.model}-off`, `${w.model}-on`, w);
    for (const c of CONCURRENCY) {
      const job = (mode: 'off' | 'on') => ({
        url: `${inference}/predictions/${w.model}-${mode}`,
        headers: { 'content-type': w.contentType },
        bodies: w.bodies.map((b) => b.toString('base64')),
        connections: c,
      });
      for (const mode of ['off', 'on'] as const) await runLoad({ ...job(mode), durationS: 1 }); // warm-up
      // Off and on take turns, so that a noisy neighbour hits both alike; each figure is the median round.
      const rounds: Record<'off' | 'on', LoadResult[]> = { off: [], on: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of ['off', 'on'] as const) rounds[mode].push(await runLoad({ ...job(mode), durationS: SECONDS }));
      }
      for (const mode of ['off', 'on'] as const) {
        const r = medianRound(rounds[mode]);
        results.set(`${w.model}-${mode}-${c}`, r);
        rows.push(`| ${w.model} | ${c} | ${mode} | ${r.throughput.toFixed(1)} | ${r.p50} | ${r.p99} | ${r.errors + r.timeouts + r.non2xx} |`);
      }
    }
  }
  const metrics = await (await fetch(`${management}/metrics`)).text();
  await server.close();
  const gains = {
    cls: await runGain(path.join(store, 'cls', 'model.onnx'), [3, 48, 192]),
    mlp: await runGain(path.join(store, 'mlp', 'model.onnx'), [WIDTH]),
  };

  console.log(`workers: ${WORKERS}; batch_size ${BATCH}, max_batch_delay ${DELAY_MS} ms; per point the median of ${ROUNDS} rounds of ${SECONDS} s, off and on in turn; load from a separate process (bench/load-client.ts)`);
  console.log('answers: batched and unbatched answers agree for both models\n');
  console.log('| model | concurrency | batching | req/s | p50 ms | p99 ms | errors |');
  console.log('|---|---:|---|---:|---:|---:|---:|');
  for (const row of rows) console.log(row);
  const mean = (model: string) => {
    const sum = Number(/quiver_batch_size_sum\{model="([^"]+)"\} (\S+)/.exec(metrics.split('\n').find((l) => l.startsWith(`quiver_batch_size_sum{model="${model}"`)) ?? '')?.[2]);
    const count = Number(/ (\S+)$/.exec(metrics.split('\n').find((l) => l.startsWith(`quiver_batch_size_count{model="${model}"`)) ?? '')?.[1]);
    return (sum / count).toFixed(1);
  };
  console.log(`\nmean batch size: cls-on ${mean('cls-on')}, mlp-on ${mean('mlp-on')}`);
  for (const [name, g] of Object.entries(gains)) {
    console.log(`onnxruntime alone, ${name}: ${g.one.toFixed(3)} ms per item at batch 1, ${g.eight.toFixed(3)} at batch 8 (${(g.one / g.eight).toFixed(2)}× from batching the run)`);
  }
  const at = (model: string, c: number) => ({ off: results.get(`${model}-off-${c}`)!, on: results.get(`${model}-on-${c}`)! });
  const cls = at('cls', 32);
  const mlp = at('mlp', 32);
  if (!cls.on || !mlp.on) return void console.log('RESULT batching (concurrency 32 not measured)');
  console.log(
    `RESULT batching speedup_c32=${(cls.on.throughput / cls.off.throughput).toFixed(2)} p99_ratio_c32=${(cls.on.p99 / cls.off.p99).toFixed(2)} ` +
      `mlp_speedup_c32=${(mlp.on.throughput / mlp.off.throughput).toFixed(2)} mlp_p99_ratio_c32=${(mlp.on.p99 / mlp.off.p99).toFixed(2)} ` +
      `cls_run_gain_b8=${(gains.cls.one / gains.cls.eight).toFixed(2)} mlp_run_gain_b8=${(gains.mlp.one / gains.mlp.eight).toFixed(2)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
