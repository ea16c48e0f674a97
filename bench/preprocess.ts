// npm run bench:preprocess — image → normalized CHW float32 tensor, native kernels against sharp's
// resize plus a TypeScript normalize loop, on the same images in the same run.
import sharp from 'sharp';
import { imageInputSchema } from '../src/models/model-config';
import { preprocessImage } from '../src/preprocess/image';
import { selectImageKernels } from '../src/preprocess/kernels';
import { nativeCapabilities, preprocessNativeSync } from '../src/preprocess/native';
import { normalizeInto, NormalizeParams } from '../src/preprocess/normalize';
import { ResizePlan } from '../src/preprocess/resize-plan';

// As in a pool worker: one libvips thread, no cache.
sharp.concurrency(1);
sharp.cache(false);

const SRC_W = 1280;
const SRC_H = 960;
const DST = 640;
const BATCH = 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 60);

const params: NormalizeParams = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false, padValue: 0 };
const plan: ResizePlan = { contentWidth: DST, contentHeight: DST, tensorWidth: DST, tensorHeight: DST, padLeft: 0, padTop: 0, scaleX: DST / SRC_W, scaleY: DST / SRC_H };
const imageConfig = imageInputSchema.parse({ resize: 'stretch', width: DST, height: DST, mean: params.mean, std: params.std });
const input = { name: 'x', type: 'float32', shape: [1, 3, 'H', 'W'] };

