// npm run bench:soak -- --requests N — the three PP-OCR models under a mix of valid and invalid
// requests at concurrency 32, with a worker fault and one kill of the server process in the middle.
// Every answer is checked against the answer the same request got before the load.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { percentile } from './load';
import { addOneModel } from './models';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const MAX_REQUEST_SIZE = 1024 * 1024;

export interface SoakOptions {
  requests: number;
  concurrency: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  requests: number;
  lost: number;
  wrong: number;
  unexpected5xx: number;
  faultAnswers: number;
  retried: number;
  rssGrowthPct: number;
  /** The server's median RSS in each tenth of the run, in bytes (0 where nothing was sampled). */
  rssByTenth: number[];
  p50Ms: number;
  p99Ms: number;
  seconds: number;
  problems: string[];
}

type Kind = 'det' | 'rec' | 'cls' | 'garbage-image' | 'wrong-shape' | 'unknown-model' | 'oversize' | 'worker-fault';

interface Spec {
  kind: Kind;
  model: string;
  contentType: string;
  body: Buffer;
  /** The status this request must get. */
  status: number;
  /** For 200s, the answer the same request got before the load. */
  answer?: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function page(lines: string[], width: number, height: number): Promise<Buffer> {
  const text = lines.map((t, i) => `<text x="40" y="${90 + i * 120}" font-family="DejaVu Sans, sans-serif" font-size="48" fill="black">${t}</text>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

async function line(text: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="240" height="48"><rect width="100%" height="100%" fill="white"/><text x="6" y="35" font-family="DejaVu Sans, sans-serif" font-size="28" fill="black">${text}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** A handler that ends its worker thread on request: the injected worker fault. */
const FAULT_HANDLER = `module.exports = { postprocess(o) { if (o.y.data[0] === 3001) process.exit(9); return { y: o.y.data[0] }; } };`;

function serverRss(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const say = options.log ?? (() => undefined);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-soak-'));
  const store = path.join(root, 'store');
  for (const m of ['ocr-det', 'ocr-rec', 'ocr-cls']) fs.cpSync(path.join(BUILTIN_MODEL_STORE, m), path.join(store, m), { recursive: true });
  fs.mkdirSync(path.join(store, 'faulty'));
  fs.writeFileSync(path.join(store, 'faulty', 'model.onnx'), addOneModel());
  fs.writeFileSync(path.join(store, 'faulty', 'model-config.json'), JSON.stringify({ handler: 'handler.js' }));
  fs.writeFileSync(path.join(store, 'faulty', 'handler.js'), FAULT_HANDLER);

  const [port, adminPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  const server: ChildProcess = spawn(
    process.execPath,
    [CLI, 'serve', '--model-store', store, '--work-dir', path.join(root, 'work'), '--models', 'ALL', '--workers', '2',
      '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${adminPort}`, '--grpc-inference-address', '127.0.0.1:0',
      '--max-request-size', String(MAX_REQUEST_SIZE), '--job-queue-size', '200'],
    { env: { PATH: process.env.PATH, QUIVER_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let partial = '';
  const childPids: number[] = [];
  const keep = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('"msg":"request"')) continue;
      output += `${line}\n`;
      if (line.includes('"msg":"server process started"')) childPids.push(JSON.parse(line).childPid as number);
    }
  };
  server.stdout!.on('data', keep);
  server.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
  const childPid = (): number | undefined => childPids[childPids.length - 1];

