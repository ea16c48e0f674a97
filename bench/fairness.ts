// npm run bench:fairness -- [options] (also the last part of npm run bench) — the post's stress: the three
// PP-OCR models called at once with JPEG bodies, c clients each, against the fair standalone baseline:
// each model's same pipeline alone in its own thread, requests one after another, all three threads at
// once (three independent processes, as MMS runs them). Reported per model, with how the cores were
// spent during the stress (server, load clients, idle: /proc), since the clients share the machine.
//
//   --target quiver|URL   quiver: start Quiver as npm start does, supervisor and server (default); URL: a running
//                         server with ocr-det/rec/cls
//   --duration S          seconds per round of each side (default 6)
//   --rounds N            rounds, target and baseline taking turns; medians are reported (default 3)
//   --clients N           concurrent clients per model (default 4)
//   --workers N           Quiver's --workers (default: CPU count)
//   --models LIST         the models called at once, cls among them (default det,rec,cls; det,cls is where the
//                         main thread's share matters most: two threads for two cores)
//   --log-level L         Quiver's --log-level (default info, as npm start runs it: an access-log line a
//                         request, on a pipe this bench reads; lines other than those are shown)
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { percentile, runLoad, LoadResult } from './load';
import { childPids, cpuSecondsOf, freePort, machineCpuSeconds, pssOf, rssOf } from './process-info';
import { standalone, standaloneServer } from './standalone';
import type { StandaloneJob, StandaloneResult } from './standalone-worker';
import { ModelKey, Workload, workloads } from './workloads';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const ALL_KEYS: ModelKey[] = ['det', 'rec', 'cls'];

interface Figures {
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Cores in use over one round of the stress: by the server(s), by the load clients, and left idle. */
interface CpuShare {
  server: number;
  clients: number;
  idle: number;
}

/** Runs `round` and says how the machine's cores were spent meanwhile; `serverCpu` reads the server's CPU seconds. */
async function measuredRound(serverCpu: () => number, round: () => Promise<LoadResult[]>): Promise<{ loads: LoadResult[]; cpu: CpuShare }> {
  const started = performance.now();
  const [machine, server] = [machineCpuSeconds(), serverCpu()];
  const loads = await round();
  const wall = (performance.now() - started) / 1000;
  const clientSeconds = loads.reduce((n, l) => n + l.cpuMs / 1000, 0);
  return { loads, cpu: { server: (serverCpu() - server) / wall, clients: clientSeconds / wall, idle: (machineCpuSeconds().idle - machine.idle) / wall } };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function fromLatencies(lat: number[], seconds: number): Figures {
  const sorted = [...lat].sort((a, b) => a - b);
  return { throughput: lat.length / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors: 0 };
}

function fromLoad(r: LoadResult): Figures {
  return { throughput: r.throughput, p50: r.p50, p99: r.p99, errors: r.errors + r.timeouts + r.non2xx };
}

function medianFigures(rounds: Figures[]): Figures {
  return {
    throughput: median(rounds.map((r) => r.throughput)), p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
  };
}

export interface FairnessResult {
  line: string;
  report: string[];
}

/** Reads the server's log as a terminal or a log driver would, and shows every line but the access log's. */
function showLogExceptRequests(server: ChildProcess): void {
  let rest = '';
  server.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const line of lines) if (!line.includes('"msg":"request"')) console.log(line);
  });
}