async function time(fn: () => unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function middle(times: number[]): number {
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/**
 * Median ms of each function, run in alternating blocks, so that a noisy neighbour on this shared
 * machine slows both sides of a comparison alike. Within a block one function runs alone, after an
 * untimed call, with its data in cache as when it runs on its own: interleaving them call by call
 * would time how fast each one refills the cache after the other instead.
 */
async function pairedMedians(rounds: number, a: () => unknown, b: () => unknown): Promise<[number, number]> {
  const blocks = 6;
  const perBlock = Math.max(2, Math.ceil(rounds / blocks));
  const ta: number[] = [];
  const tb: number[] = [];
  for (let block = 0; block < blocks; block++) {
    for (const [fn, times] of [[a, ta], [b, tb]] as const) {
      await fn();
      for (let i = 0; i < perBlock; i++) times.push(await time(fn));
    }
  }
  return [middle(ta), middle(tb)];
}

/** A photo-like picture: gradients, shapes, text and sensor-like noise. */
async function photo(seed: number): Promise<{ raw: Buffer; jpeg: Buffer }> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SRC_W}" height="${SRC_H}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="rgb(${40 + seed * 20},90,160)"/><stop offset="1" stop-color="rgb(230,200,${100 + seed * 10})"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>
    <circle cx="${300 + seed * 40}" cy="400" r="220" fill="rgb(200,60,40)" opacity="0.7"/>
    <rect x="700" y="${200 + seed * 30}" width="420" height="300" fill="rgb(30,140,70)" opacity="0.6"/>
    <text x="80" y="860" font-family="DejaVu Sans, sans-serif" font-size="72" fill="white">Quiver benchmark ${seed}</text></svg>`;
  const noise = await sharp({ create: { width: SRC_W, height: SRC_H, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 18 } } }).png().toBuffer();
  const raw = await sharp(Buffer.from(svg)).composite([{ input: noise, blend: 'soft-light' }]).removeAlpha().raw().toBuffer();
  const jpeg = await sharp(raw, { raw: { width: SRC_W, height: SRC_H, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  return { raw, jpeg };
}

function sharpResize(raw: Buffer): Promise<Buffer> {
  return sharp(raw, { raw: { width: SRC_W, height: SRC_H, channels: 3 } }).resize(DST, DST, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
}

async function main(): Promise<void> {
  const caps = nativeCapabilities();
  if (!caps) throw new Error('the native addon is not built: run npm install (or npm run build:native)');
  const kernels = selectImageKernels('native');
  const images = await Promise.all(Array.from({ length: BATCH }, (_, i) => photo(i)));
  const [first] = images;
  const tensor = new Float32Array(3 * DST * DST);
  const batch = new Float32Array(BATCH * tensor.length);
  const rows: [string, number, number][] = [];

  // (a) raw pixels → tensor
  const rawKernel = () => preprocessNativeSync({ src: first.raw, width: SRC_W, height: SRC_H, channels: 3, plan, params, out: tensor });
  const [rawBaseline, rawNative] = await pairedMedians(ROUNDS, async () => normalizeInto(await sharpResize(first.raw), 3, tensor, plan, params), rawKernel);
  rows.push([`(a) raw RGB 1280×960 → 640² CHW f32 (${caps.cpu.kernels})`, rawBaseline, rawNative]);

  // (b) JPEG bytes → tensor, through the server's own image path
  const [jpegBaseline, jpegNative] = await pairedMedians(
    ROUNDS,
    () => preprocessImage(first.jpeg, imageConfig, input, { maxPixels: 1e8 }, tensor),
    () => preprocessImage(first.jpeg, imageConfig, input, { maxPixels: 1e8 }, tensor, kernels.kernels),
  );
  rows.push([`(b) JPEG ${(first.jpeg.length / 1024).toFixed(0)} KiB → 640² CHW f32`, jpegBaseline, jpegNative]);

  // (c) a batch of 8 raw images → one [8,3,640,640] tensor
  const [batchBaseline, batchNative] = await pairedMedians(
    Math.ceil(ROUNDS / 4),
    async () => {
      for (let n = 0; n < BATCH; n++) normalizeInto(await sharpResize(images[n].raw), 3, batch.subarray(n * tensor.length), plan, params);
    },
    () => {
      for (let n = 0; n < BATCH; n++) preprocessNativeSync({ src: images[n].raw, width: SRC_W, height: SRC_H, channels: 3, plan, params, out: batch, offset: n * tensor.length });
    },
  );
  rows.push([`(c) batch of ${BATCH} raw → [8,3,640,640]`, batchBaseline, batchNative]);

  // memcpy of the same bytes the raw path reads and writes
  const moved = first.raw.length + tensor.byteLength;
  const from = Buffer.alloc(moved, 1);
  const to = Buffer.alloc(moved);
  // The kernel again, in turn with the copy: the ratio compares two figures taken in the same moments.
  const [memcpy, kernelAgain] = await pairedMedians(ROUNDS * 4, () => from.copy(to), rawKernel);
  const kernelRate = moved / (kernelAgain / 1e3);

  // The same on each slower CPU path this machine has, for machines without the best one.
  const slowerPaths = (['avx2', 'baseline'] as const).filter((k) => k !== caps.cpu.kernels && (k === 'baseline' || caps.cpu.avx2));
  const pathTimes: [string, number, number][] = [];
  for (const cpuKernels of slowerPaths) {
    const [copy, ms] = await pairedMedians(ROUNDS, () => from.copy(to), () => preprocessNativeSync({ src: first.raw, width: SRC_W, height: SRC_H, channels: 3, plan, params, out: tensor, cpuKernels }));
    pathTimes.push([cpuKernels, ms, copy / ms]);
  }
  const memcpyRate = moved / (memcpy / 1e3);

  console.log(`native addon: ${caps.file} (cpu kernels: ${caps.cpu.kernels}, cuda compiled: ${caps.cuda.compiled}, devices: ${caps.cuda.deviceCount}); image path: ${kernels.description}`);
  console.log(`median of ${ROUNDS} rounds (batch: ${Math.ceil(ROUNDS / 4)}), baseline and native in alternating blocks\n`);
  console.log('| case | sharp + TypeScript (ms) | native (ms) | speedup |');
  console.log('|---|---:|---:|---:|');
  for (const [name, base, nat] of rows) console.log(`| ${name} | ${base.toFixed(3)} | ${nat.toFixed(3)} | ${(base / nat).toFixed(2)}× |`);
  console.log(`\nraw path moves ${(moved / 1e6).toFixed(1)} MB: ${(kernelRate / 1e9).toFixed(2)} GB/s (${kernelAgain.toFixed(3)} ms); memcpy of the same bytes: ${(memcpyRate / 1e9).toFixed(2)} GB/s (${memcpy.toFixed(3)} ms)`);
  for (const [name, ms, ratio] of pathTimes) console.log(`raw path on the ${name} kernels: ${ms.toFixed(3)} ms, ${(moved / (ms / 1e3) / 1e9).toFixed(2)} GB/s, memcpy ratio ${ratio.toFixed(2)}`);
  console.log(
    `RESULT preprocess raw_speedup=${(rawBaseline / rawNative).toFixed(2)} jpeg_speedup=${(jpegBaseline / jpegNative).toFixed(2)} batch_speedup=${(batchBaseline / batchNative).toFixed(2)} raw_memcpy_ratio=${(kernelRate / memcpyRate).toFixed(2)}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
