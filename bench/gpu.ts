// bench/gpu.sh runs this: the CUDA kernels checked against the CPU kernels on the same inputs, then
// timed — end to end (upload, kernel, download) and the kernel alone against a device-to-device copy.
import { halfToNumber } from '../src/preprocess/float16';
import { loadNative, packJob, preprocessNativeSync, preprocessOnStream, NativeJob } from '../src/preprocess/native';
import type { NormalizeParams } from '../src/preprocess/normalize';
import type { ResizePlan } from '../src/preprocess/resize-plan';

const params: NormalizeParams = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: true, padValue: 114 };

function plan(cw: number, ch: number, tw = cw, th = ch, padLeft = 0, padTop = 0): ResizePlan {
  return { contentWidth: cw, contentHeight: ch, tensorWidth: tw, tensorHeight: th, padLeft, padTop, scaleX: 1, scaleY: 1 };
}

function pixels(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

const cases: { name: string; width: number; height: number; channels: number; plan: ResizePlan; half?: boolean }[] = [
  { name: '1×1 → 7×5', width: 1, height: 1, channels: 3, plan: plan(7, 5) },
  { name: '1×4097 → 1×64 (area)', width: 1, height: 4097, channels: 3, plan: plan(1, 64) },
  { name: '3×5 → 11×13', width: 3, height: 5, channels: 4, plan: plan(11, 13) },
  { name: '1280×960 → 640² (bilinear)', width: 1280, height: 960, channels: 3, plan: plan(640, 640) },
  { name: '4000×3000 → 640×480 letterboxed in 640² (area)', width: 4000, height: 3000, channels: 3, plan: plan(640, 480, 640, 640, 0, 80) },
  { name: 'grey 333×77 → 320×48 padded', width: 333, height: 77, channels: 1, plan: plan(200, 48, 320, 48) },
  { name: '1280×960 → 640² float16', width: 1280, height: 960, channels: 3, plan: plan(640, 640), half: true },
];

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

async function main(): Promise<void> {
  const { binding, file, error } = loadNative();
  if (!binding) throw new Error(`addon not loaded: ${error}`);
  const caps = binding.capabilities();
  console.log(`addon ${file}: ${JSON.stringify(caps)}`);
  if (!binding.CudaStream || caps.cuda.deviceCount < 1) throw new Error('no CUDA device: run npm run build:cuda on a machine with a GPU');
  const mem = binding.cudaMemoryInfo!(0);
  console.log(`device 0 memory: ${(mem.free / 2 ** 30).toFixed(1)} GiB free of ${(mem.total / 2 ** 30).toFixed(1)} GiB`);
  const stream = new binding.CudaStream(0);

  let failures = 0;
  console.log('\n| case | max abs error CUDA vs CPU | tolerance |');
  console.log('|---|---:|---:|');
  for (const c of cases) {
    const src = pixels(c.width * c.height * c.channels, c.width + c.height);
    const size = 3 * c.plan.tensorWidth * c.plan.tensorHeight;
    const make = () => (c.half ? new Uint16Array(size).fill(0x7e00) : new Float32Array(size).fill(Number.NaN));
    const cpu = make();
    const gpu = make();
    const job = (out: Float32Array | Uint16Array): NativeJob => ({ src, width: c.width, height: c.height, channels: c.channels, plan: c.plan, params, out });
    preprocessNativeSync(job(cpu));
    await preprocessOnStream(stream, job(gpu));
    let worst = 0;
    const value = (a: Float32Array | Uint16Array, i: number) => (c.half ? halfToNumber(a[i]) : a[i]);
    for (let i = 0; i < size; i++) {
      const d = Math.abs(value(cpu, i) - value(gpu, i));
      worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
    }
    const tolerance = c.half ? 2 ** -9 * 4 : 1e-4;
    if (!(worst <= tolerance)) failures++;
    console.log(`| ${c.name} | ${worst.toExponential(2)} | ${tolerance.toExponential(1)} |`);
  }

  // Many jobs on one stream at once, each its own image and size (a batch prepares its images side by
  // side on libuv's threads): each must equal the CPU path's output for its own image.
  let raced = 0;
  const jobs = Array.from({ length: 48 }, (_, k) => {
    const cc = cases[k % cases.length];
    const jobSrc = pixels(cc.width * cc.height * cc.channels, 1000 + k);
    const size = 3 * cc.plan.tensorWidth * cc.plan.tensorHeight;
    const make = () => (cc.half ? new Uint16Array(size).fill(0x7e00) : new Float32Array(size).fill(Number.NaN));
    const cpu = make();
    const gpu = make();
    preprocessNativeSync({ src: jobSrc, width: cc.width, height: cc.height, channels: cc.channels, plan: cc.plan, params, out: cpu });
    return { cc, cpu, gpu, job: { src: jobSrc, width: cc.width, height: cc.height, channels: cc.channels, plan: cc.plan, params, out: gpu } as NativeJob };
  });
  await Promise.all(jobs.map((j) => preprocessOnStream(stream, j.job)));
  for (const j of jobs) {
    const value = (a: Float32Array | Uint16Array, i: number) => (j.cc.half ? halfToNumber(a[i]) : a[i]);
    const tolerance = j.cc.half ? 2 ** -9 * 4 : 1e-4;
    for (let i = 0; i < j.cpu.length; i++) {
      if (!(Math.abs(value(j.cpu, i) - value(j.gpu, i)) <= tolerance)) {
        raced++;
        break;
      }
    }
  }
  console.log(`
${jobs.length} concurrent jobs on one stream: ${raced} differ from the CPU path`);
  failures += raced;

  const c = cases[3];
  const src = pixels(c.width * c.height * 3, 7);
  const out = new Float32Array(3 * 640 * 640);
  const job: NativeJob = { src, width: c.width, height: c.height, channels: 3, plan: c.plan, params, out };
  const endToEnd: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < 60; i++) {
    let t = process.hrtime.bigint();
    await preprocessOnStream(stream, job);
    endToEnd.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    preprocessNativeSync(job);
    cpuTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const { geometry, affine, offset } = packJob(job);
  const timing = stream.benchmark(src, geometry, affine, out, offset, 200);
  const kernelGBs = timing.bytesMoved / (timing.kernelMs / 1e3) / 1e9;
  const copyGBs = timing.bytesMoved / (timing.copyMs / 1e3) / 1e9;
  console.log(`\n1280×960 → 640² f32: end to end (pinned upload, kernel, download) ${median(endToEnd).toFixed(3)} ms; CPU kernels ${median(cpuTimes).toFixed(3)} ms`);
  console.log(`kernel alone ${timing.kernelMs.toFixed(4)} ms = ${kernelGBs.toFixed(1)} GB/s; device-to-device copy of the same ${(timing.bytesMoved / 1e6).toFixed(1)} MB ${timing.copyMs.toFixed(4)} ms = ${copyGBs.toFixed(1)} GB/s`);
  console.log(`device memory held by the stream: ${stream.deviceBytes} bytes, pinned: ${stream.pinnedBytes} bytes`);
  // An idle worker's stream gives its buffers back, and the next job grows them again.
  stream.trim();
  const trimmed = stream.deviceBytes + stream.pinnedBytes;
  await preprocessOnStream(stream, job);
  const regrown = stream.deviceBytes > 0;
  console.log(`after trim(): ${trimmed} bytes held; after the next job: ${stream.deviceBytes} device bytes`);
  if (trimmed !== 0 || !regrown) failures++;
  stream.destroy();
  console.log(`RESULT gpu mismatches=${failures} concurrent_mismatches=${raced} kernel_bandwidth_ratio=${(kernelGBs / copyGBs).toFixed(2)} end_to_end_ms=${median(endToEnd).toFixed(3)} cpu_ms=${median(cpuTimes).toFixed(3)} trimmed_bytes=${trimmed}`);
  if (failures > 0) process.exit(1);
}


main().catch((err) => {
  console.error(err);
  process.exit(1);
});
