// npm run bench:protocols — what each wire form costs: the PP-OCR classifier's input tensor
// ([1,3,48,192] float32, 110 KB raw, ~210 KB as JSON) sent as MMS JSON, OIP JSON, OIP binary and gRPC raw
// contents, and the same crop as a PNG, at c=1 and c=8; OIP JSON twice: four decimals a value, and each
// float32 value as its shortest double repr (up to 17 digits: what Triton's Python client sends). Baseline, in the same run and the same
// process turns: onnxruntime's own run of that tensor, in process (same session settings as the
// server's workers). Overhead = the form's median latency at c=1 − the baseline's median run.
// "oip-shm" is Triton's system shared memory: the tensor written once into a /dev/shm object, each request a
// JSON header naming it and an output region (as perf_analyzer --shared-memory system sends them).
// "pool-only" is the binary body handed to a worker thread of the same pool, without HTTP: the thread
// hop's and the worker's own share. "standalone" is the binary body posted to a one-model node:http
// server running the same pipeline (standalone-worker.ts), what a user could run instead of Quiver:
// its overhead is the floor of Node's HTTP with this load client, and Quiver's own cost is above it.
// "standalone-grpc" is the same for gRPC: a one-model grpc-js server, ModelInfer decoded as Quiver decodes it.
// "floor-http" and "floor-grpc" are those two servers with no model work: each request busy-waits as long
// as the in-process run took (measured first) and gets the pipeline's answer. Their overhead (p50 less that
// wait) is what this machine, the HTTP stack and the load client cost a request of the run's length: the
// client's process and the server's thread each fall asleep during the wait and are woken for the answer,
// which a request answered at once (the transport floors, GET /v2/health/live) does not pay. The header
// also gives the run's p50 when its thread slept 1 ms before it: on these VMs a run after a sleep is slower
// than back to back, and every server at c=1 runs it after one.
//
//   --duration S     seconds per form and round (default 2)
//   --rounds N       rounds; each figure is the median over them (default 3)
import { serverNodeArgs } from '../src/cli/supervisor';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { BUILTIN_MODEL_STORE } from '../src/config/schema';
import { runGrpcLoad, runLoad, LoadResult, percentile } from './load';
import { freePort } from './process-info';
import * as http2 from 'node:http2';
import { clientConstructors } from '../src/grpc/protos';
import { GrpcLoadJob, grpcFrame, unaryCall } from './grpc-load-client';
import { standaloneServer } from './standalone';
import { workloads } from './workloads';
import { WorkerPool } from '../src/workers/pool';
import { transferableBody } from '../src/workers/transfer';
import { parseModelConfig } from '../src/models/model-config';
import type { ModelSpec } from '../src/workers/messages';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SHAPE = [1, 3, 48, 192];

/** One ModelInfer call as the gRPC load client makes it; its raw output must be onnxruntime's answer. */
async function checkGrpc(address: string, raw: Buffer, same: (got: number[], name: string) => void): Promise<void> {
  const definition = clientConstructors().inference.service.ModelInfer;
  const request = { model_name: 'ocr-cls', model_version: '', id: '', inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE }], outputs: [], raw_input_contents: [raw] };
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined); // the call itself rejects
  try {
    const answer = await unaryCall(session, definition.path, grpcFrame(definition.requestSerialize(request)));
    const out = (definition.responseDeserialize(answer.subarray(5)) as { raw_output_contents: Buffer[] }).raw_output_contents[0];
    same(Array.from(new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length))), 'grpc-raw');
  } finally {
    session.close();
  }
}

/** A tensor as a client would write it: normalized pixels with four decimals (~7.5 characters each in JSON). */
function tensorDecimals(): number[] {
  const n = SHAPE.reduce((a, b) => a * b, 1);
  const values: number[] = new Array(n);
  let seed = 7;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values[i] = Math.round(((seed / 2 ** 31) * 2 - 1) * 10000) / 10000;
  }
  return values;
}

function nested(values: number[]): number[][][][] {
  const [, c, h, w] = SHAPE;
  return [Array.from({ length: c }, (_, ci) => Array.from({ length: h }, (_, y) => values.slice((ci * h + y) * w, (ci * h + y + 1) * w)))];
}

