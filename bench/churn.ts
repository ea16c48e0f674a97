// Churn: many model versions registered, scaled, switched, evicted, reloaded and removed while 32
// clients call them, one SIGKILL of the server in the middle. Every answer is checked against the
// versions that could have been default while it was in flight; after the restart the registry must
// equal the snapshot; the workers' sessions must equal the lifecycle's count; no unpacked folder may
// be left that no registration uses. A second part cycles the three PP-OCR models through
// register → predict → unregister and through evict → reload, and reports RSS growth.
//
//   npm run bench:churn -- [--seconds 60] [--cycles 200] [--seed 7]
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, rssOf } from './process-info';
import { serverNodeArgs } from '../src/cli/supervisor';
import { onnx } from 'onnx-proto';
import { rng } from './models';
import { tarGz } from '../test/fixtures/archives';
import { workloads } from './workloads';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const ROOT = path.join(__dirname, '..', '..');
const MiB = 2 ** 20;

/** y = W[x]: W holds `floats` floats and W[0] = code, so the answer names the model and version; Gather cannot be folded away. */
function codeModel(code: number, floats: number): Uint8Array {
  const weights = new Float32Array(floats);
  weights[0] = code;
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const info = (name: string, elemType: number) => ({ name, type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'N' }] } } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'code', node: [{ opType: 'Gather', input: ['W', 'x'], output: ['y'] }],
      initializer: [{ name: 'W', dims: [floats], dataType: FLOAT, rawData: new Uint8Array(weights.buffer) }],
      input: [info('x', INT64)], output: [info('y', FLOAT)],
    },
  })).finish();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Server {
  child: ChildProcess;
  base: string;
  admin: string;
  exited: Promise<void>;
}

/** Starts `quiver serve` as the supervisor does: QUIVER_SUPERVISED=restart makes it restore the snapshot. */
async function startServer(store: string, workDir: string, extra: string[], kind: 'first' | 'restart', logFile: string): Promise<Server> {
  const [port, admin] = [await freePort(), await freePort()];
  const out = fs.openSync(logFile, 'a');
  // As the supervisor starts it (with its node flags), which this bench stands in for.
  const child = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--model-store', store, '--work-dir', workDir, '--log-level', 'warn',
    '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', 'off', ...extra],
  { stdio: ['ignore', out, out], env: { ...process.env, QUIVER_SUPERVISED: kind } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    if (await fetch(`${base}/ping`).then((r) => r.ok, () => false)) return { child, base, admin: `http://127.0.0.1:${admin}`, exited };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`the server did not start (see ${logFile})`);
}

async function stop(server: Server): Promise<void> {
  server.child.kill('SIGTERM');
  await Promise.race([server.exited, sleep(20_000)]);
  server.child.kill('SIGKILL');
}

// ---- Part 1: churn -------------------------------------------------------------------------------

interface Version { version: string; url: string; code: number }
/** What is registered, as the answered operations say: name → versions, default. */
type Oracle = Map<string, { versions: Map<string, Version>; defaultVersion: string }>;

const clone = (o: Oracle): Oracle => new Map([...o].map(([n, v]) => [n, { versions: new Map(v.versions), defaultVersion: v.defaultVersion }]));

/** A state and the span in which the server may have been in it: from its op's sending until the next op's answer. */
interface Epoch { from: number; until: number; state: Oracle }

class History {
  readonly epochs: Epoch[] = [];
  /** The state an operation sent and not yet answered may have made (it takes effect before its answer). */
  pending?: { from: number; state: Oracle };
  constructor(initial: Oracle) {
    this.epochs.push({ from: 0, until: Infinity, state: initial });
  }
  get current(): Oracle {
    return this.epochs[this.epochs.length - 1].state;
  }
  /** An op sent at `sentAt` and answered at `doneAt` moved the server from the current state to `next`. */
  apply(sentAt: number, doneAt: number, next: Oracle): void {
    this.pending = undefined;
    this.epochs[this.epochs.length - 1].until = doneAt;
    this.epochs.push({ from: sentAt, until: Infinity, state: next });
  }
  /** The states the server may have been in while a request was in flight. */
  during(a: number, b: number): Oracle[] {
    const states = this.epochs.filter((e) => e.from <= b && e.until >= a).map((e) => e.state);
    return this.pending && this.pending.from <= b ? [...states, this.pending.state] : states;
  }
}

