// The TypeScript side of the native kernels: loads the addon (the CUDA build when present, else the
// CPU build), validates every argument with errors that name it, and packs them into typed arrays.
import * as path from 'node:path';
import { InvalidImageError } from '../errors';
import type { CpuKernels, NativeBinding, NativeCapabilities, NativeCudaStream } from '../../native/index';

export type { CpuKernels };
import type { NormalizeParams } from './normalize';
import type { ResizePlan } from './resize-plan';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CANDIDATES = [path.join(ROOT, 'build-cuda', 'Release', 'quiver_native.node'), path.join(ROOT, 'build', 'Release', 'quiver_native.node')];

export const MAX_SIDE = 1 << 15;

let loaded: { binding?: NativeBinding; file?: string; error?: string } | undefined;

/** The addon, or undefined (with the reason) when it was not built. */
export function loadNative(): { binding?: NativeBinding; file?: string; error?: string } {
  if (loaded) return loaded;
  const errors: string[] = [];
  for (const file of CANDIDATES) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = { binding: require(file) as NativeBinding, file };
      return loaded;
    } catch (err) {
      errors.push(`${path.relative(ROOT, file)}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  loaded = { error: errors.join('; ') };
  return loaded;
}

export function nativeCapabilities(): (NativeCapabilities & { file: string }) | undefined {
  const { binding, file } = loadNative();
  return binding && file ? { ...binding.capabilities(), file } : undefined;
}

export interface CropRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface NativeJob {
  /** HWC pixels, `channels` per pixel (1, 3, or 4 with alpha ignored). */
  src: Uint8Array;
  width: number;
  height: number;
  channels: number;
  /** Part of the source to use; the whole picture when absent. */
  crop?: CropRect;
  plan: ResizePlan;
  params: NormalizeParams;
  /** float32 output, or float16 bits in a Uint16Array. */
  out: Float32Array | Uint16Array;
  /** First element written: batch index × 3 × tensorHeight × tensorWidth. */
  offset?: number;
  /** The best CPU vector path to take (tests and benchmarks compare them); the best the CPU has when absent. */
  cpuKernels?: CpuKernels;
}

const CPU_KERNEL_LEVEL: Record<CpuKernels, number> = { baseline: 0, avx2: 1, avx512vbmi: 2 };

function wholeNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected ${name} to be a whole number from ${min} to ${max} but received ${String(value)}`);
  }
  return value;
}

function finite(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`Expected ${name} to be a finite number but received ${String(value)}`);
  return value;
}

function cpuKernelLevel(kernels: CpuKernels | undefined): number {
  if (kernels === undefined) return CPU_KERNEL_LEVEL.avx512vbmi;
  const level = Object.hasOwn(CPU_KERNEL_LEVEL, kernels) ? CPU_KERNEL_LEVEL[kernels] : undefined;
  if (level === undefined) throw new RangeError(`Expected cpuKernels to be avx512vbmi, avx2 or baseline but received ${String(kernels)}`);
  return level;
}

