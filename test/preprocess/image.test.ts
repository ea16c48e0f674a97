import { preprocessImage, shrinkOnLoadFactor } from '../../src/preprocess/image';
import { selectImageKernels } from '../../src/preprocess/kernels';
import { imageInputSchema } from '../../src/models/model-config';
import { ImageTooLargeError, InvalidImageError } from '../../src/errors';
import { liarPng, png, randomPixels, solidJpeg } from '../fixtures/images';

const input = (h: number | string, w: number | string) => ({ name: 'x', type: 'float32', shape: [1, 3, h, w] });
const LIMITS = { maxPixels: 10_000_000 };

describe('preprocessImage', () => {
  test('a PNG at the model size arrives as exactly its normalized pixels, in CHW', async () => {
    const [w, h] = [7, 5];
    const pixels = randomPixels(w, h);
    const cfg = imageInputSchema.parse({ resize: 'stretch', mean: [0.5, 0.25, 0.125], std: [0.5, 0.5, 0.25] });
    const tensor = await preprocessImage(await png(pixels, w, h), cfg, input(h, w), LIMITS);
    expect(tensor.dims).toEqual([1, 3, h, w]);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < w * h; i++) {
        const want = (pixels[i * 3 + c] / 255 - cfg.mean[c]) / cfg.std[c];
        expect(Math.abs(tensor.data[c * w * h + i] - want)).toBeLessThan(1e-5);
      }
    }
  });

  test('BGR order swaps the planes', async () => {
    const pixels = randomPixels(4, 4, 3, 9);
    const image = await png(pixels, 4, 4);
    const rgb = await preprocessImage(image, imageInputSchema.parse({ resize: 'stretch' }), input(4, 4), LIMITS);
    const bgr = await preprocessImage(image, imageInputSchema.parse({ resize: 'stretch', channelOrder: 'bgr' }), input(4, 4), LIMITS);
    expect(Array.from(bgr.data.subarray(0, 16))).toEqual(Array.from(rgb.data.subarray(32, 48)));
  });

  test('letterbox pads with the pad value and reports where the picture went', async () => {
    const white = await solidJpeg(200, 100);
    const cfg = imageInputSchema.parse({ resize: 'letterbox', width: 64, height: 64, padValue: 0 });
    const tensor = await preprocessImage(white, cfg, input('H', 'W'), LIMITS);
    expect(tensor.meta).toMatchObject({ originalWidth: 200, originalHeight: 100, contentWidth: 64, contentHeight: 32, padTop: 16 });
    expect(tensor.data[0]).toBe(0); // top padding row
    expect(tensor.data[32 * 64 + 32]).toBeGreaterThan(0.95); // middle of the picture is white
  });

  test('refuses undecodable bodies, and oversized images before decoding them', async () => {
    const cfg = imageInputSchema.parse({ resize: 'stretch', width: 8, height: 8 });
    await expect(preprocessImage(Buffer.from('definitely not an image'), cfg, input(8, 8), LIMITS)).rejects.toBeInstanceOf(InvalidImageError);
    await expect(preprocessImage(liarPng(60000, 60000), cfg, input(8, 8), LIMITS)).rejects.toBeInstanceOf(ImageTooLargeError);
    const whole = await solidJpeg(64, 64);
    await expect(preprocessImage(whole.subarray(0, 200), cfg, input(8, 8), LIMITS)).rejects.toBeInstanceOf(InvalidImageError);
  });
});

describe('preprocessImage with the native kernels', () => {
  const native = selectImageKernels('native');

  test('agrees with the TypeScript path where no resizing happens', async () => {
    const pixels = randomPixels(13, 9, 3, 5);
    const cfg = imageInputSchema.parse({ resize: 'letterbox', width: 13, height: 15, mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.4], channelOrder: 'bgr', padValue: 50 });
    const image = await png(pixels, 13, 9);
    const viaTs = await preprocessImage(image, cfg, input('H', 'W'), LIMITS);
    const viaNative = await preprocessImage(image, cfg, input('H', 'W'), LIMITS, undefined, native.kernels);
    expect(native.description).toMatch(/^native-cpu/);
    expect(viaNative.meta).toEqual(viaTs.meta);
    let worst = 0;
    viaTs.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - viaNative.data[i]))));
    expect(worst).toBeLessThan(1e-5);
  });

  test('refuses the same bad images', async () => {
    const cfg = imageInputSchema.parse({ resize: 'stretch', width: 8, height: 8 });
    await expect(preprocessImage(liarPng(60000, 60000), cfg, input(8, 8), LIMITS, undefined, native.kernels)).rejects.toBeInstanceOf(ImageTooLargeError);
    await expect(preprocessImage(Buffer.from('nope'), cfg, input(8, 8), LIMITS, undefined, native.kernels)).rejects.toBeInstanceOf(InvalidImageError);
  });

  test('shrink-on-load only while the decoded picture stays at least the content size', () => {
    const plan = (w: number, h: number) => ({ contentWidth: w, contentHeight: h, tensorWidth: w, tensorHeight: h, padLeft: 0, padTop: 0, scaleX: 1, scaleY: 1 });
    expect(shrinkOnLoadFactor(1280, 960, plan(640, 640))).toBe(1);
    expect(shrinkOnLoadFactor(4000, 3000, plan(640, 640))).toBe(4);
    expect(shrinkOnLoadFactor(8000, 8000, plan(224, 224))).toBe(8);
    expect(shrinkOnLoadFactor(100, 100, plan(50, 50))).toBe(2);
  });
});

describe('readImageHeader', () => {
  test('reads PNG and JPEG sizes and layouts without decoding', async () => {
    const { readImageHeader } = await import('../../src/preprocess/image-header');
    expect(readImageHeader(await png(randomPixels(7, 5), 7, 5))).toEqual({ format: 'png', width: 7, height: 5, channels: 3, space: 'srgb' });
    expect(readImageHeader(await png(randomPixels(3, 2, 4), 3, 2, 4))).toMatchObject({ width: 3, height: 2, channels: 4 });
    expect(readImageHeader(await solidJpeg(33, 17))).toEqual({ format: 'jpeg', width: 33, height: 17, channels: 3, space: 'srgb' });
    expect(readImageHeader(liarPng(60000, 60000))).toMatchObject({ width: 60000, height: 60000 });
    expect(readImageHeader(Buffer.from('GIF89a....'))).toBeUndefined();
    expect(readImageHeader(Buffer.from([0xff, 0xd8, 0xff]))).toBeUndefined();
  });

  test('grey PNGs with alpha and palette PNGs still preprocess', async () => {
    const sharpLib = (await import('sharp')).default;
    const cfg = imageInputSchema.parse({ resize: 'stretch', width: 4, height: 4 });
    const greyAlpha = await sharpLib(Buffer.alloc(16 * 2, 200), { raw: { width: 4, height: 4, channels: 2 } }).png().toBuffer();
    const palette = await sharpLib(randomPixels(4, 4, 4), { raw: { width: 4, height: 4, channels: 4 } }).png({ palette: true }).toBuffer();
    const kernels = selectImageKernels('native').kernels;
    for (const image of [greyAlpha, palette]) {
      for (const k of [undefined, kernels]) {
        const t = await preprocessImage(image, cfg, input(4, 4), LIMITS, undefined, k);
        expect(t.data.every(Number.isFinite)).toBe(true);
      }
    }
  });
});