interface Form {
  name: string;
  /** Runs `connections` closed loops for `seconds`. */
  load(connections: number, seconds: number): Promise<LoadResult>;
  check(): Promise<void>;
}

/** onnxruntime's own run of the tensor, in this process: the floor every form is measured against. */
/** `connections` closed loops of `once` in this process for `seconds`, measured as the load client measures. */
async function closedLoop(connections: number, seconds: number, once: () => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await once();
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length, throughput: latencies.length / elapsed, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99),
    errors: 0, timeouts: 0, non2xx: 0, cpuMs: (used.user + used.system) / 1000,
  };
}

class InProcessRun {
  private session!: ort.InferenceSession;
  private readonly feeds: Record<string, ort.Tensor>;

  constructor(values: Float32Array) {
    this.feeds = { x: new ort.Tensor('float32', values, SHAPE) };
  }

  async open(): Promise<void> {
    // The server's workers: intra_op_threads=1, inter_op_threads=1, memory pattern off.
    this.session = await ort.InferenceSession.create(path.join(BUILTIN_MODEL_STORE, 'ocr-cls', 'model.onnx'), {
      intraOpNumThreads: 1, interOpNumThreads: 1, enableMemPattern: false,
    });
  }

  async output(): Promise<number[]> {
    const out = await this.session.run(this.feeds);
    return Array.from(out[this.session.outputNames[0]].data as Float32Array);
  }

  load(connections: number, seconds: number): Promise<LoadResult> {
    return closedLoop(connections, seconds, () => this.session.run(this.feeds));
  }

  /** The run's p50 when the thread slept 1 ms before each, as a server's thread sleeps between requests at c=1. */
  async afterSleep(seconds: number): Promise<number> {
    const times: number[] = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 1));
      const t = performance.now();
      await this.session.run(this.feeds);
      times.push(performance.now() - t);
    }
    return median(times);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The OIP binary body handed straight to a worker thread as the server does (same pool, same task),
 * without HTTP: what the thread hop and the worker's decoding cost on their own.
 */
