// The direct PNG decoder against sharp (libvips) on files written here with every filter type and colour
// type, and the files it must leave to sharp.
import sharp from 'sharp';
import { crc32, deflateSync } from 'node:zlib';
import { decodePng, MAX_DIRECT_PNG_PIXELS } from '../../src/preprocess/png';
import { preprocessImage } from '../../src/preprocess/image';
import { selectImageKernels } from '../../src/preprocess/kernels';
import { imageInputSchema } from '../../src/models/model-config';
import { randomPixels } from '../fixtures/images';

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** An 8-bit PNG whose row y uses filter filters[y % filters.length], written the way the spec says. */
function encodePng(samples: Uint8Array, width: number, height: number, colourType: number, filters: number[], extra: Buffer[] = []): Buffer {
  const { signature, ihdr, idat, iend } = pngChunks(samples, width, height, colourType, filters);
  return Buffer.concat([signature, ihdr, ...extra, ...idat, iend]);
}

/** The chunks of such a PNG, for tests that put them in odd orders. */
function pngChunks(samples: Uint8Array, width: number, height: number, colourType: number, filters: number[]) {
  const bpp = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType]!;
  const stride = width * bpp;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = filters[y % filters.length];
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const x = samples[y * stride + i];
      const a = i >= bpp ? samples[y * stride + i - bpp] : 0;
      const b = y > 0 ? samples[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= bpp ? samples[(y - 1) * stride + i - bpp] : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f];
      raw[y * (stride + 1) + 1 + i] = (x - predictor) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, colourType, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const compressed = deflateSync(raw);
  // Two IDAT chunks, as encoders that stream write them.
  const half = compressed.length >> 1;
  return {
    signature, ihdr: chunk('IHDR', ihdr), idat: [chunk('IDAT', compressed.subarray(0, half)), chunk('IDAT', compressed.subarray(half))], iend: chunk('IEND', Buffer.alloc(0)),
  };
}

/** What the kernels see of decoded pixels: RGB (grey replicated, alpha ignored). */
function asRgb(data: Uint8Array, channels: number): Buffer {
  const pixels = data.length / channels;
  const rgb = Buffer.alloc(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = data[i * channels + (channels < 3 ? 0 : c)];
  }
  return rgb;
}

async function sharpRgb(file: Buffer): Promise<Buffer> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return asRgb(data, info.channels);
}

const FILTERS = [[0], [1], [2], [3], [4], [4, 3, 2, 1, 0]];
const COLOUR_TYPES: [number, string][] = [[0, 'grey'], [2, 'RGB'], [3, 'palette'], [4, 'grey+alpha'], [6, 'RGBA']];

