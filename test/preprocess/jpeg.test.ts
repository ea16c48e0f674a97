import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import sharp from 'sharp';
import type { JpegOptions } from 'sharp';
import { InvalidImageError } from '../../src/errors';
import { decodeJpegNative, nativeCapabilities } from '../../src/preprocess/native';
import { randomPixels } from '../fixtures/images';

const caps = nativeCapabilities();
// Whether this machine can link libjpeg, asked as binding.gyp asks at install.
const machineHasLibjpeg = execFileSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'scripts', 'has-libjpeg.js')]).toString() === '1';
const withLibjpeg = machineHasLibjpeg ? test : test.skip;

async function jpeg(width: number, height: number, channels: 1 | 3 = 3, options: JpegOptions = { quality: 95 }): Promise<Buffer> {
  const pixels = randomPixels(width, height, 3, 7);
  let img = sharp(Buffer.from(pixels), { raw: { width, height, channels: 3 } });
  if (channels === 1) img = img.greyscale();
  return img.jpeg(options).toBuffer();
}

/** Largest difference between two pixel buffers of one size. */
function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('JPEG decoding in the addon', () => {
  test('the addon decodes JPEGs itself exactly where the machine has libjpeg', () => {
    expect(caps?.jpeg).toBe(machineHasLibjpeg);
  });

  withLibjpeg('decodes as libvips does, colour and grey, baseline and progressive', async () => {
    for (const [channels, options] of [[3, { quality: 95 }], [1, { quality: 90 }], [3, { quality: 90, progressive: true }]] as const) {
      const body = await jpeg(97, 41, channels, options);
      const ours = decodeJpegNative(body, 1, 1e8)!;
      const theirs = await sharp(body).raw().toBuffer({ resolveWithObject: true });
      expect({ w: ours.width, h: ours.height, c: ours.channels }).toEqual({ w: 97, h: 41, c: theirs.info.channels });
      expect(maxDiff(ours.data, theirs.data)).toBeLessThanOrEqual(2);
    }
  });

  withLibjpeg('scaled decode gives 1/2, 1/4, 1/8 of the size (rounded up), close to the full decode shrunk', async () => {
    const body = await jpeg(640, 480);
    for (const denom of [2, 4, 8] as const) {
      const d = decodeJpegNative(body, denom, 1e8)!;
      expect([d.width, d.height]).toEqual([Math.ceil(640 / denom), Math.ceil(480 / denom)]);
      expect(d.data.length).toBe(d.width * d.height * 3);
    }
  });

  withLibjpeg('a truncated or corrupt JPEG is an invalid image, not a grey picture', async () => {
    const body = await jpeg(64, 64);
    expect(() => decodeJpegNative(body.subarray(0, body.length >> 1), 1, 1e8)).toThrow(InvalidImageError);
    const corrupt = Buffer.from(body);
    corrupt.fill(0x55, 200, 260);
    expect(() => decodeJpegNative(corrupt, 1, 1e8)).toThrow(InvalidImageError);
    expect(() => decodeJpegNative(Buffer.from([0xff, 0xd8, 0xff]), 1, 1e8)).toThrow(InvalidImageError);
  });

  withLibjpeg('CMYK is left to libvips; more pixels than allowed is refused before decoding', async () => {
    const cmyk = await sharp(Buffer.from(randomPixels(16, 16, 3)), { raw: { width: 16, height: 16, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
    expect(decodeJpegNative(cmyk, 1, 1e8)).toBeUndefined();
    expect(decodeJpegNative(await jpeg(100, 100), 1, 5000)).toBeUndefined();
  });

  withLibjpeg('a bad scale is an argument error', async () => {
    expect(() => decodeJpegNative(Buffer.from(''), 3 as 2, 1e8)).toThrow(/scale/);
  });
});