/** Checks a job and packs it as the addon takes it. */
export function packJob(job: NativeJob): { geometry: Int32Array; affine: Float32Array; offset: number } {
  if (!(job.src instanceof Uint8Array)) throw new TypeError('Expected src to be a Uint8Array');
  if (!(job.out instanceof Float32Array || job.out instanceof Uint16Array)) throw new TypeError('Expected out to be a Float32Array or Uint16Array');
  const width = wholeNumber(job.width, 'width', 1, MAX_SIDE);
  const height = wholeNumber(job.height, 'height', 1, MAX_SIDE);
  const channels = wholeNumber(job.channels, 'channels', 1, 4);
  if (channels === 2) throw new RangeError('Expected channels to be 1, 3 or 4 but received 2');
  if (job.src.length < width * height * channels) {
    throw new RangeError(`Expected src to hold ${width}×${height}×${channels} = ${width * height * channels} bytes but it holds ${job.src.length}`);
  }
  const crop = job.crop ?? { x: 0, y: 0, width, height };
  wholeNumber(crop.x, 'crop.x', 0, width - 1);
  wholeNumber(crop.y, 'crop.y', 0, height - 1);
  wholeNumber(crop.width, 'crop.width', 1, width - crop.x);
  wholeNumber(crop.height, 'crop.height', 1, height - crop.y);
  const p = job.plan;
  wholeNumber(p.tensorWidth, 'plan.tensorWidth', 1, MAX_SIDE);
  wholeNumber(p.tensorHeight, 'plan.tensorHeight', 1, MAX_SIDE);
  wholeNumber(p.padLeft, 'plan.padLeft', 0, p.tensorWidth - 1);
  wholeNumber(p.padTop, 'plan.padTop', 0, p.tensorHeight - 1);
  wholeNumber(p.contentWidth, 'plan.contentWidth', 1, p.tensorWidth - p.padLeft);
  wholeNumber(p.contentHeight, 'plan.contentHeight', 1, p.tensorHeight - p.padTop);
  const offset = wholeNumber(job.offset ?? 0, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const needed = 3 * p.tensorWidth * p.tensorHeight;
  if (job.out.length - offset < needed) {
    throw new RangeError(`Expected out to hold ${needed} elements from offset ${offset} but it holds ${job.out.length}`);
  }
  const { params } = job;
  const affine = new Float32Array(9);
  for (let c = 0; c < 3; c++) {
    const std = finite(params.std[c], `params.std[${c}]`);
    if (std === 0) throw new RangeError(`Expected params.std[${c}] to be non-zero`);
    const a = finite(params.scale, 'params.scale') / std;
    const b = -finite(params.mean[c], `params.mean[${c}]`) / std;
    affine[c] = a;
    affine[3 + c] = b;
    affine[6 + c] = finite(params.padValue, 'params.padValue') * a + b;
  }
  const geometry = Int32Array.of(
    width, height, channels, crop.x, crop.y, crop.width, crop.height,
    p.tensorWidth, p.tensorHeight, p.contentWidth, p.contentHeight, p.padLeft, p.padTop, params.bgr ? 1 : 0,
    cpuKernelLevel(job.cpuKernels),
  );
  return { geometry, affine, offset };
}

function requireBinding(): NativeBinding {
  const { binding, error } = loadNative();
  if (!binding) throw new Error(`the native addon is not built (${error}); run npm run build:native`);
  return binding;
}

/** Runs the fused kernel on this thread (pool workers are threads of their own). */
export function preprocessNativeSync(job: NativeJob): void {
  const { geometry, affine, offset } = packJob(job);
  requireBinding().preprocessSync(job.src, geometry, affine, job.out, offset);
}

/** Runs the fused kernel on the libuv thread pool. */
export function preprocessNative(job: NativeJob): Promise<void> {
  const { geometry, affine, offset } = packJob(job);
  return requireBinding().preprocess(job.src, geometry, affine, job.out, offset);
}

/** Runs the kernel on a worker's CUDA stream (CUDA build only). */
export function preprocessOnStream(stream: NativeCudaStream, job: NativeJob): Promise<void> {
  const { geometry, affine, offset } = packJob(job);
  return stream.preprocess(job.src, geometry, affine, job.out, offset);
}

/** Returns freed heap pages to the OS where the addon can (glibc), so resident memory measures what is held. */
export interface DecodedJpeg {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * A JPEG decoded by libjpeg-turbo at 1/`scaleDenom` of its size, on this thread; undefined where the
 * addon was built without libjpeg or the JPEG is CMYK/YCCK (libvips converts those).
 */
export function decodeJpegNative(body: Uint8Array, scaleDenom: 1 | 2 | 4 | 8, maxPixels: number): DecodedJpeg | undefined {
  const decode = loadNative().binding?.decodeJpeg;
  if (!decode) return undefined;
  try {
    return decode(body, scaleDenom, maxPixels);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_QUIVER_JPEG_UNSUPPORTED') return undefined;
    if (code === 'ERR_QUIVER_JPEG_INVALID') throw new InvalidImageError(`image could not be decoded: ${(err as Error).message}`);
    throw err;
  }
}

export interface ScannedNumbers {
  /** Absent when a number was off the fast path: the caller reads the span with JSON.parse. */
  values?: Float64Array;
  dims: number[];
  end: number;
}

/** The addon's scan of the JSON number array at `at` (see json-numbers.ts); undefined where it is not built. */
export function numberArrayScanner(): ((bytes: Uint8Array, at: number, float32: boolean, maxRank: number) => ScannedNumbers | null) | undefined {
  const scan = loadNative().binding?.scanNumberArray;
  if (!scan) return undefined;
  return (bytes, at, float32, maxRank) => scan(bytes, wholeNumber(at, 'at', 0, bytes.length - 1), float32, wholeNumber(maxRank, 'maxRank', 1, 64));
}

export function releaseFreeMemory(): boolean {
  return loadNative().binding?.releaseFreeMemory() ?? false;
}