class PoolOnly {
  private readonly pool = new WorkerPool(1, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e8, preprocessBackend: 'auto', heapLimitMb: 0 });
  private spec!: ModelSpec;

  constructor(private readonly body: Buffer, private readonly headerLength: number) {}

  async open(): Promise<void> {
    await this.pool.warmUp();
    const dir = path.join(BUILTIN_MODEL_STORE, 'ocr-cls');
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(dir, 'model-config.json'), 'utf8')), 'model-config.json');
    this.spec = { key: 'bench-cls', name: 'ocr-cls', version: '1.0', modelPath: path.join(dir, 'model.onnx'), config };
    await this.pool.slot(0).run({ kind: 'load', model: this.spec });
  }

  private async once(): Promise<void> {
    const { body, transfer } = transferableBody(Buffer.from(this.body));
    await this.pool.slot(0).run({ kind: 'infer', model: this.spec, request: { body, contentType: 'application/octet-stream', requestId: 'b', enqueuedAt: Date.now(), oip: { headerLength: this.headerLength } } }, transfer);
  }

  load(connections: number, seconds: number): Promise<LoadResult> {
    return closedLoop(connections, seconds, () => this.once());
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' } } });
  const seconds = Number(args.duration);
  const rounds = Number(args.rounds);
  const decimals = tensorDecimals();
  const values = Float32Array.from(decimals);
  const baseline = new InProcessRun(values);
  await baseline.open();
  const expected = await baseline.output();

  const [port, admin, grpcPort] = [await freePort(), await freePort(), await freePort()];
  // With the V8 flags the supervisor gives the server (npm start's way), without the supervisor's own process.
  const server: ChildProcess = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--no-supervisor', '--models', 'ocr-cls', '--workers', '1', '--log-level', 'warn',
    '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`, '--grpc-inference-address', `127.0.0.1:${grpcPort}`, '--allow-client-shm', 'true',
    '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-protocols-'))], { stdio: 'inherit' });
  const base = `http://127.0.0.1:${port}`;
  const shmFiles = ['in', 'out'].map((k) => path.join('/dev/shm', `quiver-bench-${process.pid}-${k}`));
  try {
    for (let i = 0; i < 600; i++) {
      if (await fetch(`${base}/ping`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const raw = Buffer.from(values.buffer);
    const oipJson = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', data: decimals }] }));
    const mmsJson = Buffer.from(JSON.stringify({ x: nested(decimals) }));
    // As Triton's Python client writes FP32 (numpy's values as Python floats): up to 17 digits each.
    const oipJsonF32 = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', data: Array.from(values) }] }));
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: true } }));
    const binary = Buffer.concat([header, raw]);
    const png = (await workloads('png')).cls.body;
    // Regions as tritonclient's shared_memory module makes them: the input written once, an output region.
    fs.writeFileSync(shmFiles[0], raw);
    fs.writeFileSync(shmFiles[1], Buffer.alloc(expected.length * 4));
    for (const [name, file, size] of [['bench-in', shmFiles[0], raw.length], ['bench-out', shmFiles[1], expected.length * 4]] as const) {
      const r = await fetch(`${base}/v2/systemsharedmemory/region/${name}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: `/${path.basename(file)}`, offset: 0, byte_size: size }) });
      if (r.status !== 200) throw new Error(`registering ${name}: ${r.status} ${await r.text()}`);
    }
    const clsOutput = ((await (await fetch(`${base}/v2/models/ocr-cls`)).json()) as { outputs: { name: string }[] }).outputs[0].name;
    const shmBody = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', parameters: { shared_memory_region: 'bench-in', shared_memory_byte_size: raw.length } }],
      outputs: [{ name: clsOutput, parameters: { shared_memory_region: 'bench-out', shared_memory_byte_size: expected.length * 4 } }],
    }));
    const http = (name: string, url: string, body: Buffer, headers: Record<string, string>, check: (r: Response) => Promise<void>): Form => ({
      name,
      load: (connections, s) => runLoad({ url, headers, bodies: [body.toString('base64')], connections, durationS: s }),
      check: async () => {
        const r = await fetch(url, { method: 'POST', headers, body });
        if (r.status !== 200) throw new Error(`${name}: ${r.status} ${await r.text()}`);
        await check(r);
      },
    });
    const sameAsBaseline = (got: number[], name: string) => {
      if (got.length !== expected.length || got.some((v, i) => Math.abs(v - expected[i]) > 1e-5)) throw new Error(`${name}: answer ${got} differs from onnxruntime's ${expected}`);
    };
    const grpcJob = (connections: number, s: number, address = `127.0.0.1:${grpcPort}`): GrpcLoadJob => ({
      address, connections, durationS: s,
      request: { model_name: 'ocr-cls', model_version: '', id: '', inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE }], outputs: [], raw_input_contents: [raw.toString('base64')] },
    });
    const binaryForm = (name: string, url: string) =>
      http(name, url, binary, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, async (r) => {
        const all = Buffer.from(await r.arrayBuffer());
        const at = Number(r.headers.get('inference-header-content-length'));
        sameAsBaseline(Array.from(new Float32Array(all.buffer.slice(all.byteOffset + at, all.byteOffset + all.length))), name);
      });
    const forms: Form[] = [
      http('mms-json', `${base}/predictions/ocr-cls`, mmsJson, { 'content-type': 'application/json' }, async (r) => {
        if (!Array.isArray(await r.json())) throw new Error('mms-json: not the classifier\'s answer');
      }),
      http('oip-json', `${base}/v2/models/ocr-cls/infer`, oipJson, { 'content-type': 'application/json' }, async (r) => {
        sameAsBaseline(((await r.json()) as { outputs: { data: number[] }[] }).outputs[0].data, 'oip-json');
      }),
      http('oip-json-f32', `${base}/v2/models/ocr-cls/infer`, oipJsonF32, { 'content-type': 'application/json' }, async (r) => {
        sameAsBaseline(((await r.json()) as { outputs: { data: number[] }[] }).outputs[0].data, 'oip-json-f32');
      }),
      binaryForm('oip-binary', `${base}/v2/models/ocr-cls/infer`),
      http('oip-shm', `${base}/v2/models/ocr-cls/infer`, shmBody, { 'content-type': 'application/json' }, async () => {
        const out = fs.readFileSync(shmFiles[1]);
        sameAsBaseline(Array.from(new Float32Array(out.buffer, out.byteOffset, expected.length)), 'oip-shm');
      }),
      { name: 'grpc-raw', load: (c, s) => runGrpcLoad(grpcJob(c, s)), check: () => checkGrpc(`127.0.0.1:${grpcPort}`, raw, sameAsBaseline) },
      http('png', `${base}/v2/models/ocr-cls/infer`, png, { 'content-type': 'image/png' }, async () => undefined),
    ];
    const alone = await standaloneServer({
      modelDir: path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), contentType: 'application/octet-stream', body: binary, oip: { headerLength: header.length }, clients: 1, seconds: 0,
    });
    forms.push(binaryForm('standalone', `${alone.url}/v2/models/ocr-cls/infer`));
    const aloneGrpc = await standaloneServer({
      modelDir: path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), contentType: 'application/octet-stream', body: binary, oip: { headerLength: header.length }, clients: 1, seconds: 0, serveGrpc: true,
    });
    forms.push({ name: 'standalone-grpc', load: (c, s) => runGrpcLoad(grpcJob(c, s, aloneGrpc.address)), check: () => checkGrpc(aloneGrpc.address, raw, sameAsBaseline) });
    // The run's own length, for the floors' wait: a short pre-measure (the rounds' figure moves by a few %).
    const busyMs = (await baseline.load(1, 1)).p50;
    const floorJob = { modelDir: path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), contentType: 'application/octet-stream', body: binary, oip: { headerLength: header.length }, clients: 1, seconds: 0, busyMs };
    const floorHttp = await standaloneServer(floorJob);
    forms.push(binaryForm('floor-http', `${floorHttp.url}/v2/models/ocr-cls/infer`));
    const floorGrpc = await standaloneServer({ ...floorJob, serveGrpc: true });
    forms.push({ name: 'floor-grpc', load: (c, s) => runGrpcLoad(grpcJob(c, s, floorGrpc.address)), check: () => checkGrpc(floorGrpc.address, raw, sameAsBaseline) });
    const poolOnly = new PoolOnly(binary, header.length);
    await poolOnly.open();
    forms.push({ name: 'pool-only', load: (c, s) => poolOnly.load(c, s), check: async () => undefined });
    for (const f of forms) await f.check();

    const c1: Record<string, number[]> = Object.fromEntries([...forms.map((f) => [f.name, []]), ['in-process', []]]);
    const afterSleep: number[] = [];
    const c8: Record<string, LoadResult[]> = Object.fromEntries([...forms.map((f) => [f.name, []]), ['in-process', []]]);
    for (const f of forms) await f.load(1, 0.5);
    for (let round = 0; round < rounds; round++) {
      for (const f of forms) {
        c1[f.name].push((await f.load(1, seconds)).p50);
        c1['in-process'].push((await baseline.load(1, seconds / 2)).p50);
      }
      afterSleep.push(await baseline.afterSleep(seconds / 2));
      for (const f of forms) c8[f.name].push(await f.load(8, seconds));
      c8['in-process'].push(await baseline.load(8, seconds));
    }
    // The transports' own round trips, no model: what a form pays before any tensor work.
    const httpFloors: number[] = [];
    const grpcFloors: number[] = [];
    for (let k = 0; k < rounds; k++) {
      httpFloors.push((await runLoad({ url: `${base}/v2/health/live`, method: 'GET', bodies: [''], connections: 1, durationS: seconds / 2 })).p50);
      grpcFloors.push((await runGrpcLoad({ ...grpcJob(1, seconds / 2), method: 'ServerLive' })).p50);
    }
    const runMs = median(c1['in-process']);
    // A floor's work is its wait; every other form's is the model's run.
    const overhead = (name: string) => median(c1[name]) - (name.startsWith('floor-') ? busyMs : runMs);
    console.log(`\nPP-OCR classifier, tensor [${SHAPE}] (raw ${raw.length} B, OIP JSON ${oipJson.length} B, OIP JSON as float32 reprs ${oipJsonF32.length} B, MMS JSON ${mmsJson.length} B, PNG ${png.length} B); ${rounds} rounds of ${seconds} s, medians`);
    const runAfterSleep = median(afterSleep);
    console.log(`in-process onnxruntime run, c=1: p50 ${runMs.toFixed(3)} ms back to back, ${runAfterSleep.toFixed(3)} ms after 1 ms asleep (as a server's thread runs it between requests); the floors' wait ${busyMs.toFixed(3)} ms`);
    console.log(`transport floors, c=1 p50 (load client + server, no model): HTTP GET /v2/health/live ${median(httpFloors).toFixed(3)} ms, gRPC ServerLive ${median(grpcFloors).toFixed(3)} ms`);
    console.log('form            c=1 p50 ms  overhead ms   c=8 req/s   c=8 p50 ms  c=8 p99 ms  c=8 vs in-process');
    const inProcess8 = median(c8['in-process'].map((r) => r.throughput));
    for (const name of [...forms.map((f) => f.name), 'in-process']) {
      const t8 = median(c8[name].map((r) => r.throughput));
      console.log(
        `${name.padEnd(15)} ${median(c1[name]).toFixed(3).padStart(10)}  ${(name === 'in-process' ? 0 : overhead(name)).toFixed(3).padStart(11)}  ${t8.toFixed(1).padStart(10)}  ` +
        `${median(c8[name].map((r) => r.p50)).toFixed(2).padStart(10)}  ${median(c8[name].map((r) => r.p99)).toFixed(2).padStart(10)}  ${(t8 / inProcess8).toFixed(2).padStart(8)}`,
      );
    }
    const errors = forms.reduce((n, f) => n + c8[f.name].reduce((m, r) => m + r.errors + r.non2xx, 0), 0);
    if (errors > 0) console.log(`errors or non-2xx answers: ${errors}`);
    await poolOnly.close();
    await alone.stop();
    await aloneGrpc.stop();
    await floorHttp.stop();
    await floorGrpc.stop();
    console.log(`OIP binary over the standalone node:http server: ${(median(c1['oip-binary']) - median(c1.standalone)).toFixed(3)} ms at c=1, throughput ${(median(c8['oip-binary'].map((r) => r.throughput)) / median(c8.standalone.map((r) => r.throughput))).toFixed(2)}x at c=8`);
    const grpcOverStandalone = median(c1['grpc-raw']) - median(c1['standalone-grpc']);
    console.log(`gRPC over the standalone grpc-js server: ${grpcOverStandalone.toFixed(3)} ms at c=1, throughput ${(median(c8['grpc-raw'].map((r) => r.throughput)) / median(c8['standalone-grpc'].map((r) => r.throughput))).toFixed(2)}x at c=8`);
    const httpFloor = overhead('floor-http');
    const grpcFloor = overhead('floor-grpc');
    console.log(`floors (a request that waits as long as the run, no model): HTTP ${httpFloor.toFixed(3)} ms, gRPC ${grpcFloor.toFixed(3)} ms over the wait; OIP binary ${(overhead('oip-binary') - httpFloor).toFixed(3)} ms above its floor, gRPC ${(overhead('grpc-raw') - grpcFloor).toFixed(3)} ms above its`);
    console.log(`RESULT protocols binary_overhead_ms=${overhead('oip-binary').toFixed(3)} grpc_overhead_ms=${overhead('grpc-raw').toFixed(3)} json_overhead_ms=${overhead('oip-json').toFixed(3)} json_f32_overhead_ms=${overhead('oip-json-f32').toFixed(3)} mms_json_overhead_ms=${overhead('mms-json').toFixed(3)} shm_overhead_ms=${overhead('oip-shm').toFixed(3)} png_overhead_ms=${overhead('png').toFixed(3)} pool_only_overhead_ms=${overhead('pool-only').toFixed(3)} standalone_binary_overhead_ms=${overhead('standalone').toFixed(3)} binary_over_standalone_ms=${(median(c1['oip-binary']) - median(c1.standalone)).toFixed(3)} standalone_grpc_overhead_ms=${overhead('standalone-grpc').toFixed(3)} grpc_over_standalone_ms=${grpcOverStandalone.toFixed(3)} http_floor_overhead_ms=${httpFloor.toFixed(3)} grpc_floor_overhead_ms=${grpcFloor.toFixed(3)} binary_over_floor_ms=${(overhead('oip-binary') - httpFloor).toFixed(3)} grpc_over_floor_ms=${(overhead('grpc-raw') - grpcFloor).toFixed(3)} run_after_sleep_ms=${runAfterSleep.toFixed(3)}`);
  } finally {
    server.kill('SIGTERM');
    for (const file of shmFiles) fs.rmSync(file, { force: true });
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