  try {
    let up = false;
    for (let i = 0; i < 1200 && !up; i++) {
      up = await fetch(`${base}/ping`).then((r) => r.status === 200, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) throw new Error(`the server did not start:\n${output}`);
    const valid: Spec[] = [
      { kind: 'det', model: 'ocr-det', contentType: 'image/jpeg', body: await page(['Soak test page one', 'second line'], 640, 480), status: 200 },
      { kind: 'det', model: 'ocr-det', contentType: 'image/jpeg', body: await page(['Another page'], 480, 360), status: 200 },
      { kind: 'rec', model: 'ocr-rec', contentType: 'image/png', body: await line('Quiver 2026'), status: 200 },
      { kind: 'rec', model: 'ocr-rec', contentType: 'image/png', body: await line('hello soak'), status: 200 },
      { kind: 'cls', model: 'ocr-cls', contentType: 'image/png', body: await line('upright'), status: 200 },
      { kind: 'cls', model: 'ocr-cls', contentType: 'image/png', body: await sharp(await line('flipped')).rotate(180).png().toBuffer(), status: 200 },
    ];
    for (const spec of valid) {
      const r = await fetch(`${base}/predictions/${spec.model}`, { method: 'POST', headers: { 'content-type': spec.contentType }, body: spec.body });
      if (r.status !== 200) throw new Error(`reference answer for ${spec.kind} failed: ${r.status} ${await r.text()}`);
      spec.answer = await r.text();
    }
    const invalid: Spec[] = [
      { kind: 'garbage-image', model: 'ocr-det', contentType: 'image/jpeg', body: Buffer.from('this is not a jpeg at all'), status: 400 },
      { kind: 'wrong-shape', model: 'ocr-cls', contentType: 'application/json', body: Buffer.from(JSON.stringify({ x: [[1, 2, 3]] })), status: 400 },
      { kind: 'unknown-model', model: 'no-such-model', contentType: 'image/png', body: valid[2].body, status: 404 },
      { kind: 'oversize', model: 'ocr-cls', contentType: 'image/png', body: Buffer.alloc(MAX_REQUEST_SIZE + 1024, 7), status: 413 },
    ];
    const fault: Spec = { kind: 'worker-fault', model: 'faulty', contentType: 'application/json', body: Buffer.from(JSON.stringify({ x: [[3000]] })), status: 500 };

    // The mix, in a fixed order: mostly valid requests, one in five invalid.
    const specs: Spec[] = Array.from({ length: options.requests }, (_, i) => (i % 5 === 4 ? invalid[(i / 5) % invalid.length | 0] : valid[(i * 7) % valid.length]));
    const faultAt = Math.floor(options.requests * 0.2);
    const killAt = Math.floor(options.requests * 0.3);
    specs[faultAt] = fault;

    let nextIndex = 0;
    let done = 0;
    let killed = false;
    let lost = 0;
    let wrong = 0;
    let unexpected5xx = 0;
    let faultAnswers = 0;
    let retried = 0;
    const latencies: number[] = [];
    const rss: { at: number; bytes: number }[] = [];
    const problems: string[] = [];
    const sampler = setInterval(() => {
      const bytes = serverRss(childPid());
      if (bytes) rss.push({ at: done, bytes });
    }, 200);

    const send = async (spec: Spec): Promise<{ status: number; text: string } | undefined> => {
      // A client retries what never got an answer (the process was gone) or was told to come back.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        try {
          const r = await fetch(`${base}/predictions/${spec.model}`, { method: 'POST', headers: { 'content-type': spec.contentType }, body: spec.body });
          const text = await r.text();
          if (r.status === 503 && spec.status !== 503) {
            retried++;
            await new Promise((res) => setTimeout(res, Number(r.headers.get('retry-after') ?? 1) * 100));
            continue;
          }
          return { status: r.status, text };
        } catch {
          retried++;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      return undefined;
    };

    const started = Date.now();
    const worker = async () => {
      for (;;) {
        const i = nextIndex++;
        if (i >= specs.length) return;
        if (i === killAt && !killed) {
          killed = true;
          const pid = childPid();
          say(`killing the server process ${pid} at request ${i}`);
          if (pid) process.kill(pid, 'SIGKILL');
        }
        const spec = specs[i];
        const t = Date.now();
        const got = await send(spec);
        latencies.push(Date.now() - t);
        done++;
        if (!got) {
          lost++;
          problems.push(`request ${i} (${spec.kind}) got no answer`);
          continue;
        }
        if (got.status >= 500 && spec.kind !== 'worker-fault') {
          unexpected5xx++;
          problems.push(`request ${i} (${spec.kind}) got ${got.status}: ${got.text.slice(0, 160)}`);
        } else if (spec.kind === 'worker-fault') {
          if (got.status >= 500) faultAnswers++;
          else problems.push(`the injected fault got ${got.status}`);
        } else if (got.status !== spec.status || (spec.answer !== undefined && got.text !== spec.answer)) {
          wrong++;
          problems.push(`request ${i} (${spec.kind}) got ${got.status} ${got.text.slice(0, 120)}; expected ${spec.status} ${spec.answer?.slice(0, 120) ?? ''}`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    clearInterval(sampler);
    const seconds = (Date.now() - started) / 1000;

    // Growth over the second half: the last tenth against the tenth after the middle.
    const window = (from: number, to: number) => rss.filter((r) => r.at >= from * options.requests && r.at < to * options.requests).map((r) => r.bytes).sort((a, b) => a - b);
    const middle = window(0.5, 0.6);
    const end = window(0.9, 1.01);
    const rssGrowthPct = middle.length && end.length ? ((percentile(end, 50) - percentile(middle, 50)) / percentile(middle, 50)) * 100 : NaN;
    const rssByTenth = Array.from({ length: 10 }, (_, i) => {
      const w = window(i / 10, i === 9 ? 1.01 : (i + 1) / 10);
      return w.length ? percentile(w, 50) : 0;
    });
    const sorted = latencies.sort((a, b) => a - b);
    return {
      requests: options.requests, lost, wrong, unexpected5xx, faultAnswers, retried, rssGrowthPct, rssByTenth,
      p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), seconds, problems,
    };
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
}

function formatReport(r: SoakReport): string {
  return `RESULT soak requests=${r.requests} lost=${r.lost} wrong=${r.wrong} unexpected_5xx=${r.unexpected5xx} rss_growth_pct=${r.rssGrowthPct.toFixed(2)} fault_5xx=${r.faultAnswers} retried=${r.retried}`;
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--requests');
  const requests = at > 0 ? Number(process.argv[at + 1]) : 3000;
  const report = await runSoak({ requests, concurrency: 32, log: (l) => console.log(l) });
  console.log(`${report.requests} requests in ${report.seconds.toFixed(1)} s at concurrency 32; latency p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms`);
  console.log('mix: det/rec/cls images (4 in 5), garbage images, wrong shapes, unknown models, oversize bodies (1 in 5); one worker fault at 20%, one server kill (SIGKILL) at 30%');
  console.log(`server RSS by tenth of the run, MiB: ${report.rssByTenth.map((b) => (b / 2 ** 20).toFixed(1)).join(' ')}`);
  for (const p of report.problems.slice(0, 20)) console.log(`problem: ${p}`);
  console.log(formatReport(report));
  if (report.lost || report.wrong || report.unexpected5xx) process.exit(1);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