interface ChurnCounts { requests: number; ok: number; lost: number; wrong: number; unexpected: number; refused: number; notFound: number; killedInFlight: number; ops: number; opFailures: number }

/** 12 names; the first four with two versions. Odd names are .tar.gz archives (unpacked on registration). */
function writeChurnStore(store: string, floats: number): Map<string, Version[]> {
  const catalogue = new Map<string, Version[]>();
  for (let m = 0; m < 12; m++) {
    const name = `m${String(m).padStart(2, '0')}`;
    const versions: Version[] = [];
    for (let v = 1; v <= (m < 4 ? 2 : 1); v++) {
      const code = m * 10 + v;
      const model = codeModel(code, floats);
      const file = `${name}-v${v}`;
      if (m % 2 === 1) fs.writeFileSync(path.join(store, `${file}.tar.gz`), tarGz([{ name: 'model.onnx', content: model }]));
      else {
        fs.mkdirSync(path.join(store, file), { recursive: true });
        fs.writeFileSync(path.join(store, file, 'model.onnx'), model);
      }
      versions.push({ version: `${v}.0`, url: m % 2 === 1 ? `${file}.tar.gz` : file, code });
    }
    catalogue.set(name, versions);
  }
  return catalogue;
}

/** The highest RSS in each second since the first sample. */
class RssTrace {
  private readonly start = Date.now();
  private readonly maxima: number[] = [];

  add(rss: number): void {
    const s = Math.floor((Date.now() - this.start) / 1000);
    this.maxima[s] = Math.max(this.maxima[s] ?? 0, rss);
  }

  perSecond(): string[] {
    return Array.from(this.maxima, (v) => (v ? (v / MiB).toFixed(0) : '-'));
  }
}

