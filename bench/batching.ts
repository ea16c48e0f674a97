// npm run bench:batching — the PP-OCR classifier and a generated MLP, batching off against on in the
// same run, at concurrency 1, 8, 32 and 64, with load from a separate process. Answers are checked.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config/load';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { QuiverServer } from '../src/server';
import { runLoad, LoadResult } from './load';
import { mlpModel } from './models';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
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
        'inference-address': '127.0.0.1:0', 'management-address': '127.0.0.1:0', 'job-queue-size': '1000',
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
      for (const mode of ['off', 'on'] as const) {
        const job = {
          url: `${inference}/predictions/${w.model}-${mode}`,
          headers: { 'content-type': w.contentType },
          bodies: w.bodies.map((b) => b.toString('base64')),
          connections: c,
        };
        await runLoad({ ...job, durationS: 1 }); // warm-up
        const r = await runLoad({ ...job, durationS: SECONDS });
        results.set(`${w.model}-${mode}-${c}`, r);
        rows.push(`| ${w.model} | ${c} | ${mode} | ${r.throughput.toFixed(1)} | ${r.p50} | ${r.p99} | ${r.errors + r.timeouts + r.non2xx} |`);
      }
    }
  }
  const metrics = await (await fetch(`${management}/metrics`)).text();
  await server.close();

  console.log(`workers: ${WORKERS}; batch_size ${BATCH}, max_batch_delay ${DELAY_MS} ms; ${SECONDS} s per point; load from a separate process (bench/load-client.ts)`);
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
  const at = (model: string, c: number) => ({ off: results.get(`${model}-off-${c}`)!, on: results.get(`${model}-on-${c}`)! });
  const cls = at('cls', 32);
  const mlp = at('mlp', 32);
  if (!cls.on || !mlp.on) return void console.log('RESULT batching (concurrency 32 not measured)');
  console.log(
    `RESULT batching speedup_c32=${(cls.on.throughput / cls.off.throughput).toFixed(2)} p99_ratio_c32=${(cls.on.p99 / cls.off.p99).toFixed(2)} ` +
      `mlp_speedup_c32=${(mlp.on.throughput / mlp.off.throughput).toFixed(2)} mlp_p99_ratio_c32=${(mlp.on.p99 / mlp.off.p99).toFixed(2)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