describe('direct PNG decoding', () => {
  test.each(COLOUR_TYPES)('colour type %i (%s) decodes as sharp decodes it, under every filter', async (colourType) => {
    const [width, height] = [13, 7];
    const bpp = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType]!;
    const samples = randomPixels(width, height, bpp, 11 + colourType);
    const extra = colourType === 3 ? [chunk('PLTE', randomPixels(256, 1, 3, 5))] : [];
    for (const filters of FILTERS) {
      const file = encodePng(samples, width, height, colourType, filters, extra);
      const got = decodePng(file);
      expect(got).toBeDefined();
      expect({ filters, width: got!.width, height: got!.height, same: asRgb(got!.data, got!.channels).equals(await sharpRgb(file)) }).toEqual({ filters, width, height, same: true });
    }
  });

  test('decodes what sharp itself writes (adaptive filters, palettes with transparency)', async () => {
    const rgba = randomPixels(31, 17, 4, 3);
    for (const options of [{ adaptiveFiltering: true }, { palette: true }, { compressionLevel: 0 }]) {
      const file = await sharp(rgba, { raw: { width: 31, height: 17, channels: 4 } }).png(options).toBuffer();
      const got = decodePng(file)!;
      expect(asRgb(got.data, got.channels).equals(await sharpRgb(file))).toBe(true);
    }
  });

  test('leaves to sharp what it does not take: interlaced, 16-bit, large, broken or odd files', async () => {
    const pixels = randomPixels(20, 10, 3, 9);
    const good = encodePng(pixels, 20, 10, 2, [1]);
    expect(decodePng(good)).toBeDefined();
    expect(decodePng(await sharp(pixels, { raw: { width: 20, height: 10, channels: 3 } }).png({ progressive: true }).toBuffer())).toBeUndefined();
    expect(decodePng(await sharp(pixels, { raw: { width: 20, height: 10, channels: 3 } }).toColourspace('rgb16').png().toBuffer())).toBeUndefined();
    const side = Math.ceil(Math.sqrt(MAX_DIRECT_PNG_PIXELS)) + 1;
    expect(decodePng(encodePng(new Uint8Array(side * side), side, side, 0, [0]))).toBeUndefined();
    // A flipped bit in a CRC (the data itself intact): libpng refuses the file, and so does this decoder.
    const badCrc = Buffer.from(good);
    const idatAt = good.indexOf('IDAT') - 4;
    badCrc[idatAt + 8 + good.readUInt32BE(idatAt)] ^= 1;
    expect(decodePng(badCrc)).toBeUndefined();
    expect(decodePng(good.subarray(0, good.length - 20))).toBeUndefined();
    // An unknown filter type, and a palette index past the palette's end.
    const rows = Buffer.alloc(3 * 2);
    expect(decodePng(encodePng(new Uint8Array(2 * 3), 2, 3, 0, [5 as number]))).toBeUndefined();
    expect(decodePng(encodePng(rows.fill(9), 2, 3, 3, [0], [chunk('PLTE', Buffer.alloc(3 * 4))]))).toBeUndefined();
    expect(decodePng(Buffer.from('not a png at all, not even close to one.......'))).toBeUndefined();
    // Chunks out of order: IDATs split by another chunk, a palette after the data or in a grey picture.
    const parts = pngChunks(pixels, 20, 10, 2, [1]);
    const text = chunk('tEXt', Buffer.from('Comment\0hello'));
    expect(decodePng(Buffer.concat([parts.signature, parts.ihdr, text, ...parts.idat, parts.iend]))).toBeDefined();
    expect(decodePng(Buffer.concat([parts.signature, parts.ihdr, parts.idat[0], text, parts.idat[1], parts.iend]))).toBeUndefined();
    const plte = chunk('PLTE', Buffer.alloc(9));
    expect(decodePng(Buffer.concat([parts.signature, parts.ihdr, ...parts.idat, plte, parts.iend]))).toBeUndefined();
    const grey = pngChunks(new Uint8Array(20 * 10), 20, 10, 0, [0]);
    expect(decodePng(Buffer.concat([grey.signature, grey.ihdr, ...grey.idat, grey.iend]))).toBeDefined();
    expect(decodePng(Buffer.concat([grey.signature, grey.ihdr, plte, ...grey.idat, grey.iend]))).toBeUndefined();
    expect(decodePng(Buffer.concat([parts.signature, parts.ihdr, parts.ihdr, ...parts.idat, parts.iend]))).toBeUndefined();
  });

  test('leaves pictures with a colour profile to sharp, which converts them to sRGB', async () => {
    const pixels = randomPixels(20, 10, 3, 9);
    const tagged = await sharp(pixels, { raw: { width: 20, height: 10, channels: 3 } }).withIccProfile('p3').png().toBuffer();
    expect(tagged.includes(Buffer.from('iCCP'))).toBe(true);
    expect(decodePng(tagged)).toBeUndefined();
  });

  test('a text line goes through the direct decoder to the same tensor as through sharp', async () => {
    const { kernels } = selectImageKernels('native');
    const cfg = imageInputSchema.parse({ resize: 'height', height: 48, width: 192, maxWidth: 192, channelOrder: 'bgr', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    const input = { name: 'x', type: 'float32' as const, shape: ['N', 3, 48, 'W'] };
    const pixels = randomPixels(150, 40, 3, 21);
    const file = encodePng(pixels, 150, 40, 2, [4, 1, 2]);
    const direct = await preprocessImage(file, cfg, input, { maxPixels: 1e8 }, undefined, kernels);
    // The same picture as a JPEG-free, sharp-only route: an interlaced PNG is never decoded directly.
    const interlaced = await sharp(pixels, { raw: { width: 150, height: 40, channels: 3 } }).png({ progressive: true }).toBuffer();
    expect(decodePng(interlaced)).toBeUndefined();
    const viaSharp = await preprocessImage(interlaced, cfg, input, { maxPixels: 1e8 }, undefined, kernels);
    expect(direct.dims).toEqual(viaSharp.dims);
    expect(Array.from(direct.data)).toEqual(Array.from(viaSharp.data));
  });
});