export async function fairness(argv: string[]): Promise<FairnessResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      target: { type: 'string', default: 'quiver' }, duration: { type: 'string', default: '6' }, rounds: { type: 'string', default: '3' },
      clients: { type: 'string', default: '4' }, workers: { type: 'string', default: String(os.availableParallelism()) },
      models: { type: 'string', default: ALL_KEYS.join(',') }, 'log-level': { type: 'string', default: 'info' },
    },
    strict: false,
  });
  const KEYS = String(values.models).split(',') as ModelKey[];
  if (!KEYS.includes('cls') || KEYS.some((k) => !ALL_KEYS.includes(k))) throw new Error(`--models: some of ${ALL_KEYS.join(',')}, with cls (its c=1 overhead is measured)`);
  const seconds = Number(values.duration);
  const rounds = Number(values.rounds);
  const clients = Number(values.clients);
  const cores = os.availableParallelism();
  const all = await workloads('jpeg');
  const job = (w: Workload, base: string, connections: number, durationS: number) => ({
    url: `${base}/predictions/${w.folder}`, headers: { 'content-type': w.contentType }, bodies: [w.body.toString('base64')], connections, durationS,
  });
  const standaloneJob = (w: Workload, c: number, s: number, ortRuns?: number): StandaloneJob => ({
    modelDir: path.join(BUILTIN_MODEL_STORE, w.folder), contentType: w.contentType, body: new Uint8Array(w.body), clients: c, seconds: s, ortRuns,
  });

  let server: ChildProcess | undefined;
  // The server process under the supervisor, as `npm start` runs them; the supervisor itself is `server`.
  let serverPid: number | undefined;
  let base = String(values.target);
  if (base === 'quiver') {
    const [port, admin] = [await freePort(), await freePort()];
    server = spawn(process.execPath, [CLI, 'serve', '--models', 'ALL', '--workers', String(values.workers), '--log-level', String(values['log-level']),
      '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', '127.0.0.1:0', '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-fair-'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    showLogExceptRequests(server);
    base = `http://127.0.0.1:${port}`;
  }
  try {
    if (server) {
      let up = false;
      for (let i = 0; i < 600 && !up; i++) {
        up = await fetch(`${base}/ping`).then((r) => r.status === 200, () => false);
        if (!up) await new Promise((r) => setTimeout(r, 50));
      }
      if (!up) throw new Error('Quiver did not answer /ping within 30 s');
      serverPid = childPids(server.pid!)[0];
      if (!serverPid) throw new Error('the supervisor started no server process');
    }
    // Each model alone: its service time (for cpu_use), its answer (the target must give the same).
    const alone = new Map<ModelKey, StandaloneResult>();
    for (const k of KEYS) alone.set(k, await standalone(standaloneJob(all[k], 1, 2, k === 'cls' ? 400 : undefined)));
    for (const k of KEYS) {
      const r = await fetch(job(all[k], base, 1, 1).url, { method: 'POST', headers: { 'content-type': all[k].contentType }, body: all[k].body });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`target answered ${r.status} for ${k}: ${text}`);
      if (server && text !== alone.get(k)!.answer) throw new Error(`${k}: Quiver and the standalone pipeline disagree:\n${text.slice(0, 300)}\n${alone.get(k)!.answer.slice(0, 300)}`);
    }
    const serviceMs = new Map(KEYS.map((k) => [k, median(alone.get(k)!.latencies)]));

    const servers = await Promise.all(KEYS.map((k) => standaloneServer(standaloneJob(all[k], 1, 0))));
    const clsServer = servers[KEYS.indexOf('cls')];

    // The classifier alone at c=1 against onnxruntime's own run time. Rounds in turns: Quiver, the
    // standalone one-model HTTP server, onnxruntime alone; each round's overhead is its p50 less that
    // round's run time (pairs within seconds of each other hold on a noisy machine), median over rounds.
    await runLoad(job(all.cls, base, 1, 1));
    await runLoad(job(all.cls, clsServer.url, 1, 1));
    const clsP50: number[] = [];
    const ortP50: number[] = [];
    const clsOverheads: number[] = [];
    const httpOverheads: number[] = [];
    for (let r = 0; r < 2 * rounds + 1; r++) {
      const target = (await runLoad(job(all.cls, base, 1, 1.5))).p50;
      const http = (await runLoad(job(all.cls, clsServer.url, 1, 1.5))).p50;
      const ort = median((await standalone(standaloneJob(all.cls, 1, 0.2, 400))).ortMs);
      clsP50.push(target);
      ortP50.push(ort);
      clsOverheads.push(target - ort);
      httpOverheads.push(http - ort);
    }
    const clsOverhead = median(clsOverheads);

    // All three at once, target and baseline in turns.
    await Promise.all(KEYS.map((k) => runLoad(job(all[k], base, clients, 1))));
    const target = new Map<ModelKey, Figures[]>(KEYS.map((k) => [k, []]));
    const baseline = new Map<ModelKey, Figures[]>(KEYS.map((k) => [k, []]));
    const httpBaseline = new Map<ModelKey, Figures[]>(KEYS.map((k) => [k, []]));
    await Promise.all(KEYS.map((k, i) => runLoad(job(all[k], servers[i].url, clients, 1))));
    let peakRss = 0;
    // The pair's sum counts the node binary's and libraries' pages twice: a bound from above on what
    // their container holds.
    let peakPairRss = 0;
    // Their PSS sum counts each page once: what the pair holds together.
    let peakPairPss = 0;
    let pssSamples = 0;
    const mb = (bytes: number) => bytes / 2 ** 20;
    const sample = () => {
      const rss = mb(rssOf(serverPid));
      peakRss = Math.max(peakRss, rss);
      peakPairRss = Math.max(peakPairRss, rss + mb(rssOf(server?.pid)));
      // smaps_rollup walks the page tables: every fifth sample.
      if (pssSamples++ % 5 === 0) peakPairPss = Math.max(peakPairPss, mb(pssOf(serverPid) + pssOf(server?.pid)));
    };
    const targetCpu: CpuShare[] = [];
    const httpCpu: CpuShare[] = [];
    // The standalone servers are threads of this process, which does nothing else meanwhile.
    const ownCpu = () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    };
    for (let r = 0; r < rounds; r++) {
      const sampler = setInterval(sample, 100);
      const stress = await measuredRound(() => cpuSecondsOf(server?.pid) + cpuSecondsOf(serverPid), () => Promise.all(KEYS.map((k) => runLoad(job(all[k], base, clients, seconds)))));
      clearInterval(sampler);
      stress.loads.forEach((l, i) => target.get(KEYS[i])!.push(fromLoad(l)));
      targetCpu.push(stress.cpu);
      const runs = await Promise.all(KEYS.map((k) => standalone(standaloneJob(all[k], clients, seconds))));
      runs.forEach((run, i) => baseline.get(KEYS[i])!.push(fromLatencies(run.latencies, seconds)));
      const served = await measuredRound(ownCpu, () => Promise.all(KEYS.map((k, i) => runLoad(job(all[k], servers[i].url, clients, seconds)))));
      served.loads.forEach((l, i) => httpBaseline.get(KEYS[i])!.push(fromLoad(l)));
      httpCpu.push(served.cpu);
    }
    await Promise.all(servers.map((s) => s.stop()));

    const report: string[] = [
      `# Fairness: ${KEYS.length} models at once (${KEYS.join(', ')})`, '',
      `${new Date().toISOString()}; ${clients} clients per model, ${rounds} rounds of ${seconds} s each side, medians; ${cores} cores.`,
      `Baselines, each model's same pipeline alone in its own thread, requests one after another, all three at once: "standalone HTTP" serves it with node:http to the same load client (three one-model servers, what a user would run instead); "pipeline only" calls it in a loop with no HTTP and no client (a bound no server reaches).`, '',
      '| model | alone service ms | target req/s | p50 ms | p99 ms | errors | standalone HTTP req/s | p50 ms | p99 ms | pipeline only req/s | p50 ms | p99 ms | throughput ÷ HTTP | p99 ÷ HTTP | throughput ÷ pipeline | p99 ÷ pipeline |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ];
    let minPipeline = Infinity;
    let maxPipelineP99 = 0;
    let minThroughput = Infinity;
    let maxP99 = 0;
    let cpu = 0;
    let cpuHttp = 0;
    for (const k of KEYS) {
      const t = medianFigures(target.get(k)!);
      const b = medianFigures(baseline.get(k)!);
      const h = medianFigures(httpBaseline.get(k)!);
      const tr = t.throughput / h.throughput;
      const pr = t.p99 / h.p99;
      minThroughput = Math.min(minThroughput, tr);
      maxP99 = Math.max(maxP99, pr);
      minPipeline = Math.min(minPipeline, t.throughput / b.throughput);
      maxPipelineP99 = Math.max(maxPipelineP99, t.p99 / b.p99);
      cpu += (t.throughput * serviceMs.get(k)!) / 1000;
      cpuHttp += (h.throughput * serviceMs.get(k)!) / 1000;
      report.push(`| ${k} | ${serviceMs.get(k)!.toFixed(2)} | ${t.throughput.toFixed(1)} | ${t.p50.toFixed(1)} | ${t.p99.toFixed(1)} | ${t.errors} | ${h.throughput.toFixed(1)} | ${h.p50.toFixed(1)} | ${h.p99.toFixed(1)} | ${b.throughput.toFixed(1)} | ${b.p50.toFixed(1)} | ${b.p99.toFixed(1)} | ${tr.toFixed(2)} | ${pr.toFixed(2)} | ${(t.throughput / b.throughput).toFixed(2)} | ${(t.p99 / b.p99).toFixed(2)} |`);
    }
    const cpuUse = cpu / cores;
    const share = (rs: CpuShare[]): CpuShare => ({ server: median(rs.map((r) => r.server)), clients: median(rs.map((r) => r.clients)), idle: median(rs.map((r) => r.idle)) });
    const [quiverShare, httpShare] = [share(targetCpu), share(httpCpu)];
    // What the goal's "cores the server may use" leaves once the load clients, which share the machine, have theirs.
    const cpuUseWithoutClients = cpu / (cores - quiverShare.clients);
    const httpCpuUseWithoutClients = cpuHttp / (cores - httpShare.clients);
    const shareText = (s: CpuShare, pipeline: number, serverKnown: boolean) =>
      `server ${serverKnown ? s.server.toFixed(2) : 'n/a (not started here)'}, load clients ${s.clients.toFixed(2)}, idle ${s.idle.toFixed(2)}; the pipelines' own work ${pipeline.toFixed(2)}`;
    report.push('', `Cores in use during the stress (medians over rounds; ${cores} cores): target: ${shareText(quiverShare, cpu, server !== undefined)}. Standalone HTTP servers: ${shareText(httpShare, cpuHttp, true)}.`);
    report.push('', `cls alone at c=1, ${clsOverheads.length} rounds: target p50 ${median(clsP50).toFixed(2)} ms, onnxruntime run p50 ${median(ortP50).toFixed(2)} ms, overhead ${clsOverhead.toFixed(2)} ms (rounds: ${clsOverheads.map((x) => x.toFixed(2)).join(' ')}); the standalone HTTP server's overhead ${median(httpOverheads).toFixed(2)} ms; server peak RSS ${peakRss.toFixed(0)} MB during the stress; supervisor and server together ${peakPairRss.toFixed(0)} MB as the sum of their RSS (which counts shared pages twice), ${peakPairPss.toFixed(0)} MB as the sum of their PSS (each page once).`);
    const line = `RESULT fairness min_model_throughput_ratio=${minThroughput.toFixed(2)} max_model_p99_ratio=${maxP99.toFixed(2)} cpu_use=${cpuUse.toFixed(2)} standalone_http_cpu_use=${(cpuHttp / cores).toFixed(2)} cpu_use_without_clients=${cpuUseWithoutClients.toFixed(2)} standalone_http_cpu_use_without_clients=${httpCpuUseWithoutClients.toFixed(2)} idle_cores=${quiverShare.idle.toFixed(2)} cls_jpeg_overhead_ms=${clsOverhead.toFixed(2)} standalone_http_overhead_ms=${median(httpOverheads).toFixed(2)} peak_rss_mb=${peakRss.toFixed(0)} peak_pair_rss_mb=${peakPairRss.toFixed(0)} peak_pair_pss_mb=${peakPairPss.toFixed(0)} min_throughput_ratio_pipeline_only=${minPipeline.toFixed(2)} max_p99_ratio_pipeline_only=${maxPipelineP99.toFixed(2)}`;
    return { line, report };
  } finally {
    server?.kill('SIGTERM');
  }
}

if (require.main === module) {
  fairness(process.argv.slice(2)).then(
    ({ line, report }) => {
      console.log(report.join('\n'));
      console.log(line);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
