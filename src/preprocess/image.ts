// Request image → model input tensor: check the header, decode and resize with sharp (libvips
// shrink-on-load), then normalize into CHW float32.
import sharp from 'sharp';
import { ImageTooLargeError, InvalidImageError } from '../errors';
import type { ImageInputConfig } from '../models/model-config';
import { normalizeInto } from './normalize';
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

const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

/** Fixed H and W of an NCHW input, when the model declares them. */
export function fixedImageDims(input: TensorInfo | undefined): FixedDims {
  if (!input || input.shape.length !== 4) return {};
  const [, , h, w] = input.shape;
  return { height: typeof h === 'number' && h > 0 ? h : undefined, width: typeof w === 'number' && w > 0 ? w : undefined };
}

async function readHeader(body: Uint8Array, limits: ImageLimits): Promise<{ width: number; height: number }> {
  const meta = await sharp(body, { limitInputPixels: false })
    .metadata()
    .catch((err: Error) => {
      throw new InvalidImageError(`request body is not a decodable image: ${err.message}`);
    });
  if (!meta.format || !SUPPORTED_FORMATS.has(meta.format) || !meta.width || !meta.height) {
    throw new InvalidImageError(`request body is not a supported image (format: ${meta.format ?? 'unknown'})`);
  }
  if (meta.width * meta.height > limits.maxPixels) {
    throw new ImageTooLargeError(`image is ${meta.width}×${meta.height} = ${meta.width * meta.height} pixels, over the limit of ${limits.maxPixels}`);
  }
  return { width: meta.width, height: meta.height };
}

export async function preprocessImage(
  body: Uint8Array,
  cfg: ImageInputConfig,
  input: TensorInfo | undefined,
  limits: ImageLimits,
  reuse?: Float32Array,
): Promise<ImageTensor> {
  const { width, height } = await readHeader(body, limits);
  const plan = planResize(width, height, cfg, fixedImageDims(input));
  let pixels: Buffer;
  let channels: number;
  try {
    const result = await sharp(body, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(plan.contentWidth, plan.contentHeight, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    pixels = result.data;
    channels = result.info.channels;
  } catch (err) {
    throw new InvalidImageError(`image could not be decoded: ${(err as Error).message}`);
  }
  const length = 3 * plan.tensorWidth * plan.tensorHeight;
  const data = reuse && reuse.length === length ? reuse : new Float32Array(length);
  normalizeInto(pixels, channels, data, plan, {
    scale: cfg.scale, mean: cfg.mean, std: cfg.std, bgr: cfg.channelOrder === 'bgr', padValue: cfg.padValue,
  });
  return { data, dims: [1, 3, plan.tensorHeight, plan.tensorWidth], meta: { ...plan, originalWidth: width, originalHeight: height } };
}
