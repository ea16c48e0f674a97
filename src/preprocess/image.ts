// Request image → model input tensor: check the header, decode (common PNGs directly, the rest with sharp:
// libvips, shrink-on-load), then resize and normalize into CHW float32 with the native kernels (or
// sharp's resize and a TS loop).
import type { OutputInfo, Sharp } from 'sharp';
import { ImageTooLargeError, InvalidImageError } from '../errors';
import type { ImageInputConfig } from '../models/model-config';
import { normalizeInto } from './normalize';
import { readImageHeader } from './image-header';
import { decodeJpegNative, NativeJob } from './native';
import { decodePng } from './png';
import { FixedDims, ResizePlan, planResize } from './resize-plan';
import type { TensorInfo } from './tensor-types';

export interface ImageMeta extends ResizePlan {
  originalWidth: number;
  originalHeight: number;
}

export interface ImageTensor {
  data: Float32Array;
  dims: [1, 3, number, number];
  meta: ImageMeta;
}

export interface ImageLimits {
  maxPixels: number;
}

type SharpModule = typeof import('sharp').default;
let loadedSharp: SharpModule | undefined;

/**
 * sharp, loaded on the first picture the direct decoders leave to it: a thread that only sees JPEGs and
 * common PNGs never pays its ~2 MB of heap, and the process maps libvips only when one does.
 */
function sharp(): SharpModule {
  if (!loadedSharp) {
    try {
      loadedSharp = require('sharp') as SharpModule;
    } catch (err) {
      throw new Error(`sharp (libvips), which decodes this picture's format, could not be loaded: ${(err as Error).message}`);
    }
    // Each worker is one lane of parallelism; libvips threads would oversubscribe the cores.
    loadedSharp.concurrency(1);
    loadedSharp.cache(false);
  }
  return loadedSharp;
}

const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

/** Fixed H and W of an NCHW input, when the model declares them. */
export function fixedImageDims(input: TensorInfo | undefined): FixedDims {
  if (!input || input.shape.length !== 4) return {};
  const [, , h, w] = input.shape;
  return { height: typeof h === 'number' && h > 0 ? h : undefined, width: typeof w === 'number' && w > 0 ? w : undefined };
}

interface ImageHeader {
  format?: string;
  width: number;
  height: number;
  channels: number;
  space: string;
}

// The largest side the kernels take, in a picture or in the input made from it.
const MAX_SIDE = 32_767;

function checkPixels(width: number, height: number, limits: ImageLimits): void {
  if (width * height > limits.maxPixels) {
    throw new ImageTooLargeError(`image is ${width}×${height} = ${width * height} pixels, over the limit of ${limits.maxPixels}`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE) throw new ImageTooLargeError(`image is ${width}×${height}; a side may be at most ${MAX_SIDE} pixels`);
}

/** The tensor a plan makes is bounded too: a config without an upper bound must not turn a thin strip into gigabytes. */
function checkPlan(plan: ResizePlan, width: number, height: number, limits: ImageLimits): void {
  const pixels = plan.tensorWidth * plan.tensorHeight;
  if (pixels > limits.maxPixels || plan.tensorWidth > MAX_SIDE || plan.tensorHeight > MAX_SIDE) {
    throw new ImageTooLargeError(
      `a ${width}×${height} image would make a ${plan.tensorWidth}×${plan.tensorHeight} input for this model, over the limit of ${limits.maxPixels} pixels (max_image_pixels) or ${MAX_SIDE} a side`,
    );
  }
}


async function readHeader(body: Uint8Array, limits: ImageLimits): Promise<ImageHeader> {
  // sharp throws a plain Error for an empty buffer (found by npm run fuzz).
  if (body.length === 0) throw new InvalidImageError('request body is empty, not an image');
  const quick = readImageHeader(body);
  if (quick) {
    checkPixels(quick.width, quick.height, limits);
    return quick;
  }
  const meta = await sharp()(body, { limitInputPixels: false })
    .metadata()
    .catch((err: Error) => {
      throw new InvalidImageError(`request body is not a decodable image: ${err.message}`);
    });
  if (!meta.format || !SUPPORTED_FORMATS.has(meta.format) || !meta.width || !meta.height) {
    throw new InvalidImageError(`request body is not a supported image (format: ${meta.format ?? 'unknown'})`);
  }
  checkPixels(meta.width, meta.height, limits);
  return { format: meta.format, width: meta.width, height: meta.height, channels: meta.channels ?? 3, space: meta.space ?? 'srgb' };
}

function dropAlpha(greyAlpha: Buffer): Uint8Array {
  const grey = new Uint8Array(greyAlpha.length / 2);
  for (let i = 0; i < grey.length; i++) grey[i] = greyAlpha[2 * i];
  return grey;
}

/** Where decoded pixels become the tensor: the native kernels, or sharp's resize plus a TypeScript loop. */
export interface ImageKernels {
  backend: 'native-cuda' | 'native-cpu';
  run(job: NativeJob): Promise<void> | void;
}

async function decode(image: Sharp): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await image.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new InvalidImageError(`image could not be decoded: ${(err as Error).message}`);
  }
}

