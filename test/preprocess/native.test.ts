// The native kernels against the float64 reference on awkward sizes, every element written.
import { loadNative, nativeCapabilities, numberArrayScanner, packJob, preprocessNative, preprocessNativeSync, CpuKernels, CropRect } from '../../src/preprocess/native';
import type { NormalizeParams } from '../../src/preprocess/normalize';
import type { ResizePlan } from '../../src/preprocess/resize-plan';
import { randomPixels } from '../fixtures/images';
import { halfToNumber, referencePreprocess } from '../fixtures/reference-resize';

const params: NormalizeParams = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false, padValue: 114 };

function plainPlan(w: number, h: number): ResizePlan {
  return { contentWidth: w, contentHeight: h, tensorWidth: w, tensorHeight: h, padLeft: 0, padTop: 0, scaleX: 1, scaleY: 1 };
}

function maxError(got: ArrayLike<number>, want: Float64Array): number {
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

interface Case {
  name: string;
  width: number;
  height: number;
  channels: number;
  plan: ResizePlan;
  crop?: CropRect;
  bgr?: boolean;
}

const cases: Case[] = [
  { name: '1×1 → 1×1', width: 1, height: 1, channels: 3, plan: plainPlan(1, 1) },
  { name: '1×1 → 7×5 (upscale a single pixel)', width: 1, height: 1, channels: 3, plan: plainPlan(7, 5) },
  { name: '1×4097 → 1×64 (area, extreme aspect)', width: 1, height: 4097, channels: 3, plan: plainPlan(1, 64) },
  { name: '4097×1 → 300×3 (area one way, up the other)', width: 4097, height: 1, channels: 3, plan: plainPlan(300, 3) },
  { name: '3×5 → 11×13 (upscale)', width: 3, height: 5, channels: 3, plan: plainPlan(11, 13) },
  { name: '97×61 → 64×40 (bilinear shrink < 2×)', width: 97, height: 61, channels: 3, plan: plainPlan(64, 40) },
  { name: '640×480 → 100×75 (area 6.4×)', width: 640, height: 480, channels: 3, plan: plainPlan(100, 75) },
  { name: '129×257 → 43×37 (area, odd factors)', width: 129, height: 257, channels: 4, plan: plainPlan(43, 37) },
  // The vector paths: byte windows per block of 8 outputs, moved left at the row end, leftovers one by one.
  { name: '1280×960 → 640×640 (exactly 2× one way)', width: 1280, height: 960, channels: 3, plan: plainPlan(640, 640) },
  { name: 'RGBA 301×203 → 161×119 (bilinear)', width: 301, height: 203, channels: 4, plan: plainPlan(161, 119) },
  { name: 'RGBA 64×8 → 32×8 (exactly 2×: the widest AVX2 windows)', width: 64, height: 8, channels: 4, plan: plainPlan(32, 8) },
  { name: '1001×9 → 999×7 (almost 1:1)', width: 1001, height: 9, channels: 3, plan: plainPlan(999, 7) },
  { name: '17×40 → 9×33 (row narrower than a window)', width: 17, height: 40, channels: 3, plan: plainPlan(9, 33) },
  { name: '23×6 → 45×11 (upscale, window moved left at the row end)', width: 23, height: 6, channels: 3, plan: plainPlan(45, 11) },
  { name: 'grey 33×17 → 20×20', width: 33, height: 17, channels: 1, plan: plainPlan(20, 20) },
  { name: 'BGR 50×30 → 30×50', width: 50, height: 30, channels: 3, plan: plainPlan(30, 50), bgr: true },
  {
    name: 'letterbox 200×100 → 64×64 (content 64×32, centred)', width: 200, height: 100, channels: 3,
    plan: { contentWidth: 64, contentHeight: 32, tensorWidth: 64, tensorHeight: 64, padLeft: 0, padTop: 16, scaleX: 0.32, scaleY: 0.32 },
  },
  {
    name: 'crop then pad right (text line)', width: 120, height: 90, channels: 3, crop: { x: 13, y: 40, width: 77, height: 21 },
    plan: { contentWidth: 176, contentHeight: 48, tensorWidth: 320, tensorHeight: 48, padLeft: 0, padTop: 0, scaleX: 1, scaleY: 1 },
  },
];

const native = loadNative();
const LEVELS: CpuKernels[] = ['baseline', 'avx2', 'avx512vbmi'];
const best = nativeCapabilities()?.cpu.kernels ?? 'baseline';
// Every CPU path this machine has, each checked on its own.
const paths = LEVELS.slice(0, LEVELS.indexOf(best) + 1);

describe('native preprocessing addon', () => {
  test('is built by npm install and reports what it can do', () => {
    expect(native.error).toBeUndefined();
    const caps = nativeCapabilities()!;
    expect(typeof caps.cpu.avx2).toBe('boolean');
    expect(LEVELS).toContain(caps.cpu.kernels);
    if (caps.cpu.avx2) expect(caps.cpu.kernels).not.toBe('baseline');
    expect(caps.cuda).toMatchObject({ compiled: expect.any(Boolean), deviceCount: expect.any(Number) });
  });

  describe.each(paths)('on the %s path', (cpuKernels) => {
    test.each(cases)('$name matches the float64 reference (float32, every element written)', ({ width, height, channels, plan, crop, bgr }) => {
      const src = randomPixels(width, height, channels, width * 7 + height);
      const p = { ...params, bgr: !!bgr };
      const out = new Float32Array(3 * plan.tensorWidth * plan.tensorHeight).fill(Number.NaN);
      preprocessNativeSync({ src, width, height, channels, crop, plan, params: p, out, cpuKernels });
      const want = referencePreprocess(src, width, channels, crop ?? { x: 0, y: 0, width, height }, plan, p);
      expect(maxError(out, want)).toBeLessThanOrEqual(1e-4);
    });
  });

  const halfCases = [...cases.slice(4, 8), ...cases.filter((c) => /^(RGBA 301|BGR|letterbox|crop)/.test(c.name))];
  describe.each(paths)('on the %s path', (cpuKernels) => {
    test.each(halfCases)('$name in float16 is the reference rounded to half precision', ({ width, height, channels, plan, crop, bgr }) => {
      const src = randomPixels(width, height, channels, 3);
      const p = { ...params, bgr: !!bgr };
      const out = new Uint16Array(3 * plan.tensorWidth * plan.tensorHeight).fill(0x7e00); // NaN
      preprocessNativeSync({ src, width, height, channels, crop, plan, params: p, out, cpuKernels });
      const want = referencePreprocess(src, width, channels, crop ?? { x: 0, y: 0, width, height }, plan, p);
      // Half precision keeps 11 significant bits: error ≤ half an ulp plus the float32 path's own.
      let worst = 0;
      out.forEach((h, i) => {
        const excess = Math.abs(halfToNumber(h) - want[i]) - (Math.abs(want[i]) * 2 ** -11 + 1e-4);
        worst = Number.isNaN(excess) ? Infinity : Math.max(worst, excess);
      });
      expect(worst).toBeLessThanOrEqual(0);
    });
  });

  test('a batch fills one NCHW tensor, image by image, and the async path agrees', async () => {
    const plan = plainPlan(16, 12);
    const each = 3 * 16 * 12;
    const out = new Float32Array(each * 3).fill(Number.NaN);
    const sources = [1, 2, 3].map((seed) => randomPixels(40, 30, 3, seed));
    await Promise.all(sources.map((src, n) => preprocessNative({ src, width: 40, height: 30, channels: 3, plan, params, out, offset: n * each })));
    sources.forEach((src, n) => {
      const want = referencePreprocess(src, 40, 3, { x: 0, y: 0, width: 40, height: 30 }, plan, params);
      expect(maxError(out.subarray(n * each, (n + 1) * each), want)).toBeLessThanOrEqual(1e-4);
    });
  });

  test('bad arguments are refused in TypeScript with errors that name them', () => {
    const ok = { src: new Uint8Array(12), width: 2, height: 2, channels: 3, plan: plainPlan(2, 2), params, out: new Float32Array(12) };
    expect(() => packJob({ ...ok, width: 0 })).toThrow(/Expected width to be a whole number from 1 to 32768 but received 0/);
    expect(() => packJob({ ...ok, width: 60000, height: 60000 })).toThrow(/width/);
    expect(() => packJob({ ...ok, src: new Uint8Array(5) })).toThrow(/src to hold 2×2×3 = 12 bytes/);
    expect(() => packJob({ ...ok, channels: 2 })).toThrow(/channels to be 1, 3 or 4/);
    expect(() => packJob({ ...ok, out: new Float32Array(5) })).toThrow(/out to hold 12 elements/);
    expect(() => packJob({ ...ok, crop: { x: 1, y: 0, width: 2, height: 2 } })).toThrow(/crop.width/);
    expect(() => packJob({ ...ok, params: { ...params, std: [1, 0, 1] } })).toThrow(/std\[1\] to be non-zero/);
    expect(() => packJob({ ...ok, cpuKernels: 'sse9' as CpuKernels })).toThrow(/cpuKernels to be avx512vbmi, avx2 or baseline but received sse9/);
  });

  test('the addon itself refuses inconsistent arguments with a coded error instead of crashing', () => {
    const binding = native.binding!;
    const geometry = Int32Array.of(60000, 60000, 3, 0, 0, 60000, 60000, 8, 8, 8, 8, 0, 0, 0, 2);
    const call = () => binding.preprocessSync(new Uint8Array(10), geometry, new Float32Array(9), new Float32Array(192), 0);
    expect(call).toThrow(expect.objectContaining({ code: 'ERR_QUIVER_NATIVE_ARGUMENT' }));
    expect(() => binding.preprocessSync(new Uint8Array(10), new Int32Array(3), new Float32Array(9), new Float32Array(1), 0)).toThrow(/geometry must hold 15 values/);
    const small = Int32Array.of(2, 2, 3, 0, 0, 2, 2, 8, 8, 8, 8, 0, 0, 0, 2);
    const unknownPath = Int32Array.of(2, 2, 3, 0, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 3);
    expect(() => binding.preprocessSync(new Uint8Array(12), unknownPath, new Float32Array(9), new Float32Array(12), 0)).toThrow(/cpu kernels must be 0, 1 or 2/);
    expect(() => binding.preprocessSync(new Uint8Array(12), small, new Float32Array(9), new Float32Array(10), 0)).toThrow(/output buffer is too small/);
  });
});

describe('the JSON number scan', () => {
  const bytes = new Uint8Array(Buffer.from('[1,2]'));

  test('refuses a start outside the bytes and a rank out of range, in TypeScript and in the addon', () => {
    const scan = numberArrayScanner()!;
    expect(scan(bytes, 0, false, 8)).toEqual({ values: Float64Array.of(1, 2), dims: [2], end: 5 });
    expect(() => scan(bytes, 5, false, 8)).toThrow(/at/);
    expect(() => scan(bytes, -1, false, 8)).toThrow(/at/);
    expect(() => scan(bytes, 0, false, 0)).toThrow(/maxRank/);
    const binding = loadNative().binding!;
    expect(() => binding.scanNumberArray(bytes, 5, false, 8)).toThrow(/at must lie inside/);
    expect(() => binding.scanNumberArray(new Uint16Array(2) as unknown as Uint8Array, 0, false, 8)).toThrow(/expected \(Uint8Array/);
  });

  test('says null for what is not a number array, even where it does not start with [', () => {
    expect(loadNative().binding!.scanNumberArray(new Uint8Array(Buffer.from('{"a":1}')), 0, false, 8)).toBeNull();
    expect(numberArrayScanner()!(new Uint8Array(Buffer.from('[1,"a"]')), 0, false, 8)).toBeNull();
  });
});

describe('a worker thread ended while it is in the addon', () => {
  test('ends; the process goes on (an error the addon cannot throw in an ending thread is dropped, not a crash)', async () => {
    // Each scan builds its answer with Node-API calls, which fail in a thread being terminated; an
    // error then thrown by node-addon-api with nowhere to go would abort the whole process.
    const { Worker } = await import('node:worker_threads');
    const native = require.resolve('../../src/preprocess/native');
    const script = `
      const { numberArrayScanner } = require(${JSON.stringify(native)});
      const scan = numberArrayScanner();
      const bytes = new Uint8Array(Buffer.from('[' + Array.from({ length: 20000 }, (_, i) => i * 0.25).join(',') + ']'));
      require('node:worker_threads').parentPort.postMessage('ready');
      for (;;) scan(bytes, 0, true, 8);
    `;
    for (let i = 0; i < 20; i++) {
      const worker = new Worker(script, { eval: true });
      await new Promise((resolve) => worker.once('message', resolve));
      await new Promise((resolve) => setTimeout(resolve, i % 5));
      await worker.terminate();
    }
    expect(numberArrayScanner()!(new Uint8Array(Buffer.from('[1]')), 0, false, 8)).toEqual({ values: Float64Array.of(1), dims: [1], end: 3 });
  });
});