async function churn(seconds: number, seed: number, logFile: string) {
  const random = rng(seed);
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-churn-store-'));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-churn-work-'));
  const floats = 1 << 20; // 4 MiB per copy at least
  const catalogue = writeChurnStore(store, floats);
  // Room for about five of the sixteen versions: requests keep evicting and reloading them.
  const budget = 24 * MiB;
  const serverArgs = ['--workers', '2', '--max-worker-threads', '2', '--memory-budget', String(budget), '--job-queue-size', '64', '--workers-per-model', '1'];
  let server = await startServer(store, workDir, serverArgs, 'first', logFile);
  const idleRss = rssOf(server.child.pid);

  // The server's fixed overhead under this load: the same clients on one tiny model.
  const overheadName = 'overhead';
  fs.mkdirSync(path.join(store, overheadName));
  fs.writeFileSync(path.join(store, overheadName, 'model.onnx'), codeModel(999, 4));
  const manage = (method: string, p: string) => fetch(`${server.admin}/models${p}`, { method });
  if ((await manage('POST', `?url=${overheadName}&initial_workers=2`)).status !== 200) throw new Error('overhead model did not register');
  let overheadPeak = idleRss;
  const overheadTrace = new RssTrace();
  {
    // As long as a third of the churn (at least 3 s): V8 heaps grow for a while before they are collected.
    const until = Date.now() + Math.max(3000, (seconds * 1000) / 3);
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (Date.now() < until) {
        const r = await fetch(`${server.base}/predictions/${overheadName}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[0]}' });
        await r.arrayBuffer();
        const rss = rssOf(server.child.pid);
        overheadPeak = Math.max(overheadPeak, rss);
        overheadTrace.add(rss);
      }
    }));
  }
  await manage('DELETE', `/${overheadName}`);
  const fixedOverhead = overheadPeak - idleRss;

  // Every name registered at first, with its first version; the others come and go with the ops.
  const initial: Oracle = new Map();
  for (const [name, versions] of catalogue) {
    const v = versions[0];
    const r = await manage('POST', `?url=${v.url}&model_name=${name}&model_version=${v.version}&synchronous=false`);
    if (r.status !== 200) throw new Error(`register ${name}: ${r.status} ${await r.text()}`);
    initial.set(name, { versions: new Map([[v.version, v]]), defaultVersion: v.version });
  }
  const history = new History(initial);
  const counts: ChurnCounts = { requests: 0, ok: 0, lost: 0, wrong: 0, unexpected: 0, refused: 0, notFound: 0, killedInFlight: 0, ops: 0, opFailures: 0 };
  const problems: string[] = [];
  let peakRss = 0;
  let serverUp = true;
  let killedAt = Infinity;
  let restartedAt = Infinity;
  const started = Date.now();
  const endAt = started + seconds * 1000;
  const churnTrace = new RssTrace();
  const sampler = setInterval(() => {
    const rss = rssOf(server.child.pid);
    peakRss = Math.max(peakRss, rss);
    churnTrace.add(rss);
  }, 50);

  const client = async () => {
    while (Date.now() < endAt) {
      if (!serverUp) {
        await sleep(20);
        continue;
      }
      const names = [...catalogue.keys()];
      const name = names[Math.floor(random() * names.length)];
      const all = catalogue.get(name)!;
      const named = random() < 0.3 ? all[Math.floor(random() * all.length)].version : undefined;
      const target = named ? `${name}/${named}` : name;
      const sentAt = Date.now();
      counts.requests++;
      let status: number;
      let body = '';
      let retryAfter: string | null = null;
      try {
        const r = await fetch(`${server.base}/predictions/${target}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[0]}', signal: AbortSignal.timeout(60_000) });
        status = r.status;
        retryAfter = r.headers.get('retry-after');
        body = await r.text();
      } catch (err) {
        if (Date.now() >= killedAt - 50 && sentAt <= restartedAt) counts.killedInFlight++;
        else {
          counts.lost++;
          problems.push(`lost ${target}: ${(err as Error).message}`);
        }
        continue;
      }
      const doneAt = Date.now();
      const states = history.during(sentAt, doneAt);
      const expected = states.map((s) => {
        const entry = s.get(name);
        const v = entry && entry.versions.get(named ?? entry.defaultVersion);
        return v?.code;
      });
      if (status === 200) {
        const code = JSON.parse(body).y?.[0];
        if (expected.includes(code)) counts.ok++;
        else {
          counts.wrong++;
          problems.push(`wrong ${target}: got ${code}, expected one of ${expected.join(',')}`);
        }
      } else if (status === 404 && expected.includes(undefined)) counts.notFound++;
      else if ((status === 503 || status === 507) && retryAfter !== null) counts.refused++;
      else {
        counts.unexpected++;
        problems.push(`unexpected ${target} at ${sentAt - started}-${doneAt - started} ms (expected ${expected.join(",")} from ${states.length} states): ${status} ${body.slice(0, 120)}`);
      }
    }
  };

  /** One random operation, sent and answered; the oracle follows what the server answered. */
  const operate = async () => {
    const next = clone(history.current);
    const names = [...catalogue.keys()];
    const name = names[Math.floor(random() * names.length)];
    const all = catalogue.get(name)!;
    const entry = next.get(name);
    const pick = random();
    const sentAt = Date.now();
    history.pending = { from: sentAt, state: next };
    let send: () => Promise<Response>;
    let expectOk = true;
    if (!entry) {
      const v = all[Math.floor(random() * all.length)];
      send = () => manage('POST', `?url=${v.url}&model_name=${name}&model_version=${v.version}`);
      next.set(name, { versions: new Map([[v.version, v]]), defaultVersion: v.version });
      // A load the budget cannot make room for (every resident model busy) is refused, and nothing is registered.
      expectOk = false;
    } else if (pick < 0.3 && entry.versions.size < all.length) {
      const v = all.find((x) => !entry.versions.has(x.version))!;
      send = () => manage('POST', `?url=${v.url}&model_name=${name}&model_version=${v.version}`);
      entry.versions.set(v.version, v);
      expectOk = false;
    } else if (pick < 0.5 && entry.versions.size > 1) {
      const other = [...entry.versions.keys()].find((v) => v !== entry.defaultVersion)!;
      send = () => manage('PUT', `/${name}/${other}/set-default`);
      entry.defaultVersion = other;
    } else if (pick < 0.7) {
      send = () => manage('PUT', `/${name}?min_worker=${1 + Math.floor(random() * 2)}&synchronous=true`);
      // Two copies may not fit now: the budget's refusal is the documented answer.
      expectOk = false;
    } else {
      const victim = entry.versions.size > 1 ? [...entry.versions.keys()].find((v) => v !== entry.defaultVersion)! : entry.defaultVersion;
      send = () => manage('DELETE', `/${name}/${victim}`);
      entry.versions.delete(victim);
      if (entry.versions.size === 0) next.delete(name);
    }
    // The expected state is complete before the request goes: the server may apply it before it answers.
    const r = await send();
    const text = await r.text();
    counts.ops++;
    if (process.env.CHURN_TRACE) console.log(`op ${sentAt - started}-${Date.now() - started} ms ${r.url.replace(/^.*\/models/, '')} → ${r.status}`);
    if (r.status === 200 || r.status === 202) history.apply(sentAt, Date.now(), next);
    else if (!expectOk && (r.status === 503 || r.status === 507)) history.apply(sentAt, Date.now(), history.current);
    else {
      counts.opFailures++;
      problems.push(`op failed: ${r.status} ${text.slice(0, 160)}`);
      // What the server did is unknown: it may or may not have made the change.
      history.apply(sentAt, Date.now(), history.current);
    }
  };

  let snapshotMismatch = 0;
  const operator = async () => {
    let killed = false;
    while (Date.now() < endAt) {
      await sleep(20 + random() * 80);
      if (!killed && Date.now() > started + (seconds * 1000) / 2) {
        killed = true;
        // SIGKILL between two operations: the snapshot must hold every answered one.
        const expectedState = clone(history.current);
        killedAt = Date.now();
        serverUp = false;
        server.child.kill('SIGKILL');
        await server.exited;
        const snap = JSON.parse(fs.readFileSync(path.join(workDir, 'snapshot.json'), 'utf8')) as { models: { name: string; modelVersion?: string; isDefault?: boolean }[] };
        snapshotMismatch += compareSnapshot(snap.models, expectedState, problems);
        server = await startServer(store, workDir, serverArgs, 'restart', logFile);
        restartedAt = Date.now();
        // The restored registry, as the server reports it, against the snapshot.
        snapshotMismatch += await compareServer(server.admin, expectedState, problems);
        history.apply(killedAt, restartedAt, clone(expectedState));
        serverUp = true;
        continue;
      }
      await operate().catch((err: Error) => {
        counts.opFailures++;
        problems.push(`op error: ${err.message}`);
      });
    }
  };

  await Promise.all([operator(), ...Array.from({ length: 32 }, client)]);
  clearInterval(sampler);
  const elapsed = (Date.now() - started) / 1000;

  // Quiet: every load and unload done; the threads' sessions against the lifecycle's count.
  await sleep(1500);
  const status = await (await fetch(`${server.admin}/status?sessions=true`)).json() as { sessions: { lifecycle: number; workers: number }; budget: { usedBytes: number } };
  const leakedSessions = Math.abs(status.sessions.workers - status.sessions.lifecycle);
  if (leakedSessions) problems.push(`sessions: workers hold ${status.sessions.workers}, the lifecycle counts ${status.sessions.lifecycle}`);
  // Everything unregistered: no unpacked folder may be left.
  for (const [name, entry] of history.current) {
    const others = [...entry.versions.keys()].filter((v) => v !== entry.defaultVersion);
    for (const v of [...others, entry.defaultVersion]) await manage('DELETE', `/${name}/${v}`);
  }
  await sleep(500);
  const unpacked = path.join(workDir, 'unpacked');
  const orphanDirs = fs.existsSync(unpacked) ? fs.readdirSync(unpacked).length : 0;
  if (orphanDirs) problems.push(`unpacked folders left with nothing registered: ${fs.readdirSync(unpacked).join(', ')}`);
  const after = await (await fetch(`${server.admin}/status?sessions=true`)).json() as { sessions: { lifecycle: number; workers: number } };
  const leakedAfter = after.sessions.workers + after.sessions.lifecycle;
  if (leakedAfter) problems.push(`sessions left with nothing registered: workers ${after.sessions.workers}, lifecycle ${after.sessions.lifecycle}`);
  await stop(server);
  fs.rmSync(store, { recursive: true, force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
  if (process.env.CHURN_TRACE) {
    console.log(`overhead RSS, MiB each second: ${overheadTrace.perSecond().join(' ')}`);
    console.log(`churn RSS, MiB each second (SIGKILL at ${((killedAt - started) / 1000).toFixed(1)} s): ${churnTrace.perSecond().join(' ')}`);
  }
  return { counts, elapsed, leakedSessions: leakedSessions + leakedAfter, orphanDirs, snapshotMismatch, peakRss, idleRss, fixedOverhead, budget, problems };
}

function compareSnapshot(models: { name: string; modelVersion?: string; isDefault?: boolean }[], expected: Oracle, problems: string[]): number {
  const got = new Set(models.map((m) => `${m.name}/${m.modelVersion}${m.isDefault ? '*' : ''}`));
  const want = new Set([...expected].flatMap(([name, e]) => [...e.versions.keys()].map((v) => `${name}/${v}${v === e.defaultVersion ? '*' : ''}`)));
  const diff = [...got].filter((x) => !want.has(x)).concat([...want].filter((x) => !got.has(x)));
  if (diff.length) problems.push(`snapshot differs from the answered operations: ${diff.join(' ')}`);
  return diff.length;
}

async function compareServer(admin: string, expected: Oracle, problems: string[]): Promise<number> {
  const list = await (await fetch(`${admin}/models?limit=1000`)).json() as { models: { modelName: string }[] };
  const got = new Set<string>();
  for (const m of list.models) {
    const all = await (await fetch(`${admin}/models/${m.modelName}/all`)).json() as { modelVersion: string }[];
    const def = (await (await fetch(`${admin}/models/${m.modelName}`)).json() as { modelVersion: string }).modelVersion;
    for (const d of all) got.add(`${m.modelName}/${d.modelVersion}${d.modelVersion === def ? '*' : ''}`);
  }
  const want = new Set([...expected].flatMap(([name, e]) => [...e.versions.keys()].map((v) => `${name}/${v}${v === e.defaultVersion ? '*' : ''}`)));
  const diff = [...got].filter((x) => !want.has(x)).concat([...want].filter((x) => !got.has(x)));
  if (diff.length) problems.push(`restored registry differs from the snapshot: ${diff.join(' ')}`);
  return diff.length;
}

// ---- Part 2: load/unload and evict/reload cycles of the PP-OCR models -------------------------------

/** For CHURN_TRACE: where the server's memory is (the main thread's V8 heap, anonymous and file pages). */
async function memoryDetail(server: Server): Promise<string> {
  const metrics = await (await fetch(`${server.admin}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN);
  const rollup = fs.readFileSync(`/proc/${server.child.pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) * 1024;
  const m = (v: number) => (v / MiB).toFixed(1);
  return `main heap used ${m(metric('nodejs_heap_size_used_bytes'))} of ${m(metric('nodejs_heap_size_total_bytes'))}, external ${m(metric('nodejs_external_memory_bytes'))}, anonymous ${m(kb('Anonymous'))}, file ${m(kb('Rss') - kb('Anonymous'))} MiB`;
}

async function cycles(n: number, keys: readonly ('det' | 'rec' | 'cls')[], logFile: string) {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-cycles-store-'));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-cycles-work-'));
  const w = await workloads('jpeg');
  for (const k of keys) fs.cpSync(path.join(ROOT, 'models', w[k].folder), path.join(store, w[k].folder), { recursive: true });
  const at = Math.max(1, Math.min(100, Math.floor(n / 10)));
  // V8 and glibc give memory back in steps, so one RSS sample may sit anywhere on a sawtooth of tens of
  // MiB: what a run retains is the floor. Compared: the lowest RSS over cycles at..2·at, and over the last at.
  const floors = (samples: number[]) => ({
    from: Math.min(...samples.slice(at - 1, Math.min(samples.length, 2 * at))),
    to: Math.min(...samples.slice(Math.max(0, samples.length - at))),
  });
  const predict = async (server: Server, k: typeof keys[number], name: string = w[k].folder) => {
    const r = await fetch(`${server.base}/predictions/${name}`, { method: 'POST', headers: { 'content-type': w[k].contentType }, body: w[k].body });
    if (r.status !== 200) throw new Error(`${k}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  };

  // Register → predict → unregister, n times each.
  let server = await startServer(store, workDir, ['--workers', '1', '--max-worker-threads', '1'], 'first', logFile);
  const cost = new Map<string, number>();
  const loadSamples: number[] = [];
  const t0 = Date.now();
  for (let c = 1; c <= n; c++) {
    for (const k of keys) {
      const r = await fetch(`${server.admin}/models?url=${w[k].folder}`, { method: 'POST' });
      if (r.status !== 200) throw new Error(`register ${k}: ${r.status} ${await r.text()}`);
      await predict(server, k);
      if (c === 1 || c === n) {
        // The largest of what the first copy measured and what the server predicts at the end (it keeps
        // the largest measurement): one figure alone can be low when a load reuses freed memory.
        const d = await (await fetch(`${server.admin}/models/${w[k].folder}`)).json() as { memoryBytes: number; predictedBytes: number };
        cost.set(k, Math.max(cost.get(k) ?? 0, d.memoryBytes, d.predictedBytes));
      }
      await fetch(`${server.admin}/models/${w[k].folder}`, { method: 'DELETE' });
    }
    loadSamples.push(rssOf(server.child.pid));
    if (process.env.CHURN_TRACE && c % 50 === 0) console.log(`cycle ${c}: RSS ${(loadSamples[c - 1] / MiB).toFixed(1)} MiB`);
  }
  const { from: loadRssAt, to: loadRssEnd } = floors(loadSamples);
  const loadSeconds = (Date.now() - t0) / 1000;
  await stop(server);

  // Evict → reload: each model registered twice (a and b) under a budget that holds one copy of it (1.5 ×
  // what a fresh server charges one, first run included), so that every request evicts the other name's
  // copy and reloads its own.
  let evictRssAt = 0;
  let evictRssEnd = 0;
  let evictions = 0;
  const perModel: { key: string; from: number; to: number; evictions: number }[] = [];
  const t1 = Date.now();
  for (const k of keys) {
    // One copy's cost as a fresh server measures it (in the loop above it may reuse memory the other
    // models freed and measure low), with its first run.
    const probe = await startServer(store, workDir, ['--workers', '1', '--max-worker-threads', '1'], 'first', logFile);
    await fetch(`${probe.admin}/models?url=${w[k].folder}`, { method: 'POST' });
    await predict(probe, k);
    const fresh = (await (await fetch(`${probe.admin}/models/${w[k].folder}`)).json() as { memoryBytes: number }).memoryBytes;
    await stop(probe);
    fs.rmSync(path.join(workDir, 'snapshot.json'), { force: true });
    cost.set(k, Math.max(cost.get(k)!, fresh));
    // The server charges a copy at least what its first copy measured (it keeps the largest), so two never fit.
    const budget = Math.round(fresh * 1.5);
    server = await startServer(store, workDir, ['--workers', '1', '--max-worker-threads', '1', '--memory-budget', String(budget)], 'first', logFile);
    for (const copy of ['a', 'b']) {
      const r = await fetch(`${server.admin}/models?url=${w[k].folder}&model_name=${k}-${copy}&synchronous=false`, { method: 'POST' });
      if (r.status !== 200) throw new Error(`register ${k}-${copy}: ${r.status}`);
    }
    const samples: number[] = [];
    for (let c = 1; c <= n; c++) {
      await predict(server, k, `${k}-a`);
      await predict(server, k, `${k}-b`);
      samples.push(rssOf(server.child.pid));
      if (process.env.CHURN_TRACE && c % 50 === 0) console.log(`${k} evict cycle ${c}: RSS ${(samples[c - 1] / MiB).toFixed(1)} MiB; ${await memoryDetail(server)}`);
    }
    const f = floors(samples);
    evictRssAt += f.from;
    evictRssEnd += f.to;
    const text = await (await fetch(`${server.admin}/metrics`)).text();
    const modelEvictions = text.split('\n').filter((l) => l.startsWith('quiver_model_evictions_total{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    evictions += modelEvictions;
    if (modelEvictions < n) console.log(`WARNING: ${k} was evicted ${modelEvictions} times in ${n} cycles: the budget did not force its evictions`);
    perModel.push({ key: k, ...f, evictions: modelEvictions });
    await stop(server);
  }
  const evictSeconds = (Date.now() - t1) / 1000;
  fs.rmSync(store, { recursive: true, force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
  return {
    at, loadRssAt, loadRssEnd, loadSeconds, evictRssAt, evictRssEnd, evictSeconds, evictions, cost, perModel,
    loadGrowthPct: ((loadRssEnd - loadRssAt) / loadRssAt) * 100,
    evictGrowthPct: ((evictRssEnd - evictRssAt) / evictRssAt) * 100,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' }, cycles: { type: 'string', default: '200' }, seed: { type: 'string', default: '7' },
      parts: { type: 'string', default: 'churn,cycles' }, models: { type: 'string', default: 'det,rec,cls' },
    },
  });
  const parts = new Set(values.parts!.split(','));
  const keys = values.models!.split(',') as ('det' | 'rec' | 'cls')[];
  const seconds = Number(values.seconds);
  const n = Number(values.cycles);
  const logFile = path.join(os.tmpdir(), `quiver-churn-${process.pid}.log`);
  console.log(`churn: ${seconds} s at concurrency 32, 12 models (16 versions), one SIGKILL; then ${n} load/unload and ${n} evict/reload cycles of ${keys.join(", ")} (server log: ${logFile})`);

  const c = parts.has('churn') ? await churn(seconds, Number(values.seed), logFile) : undefined;
  if (c) printChurn(c);
  const y = parts.has('cycles') ? await cycles(n, keys, logFile) : undefined;
  if (y) printCycles(y, n);
  // The issue's goal holds for each: load/unload, and each model's evict/reload (not only their sum).
  const growth = y ? Math.max(y.loadGrowthPct, y.evictGrowthPct, ...y.perModel.map((m) => ((m.to - m.from) / m.from) * 100)) : NaN;
  const k = c?.counts;
  const peakOver = c ? c.peakRss - c.idleRss - (c.budget + c.fixedOverhead) : NaN;
  console.log(`RESULT churn requests=${k?.requests ?? NaN} ops=${k?.ops ?? NaN} lost=${k?.lost ?? NaN} wrong=${k?.wrong ?? NaN} unexpected=${k?.unexpected ?? NaN} leaked_sessions=${c?.leakedSessions ?? NaN} orphan_dirs=${c?.orphanDirs ?? NaN} snapshot_mismatch=${c?.snapshotMismatch ?? NaN} peak_over_budget_bytes=${peakOver} cycle_rss_growth_pct=${growth.toFixed(2)}`);
}

const mb = (b: number) => (b / MiB).toFixed(1);

function printChurn(c: Awaited<ReturnType<typeof churn>>): void {
  console.log(`\n| churn | figure |\n|---|---|`);
  console.log(`| requests (${c.elapsed.toFixed(0)} s) | ${c.counts.requests}: ${c.counts.ok} right, ${c.counts.notFound} 404 (not registered when sent), ${c.counts.refused} 503/507 with Retry-After, ${c.counts.killedInFlight} cut by the SIGKILL |`);
  console.log(`| operations | ${c.counts.ops} (${c.counts.opFailures} failed) |`);
  console.log(`| lost / wrong / unexpected | ${c.counts.lost} / ${c.counts.wrong} / ${c.counts.unexpected} |`);
  console.log(`| leaked sessions / orphan dirs / snapshot mismatches | ${c.leakedSessions} / ${c.orphanDirs} / ${c.snapshotMismatch} |`);
  console.log(`| RSS idle, peak, budget, fixed overhead (MiB) | ${mb(c.idleRss)}, ${mb(c.peakRss)}, ${mb(c.budget)}, ${mb(c.fixedOverhead)} |`);
  for (const p of c.problems.slice(0, 12)) console.log(`  problem: ${p}`);
}

function printCycles(y: Awaited<ReturnType<typeof cycles>>, n: number): void {
  console.log(`\n| cycles (${n}) | lowest RSS, cycles ${y.at}–${Math.min(n, 2 * y.at)} | lowest RSS, last ${y.at} cycles | growth | time |\n|---|---|---|---|---|`);
  console.log(`| register → predict → unregister ${[...y.cost.keys()].join(", ")} | ${mb(y.loadRssAt)} MiB | ${mb(y.loadRssEnd)} MiB | ${y.loadGrowthPct.toFixed(1)}% | ${y.loadSeconds.toFixed(0)} s |`);
  console.log(`| evict → reload, each model as two names under a budget of 1.5 copies (${y.evictions} evictions; RSS summed over the ${y.cost.size} servers) | ${mb(y.evictRssAt)} MiB | ${mb(y.evictRssEnd)} MiB | ${y.evictGrowthPct.toFixed(1)}% | ${y.evictSeconds.toFixed(0)} s |`);
  for (const m of y.perModel) {
    console.log(`| evict → reload ${m.key} alone (${m.evictions} evictions) | ${mb(m.from)} MiB | ${mb(m.to)} MiB | ${(((m.to - m.from) / m.from) * 100).toFixed(1)}% | |`);
  }
  console.log(`  copy costs measured: ${[...y.cost].map(([k, v]) => `${k} ${mb(v)} MiB`).join(', ')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