/**
 * Largest power of two (≤ 8) the decoder may shrink by while the picture stays at least as large as
 * the content: libjpeg's shrink-on-load then skips most of the decoding work.
 */
export function shrinkOnLoadFactor(width: number, height: number, plan: ResizePlan): number {
  const room = Math.min(width / plan.contentWidth, height / plan.contentHeight);
  let factor = 1;
  while (factor < 8 && room >= factor * 2) factor *= 2;
  return factor;
}

export async function preprocessImage(
  body: Uint8Array,
  cfg: ImageInputConfig,
  input: TensorInfo | undefined,
  limits: ImageLimits,
  reuse?: Float32Array,
  kernels?: ImageKernels,
): Promise<ImageTensor> {
  const { format, width, height, space } = await readHeader(body, limits);
  const plan = planResize(width, height, cfg, fixedImageDims(input));
  checkPlan(plan, width, height, limits);
  const length = 3 * plan.tensorWidth * plan.tensorHeight;
  const data = reuse && reuse.length === length ? reuse : new Float32Array(length);
  const params = { scale: cfg.scale, mean: cfg.mean, std: cfg.std, bgr: cfg.channelOrder === 'bgr', padValue: cfg.padValue };
  // Common PNGs and JPEGs are decoded here, on the worker's thread: a libvips pipeline costs more to set
  // up than a small picture costs to decode (measured: bench/preprocess.ts).
  const direct = !kernels ? undefined
    : format === 'jpeg' ? decodeJpegNative(body, shrinkOnLoadFactor(width, height, plan) as 1 | 2 | 4 | 8, limits.maxPixels)
    : decodePng(body);
  if (kernels && direct) {
    await kernels.run({ src: direct.data, width: direct.width, height: direct.height, channels: direct.channels, plan, params, out: data });
    return { data, dims: [1, 3, plan.tensorHeight, plan.tensorWidth], meta: { ...plan, originalWidth: width, originalHeight: height } };
  }
  let image = sharp()(body, { limitInputPixels: limits.maxPixels, failOn: 'error' });
  if (space !== 'srgb' && space !== 'b-w') image = image.toColourspace('srgb');
  if (kernels) {
    const factor = shrinkOnLoadFactor(width, height, plan);
    if (factor > 1) image = image.resize(Math.floor(width / factor), Math.floor(height / factor), { fit: 'fill', kernel: 'linear' });
    // The kernels ignore a 4th (alpha) channel; grey with alpha is rare, and cheaper to drop here than
    // with another libvips operation on every picture.
    const decoded = await decode(image);
    const { width: w, height: h } = decoded.info;
    const [src, channels] = decoded.info.channels === 2 ? [dropAlpha(decoded.data), 1] : [decoded.data, decoded.info.channels];
    await kernels.run({ src, width: w, height: h, channels, plan, params, out: data });
  } else {
    const decoded = await decode(image.removeAlpha().toColourspace('srgb').resize(plan.contentWidth, plan.contentHeight, { fit: 'fill', kernel: 'linear' }));
    normalizeInto(decoded.data, decoded.info.channels, data, plan, params);
  }
  return { data, dims: [1, 3, plan.tensorHeight, plan.tensorWidth], meta: { ...plan, originalWidth: width, originalHeight: height } };
}
