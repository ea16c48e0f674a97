// npm run bench:shm — what Triton's system shared memory saves on a large tensor: a detector-sized FP32
// page ([1,3,736,960], 8.5 MB in and out) through a model that adds one, sent four ways at c=1: OIP binary
// over HTTP, gRPC raw contents, and both with the input and output in /dev/shm regions (the request then
// carries a header only, as perf_analyzer --shared-memory system sends it). Baseline, in the same run:
// onnxruntime's own run of the tensor in this process. Each figure is the median over rounds, forms
// taking turns.
//
//   --duration S     seconds per form and round (default 2)
//   --rounds N       rounds (default 3)
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { serverNodeArgs } from '../src/cli/supervisor';
import { clientConstructors } from '../src/grpc/protos';
import { GrpcLoadJob, grpcFrame, unaryCall } from './grpc-load-client';
import { LoadResult, runGrpcLoad, runLoad } from './load';
import { freePort } from './process-info';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SHAPE = [1, 3, 736, 960];
const ELEMENTS = SHAPE.reduce((a, b) => a * b, 1);
const BYTES = ELEMENTS * 4;

/** y = x + 1, x [N, 3, 736, 960] float32. */
function addOneImageModel(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, ...SHAPE.slice(1).map((d) => ({ dimValue: d }))] } } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'add-one-page', node: [{ opType: 'Add', input: ['x', 'one'], output: ['y'] }],
      initializer: [{ name: 'one', dims: [1], dataType: FLOAT, floatData: [1] }], input: [info('x')], output: [info('y')],
    },
  })).finish();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Form {
  name: string;
  load(seconds: number): Promise<LoadResult>;
  /** The answer's first and last values, which must be the input's plus one. */
  check(): Promise<[number, number]>;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' } } });
  const seconds = Number(args.duration);
  const rounds = Number(args.rounds);
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-shm-bench-'));
  fs.mkdirSync(path.join(store, 'page'));
  fs.writeFileSync(path.join(store, 'page', 'model.onnx'), addOneImageModel());
  const input = Float32Array.from({ length: ELEMENTS }, (_, i) => (i % 1000) / 1000);
  const raw = Buffer.from(input.buffer);
  const expected: [number, number] = [input[0] + 1, input[ELEMENTS - 1] + 1];

  const session = await ort.InferenceSession.create(path.join(store, 'page', 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', enableMemPattern: false });
  const inProcess = async (s: number) => {
    const times: number[] = [];
    const end = performance.now() + s * 1000;
    const feeds = { x: new ort.Tensor('float32', input, SHAPE) };
    while (performance.now() < end) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    return median(times);
  };

  const [port, admin, grpcPort] = [await freePort(), await freePort(), await freePort()];
  const server: ChildProcess = spawn(process.execPath, [...serverNodeArgs(), CLI, 'serve', '--no-supervisor', '--model-store', store, '--models', 'page', '--workers', '1',
    '--log-level', 'warn', '--allow-client-shm', 'true', '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${admin}`,
    '--grpc-inference-address', `127.0.0.1:${grpcPort}`, '--work-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-shm-work-'))], { stdio: 'inherit' });
  const base = `http://127.0.0.1:${port}`;
  const files = ['in', 'out'].map((k) => path.join('/dev/shm', `quiver-bench-shm-${process.pid}-${k}`));
  try {
    for (let i = 0; i < 600; i++) {
      if (await fetch(`${base}/v2/health/ready`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    fs.writeFileSync(files[0], raw);
    fs.writeFileSync(files[1], Buffer.alloc(BYTES));
    for (const [name, file] of [['in', files[0]], ['out', files[1]]]) {
      const r = await fetch(`${base}/v2/systemsharedmemory/region/${name}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: `/${path.basename(file)}`, offset: 0, byte_size: BYTES }) });
      if (r.status !== 200) throw new Error(`registering ${name}: ${r.status} ${await r.text()}`);
    }
    const fromRegion = (): [number, number] => {
      const out = new Float32Array(fs.readFileSync(files[1]).buffer);
      return [out[0], out[ELEMENTS - 1]];
    };
    const firstLast = (b: Buffer): [number, number] => {
      const f = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      return [f[0], f[f.length - 1]];
    };

    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: BYTES } }], parameters: { binary_data_output: true } }));
    const binaryBody = Buffer.concat([header, raw]);
    const binaryHeaders = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) };
    const shmBody = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', parameters: { shared_memory_region: 'in', shared_memory_byte_size: BYTES } }],
      outputs: [{ name: 'y', parameters: { shared_memory_region: 'out', shared_memory_byte_size: BYTES } }],
    }));
    const url = `${base}/v2/models/page/infer`;
    const shmParams = (region: string) => ({ shared_memory_region: { string_param: region }, shared_memory_byte_size: { int64_param: BYTES } });
    const grpcRaw = { model_name: 'page', model_version: '', id: '', inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE }], outputs: [], raw_input_contents: [raw] };
    const grpcShm = { model_name: 'page', model_version: '', id: '', inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE, parameters: shmParams('in') }], outputs: [{ name: 'y', parameters: shmParams('out') }], raw_input_contents: [] };
    const grpcCall = async (request: object): Promise<Buffer[]> => {
      const definition = clientConstructors().inference.service.ModelInfer;
      const h2 = http2.connect(`http://127.0.0.1:${grpcPort}`);
      h2.on('error', () => undefined);
      try {
        const answer = await unaryCall(h2, definition.path, grpcFrame(definition.requestSerialize(request)));
        return (definition.responseDeserialize(answer.subarray(5)) as { raw_output_contents: Buffer[] }).raw_output_contents;
      } finally {
        h2.close();
      }
    };
    const grpcJob = (request: typeof grpcRaw | typeof grpcShm, s: number): GrpcLoadJob => ({
      address: `127.0.0.1:${grpcPort}`, connections: 1, durationS: s,
      request: { ...request, raw_input_contents: request.raw_input_contents.map((b) => b.toString('base64')) } as GrpcLoadJob['request'],
    });
    const forms: Form[] = [
      {
        name: 'http-binary',
        load: (s) => runLoad({ url, headers: binaryHeaders, bodies: [binaryBody.toString('base64')], connections: 1, durationS: s }),
        check: async () => {
          const r = await fetch(url, { method: 'POST', headers: binaryHeaders, body: binaryBody });
          const all = Buffer.from(await r.arrayBuffer());
          return firstLast(all.subarray(Number(r.headers.get('inference-header-content-length'))));
        },
      },
      {
        name: 'http-shm',
        load: (s) => runLoad({ url, headers: { 'content-type': 'application/json' }, bodies: [shmBody.toString('base64')], connections: 1, durationS: s }),
        check: async () => {
          fs.writeFileSync(files[1], Buffer.alloc(BYTES));
          const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: shmBody });
          if (r.status !== 200) throw new Error(`http-shm: ${r.status} ${await r.text()}`);
          return fromRegion();
        },
      },
      { name: 'grpc-raw', load: (s) => runGrpcLoad(grpcJob(grpcRaw, s)), check: async () => firstLast((await grpcCall(grpcRaw))[0]) },
      {
        name: 'grpc-shm',
        load: (s) => runGrpcLoad(grpcJob(grpcShm, s)),
        check: async () => {
          fs.writeFileSync(files[1], Buffer.alloc(BYTES));
          await grpcCall(grpcShm);
          return fromRegion();
        },
      },
    ];
    for (const f of forms) {
      const got = await f.check();
      if (Math.abs(got[0] - expected[0]) > 1e-6 || Math.abs(got[1] - expected[1]) > 1e-6) throw new Error(`${f.name}: answer ${got} is not the input plus one (${expected})`);
    }
    const p50: Record<string, number[]> = Object.fromEntries([...forms.map((f) => [f.name, []]), ['in-process', []]]);
    let errors = 0;
    for (const f of forms) await f.load(0.5);
    for (let round = 0; round < rounds; round++) {
      for (const f of forms) {
        const r = await f.load(seconds);
        errors += r.errors + r.non2xx;
        p50[f.name].push(r.p50);
        p50['in-process'].push(await inProcess(seconds / 2));
      }
    }
    const run = median(p50['in-process']);
    console.log(`\nFP32 tensor [${SHAPE}] (${(BYTES / 2 ** 20).toFixed(1)} MiB in, the same out), model y = x + 1; ${rounds} rounds of ${seconds} s at c=1, medians`);
    console.log('form          c=1 p50 ms   over the in-process run ms');
    for (const name of [...forms.map((f) => f.name), 'in-process']) {
      console.log(`${name.padEnd(13)} ${median(p50[name]).toFixed(2).padStart(10)}   ${(median(p50[name]) - run).toFixed(2).padStart(10)}`);
    }
    if (errors > 0) console.log(`errors or non-2xx answers: ${errors}`);
    const over = (name: string) => median(p50[name]) - run;
    console.log(`RESULT shm http_binary_overhead_ms=${over('http-binary').toFixed(2)} http_shm_overhead_ms=${over('http-shm').toFixed(2)} http_shm_saving=${(over('http-binary') / over('http-shm')).toFixed(2)} ` +
      `grpc_raw_overhead_ms=${over('grpc-raw').toFixed(2)} grpc_shm_overhead_ms=${over('grpc-shm').toFixed(2)} grpc_shm_saving=${(over('grpc-raw') / over('grpc-shm')).toFixed(2)} run_ms=${run.toFixed(2)} errors=${errors}`);
  } finally {
    server.kill('SIGTERM');
    for (const file of files) fs.rmSync(file, { force: true });
    fs.rmSync(store, { recursive: true, force: true });
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
