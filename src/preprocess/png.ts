// A direct decoder for the common PNG: 8 bits per sample, not interlaced, grey, grey+alpha, RGB, RGBA or
// palette. It costs a zlib inflate and one pass of unfiltering, where a libvips call costs about 0.5 ms
// of set-up even for a 2 KB text line. Anything else, and anything it finds wrong, it leaves to sharp
// (undefined), which decodes the rest and gives the error for a broken file.
import * as zlib from 'node:zlib';

export interface DecodedPixels {
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 grey, 3 RGB or 4 RGBA (grey+alpha comes back as grey: the kernels ignore alpha). */
  channels: number;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IHDR = 0x49484452;
const PLTE = 0x504c5445;
const IDAT = 0x49444154;
const IEND = 0x49454e44;
const ICCP = 0x69434350;
const CICP = 0x63494350;
// Far more than any encoder writes; a body of empty chunks should not cost a CRC each without end.
const MAX_CHUNKS = 4096;
// Samples per pixel of each colour type, as stored.
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Bigger pictures go through libvips: measured here, a 192×48 line decodes in 0.06 ms directly against
 * 0.45 ms through sharp, and the two are even by 640×480, where the unfilter's work outweighs the set-up.
 */
export const MAX_DIRECT_PNG_PIXELS = 1 << 18;

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes the per-row filters of `raw` (filter byte + stride bytes per row) into `out`; false if a filter type is unknown. */
function unfilter(raw: Uint8Array, out: Uint8Array, height: number, stride: number, bpp: number): boolean {
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const up = row - stride;
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let i = 0; i < stride; i++) out[row + i] = (raw[src + i] + (i >= bpp ? out[row + i - bpp] : 0)) & 0xff;
        break;
      case 2:
        if (y === 0) out.set(raw.subarray(src, src + stride), row);
        else for (let i = 0; i < stride; i++) out[row + i] = (raw[src + i] + out[up + i]) & 0xff;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? out[row + i - bpp] : 0;
          const above = y > 0 ? out[up + i] : 0;
          out[row + i] = (raw[src + i] + ((left + above) >> 1)) & 0xff;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? out[row + i - bpp] : 0;
          const above = y > 0 ? out[up + i] : 0;
          const corner = y > 0 && i >= bpp ? out[up + i - bpp] : 0;
          out[row + i] = (raw[src + i] + paeth(left, above, corner)) & 0xff;
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

function withoutAlpha(greyAlpha: Uint8Array): Uint8Array {
  const grey = new Uint8Array(greyAlpha.length / 2);
  for (let i = 0; i < grey.length; i++) grey[i] = greyAlpha[2 * i];
  return grey;
}

function expandPalette(indices: Uint8Array, palette: Uint8Array): Uint8Array | undefined {
  const rgb = new Uint8Array(indices.length * 3);
  const entries = palette.length / 3;
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (k >= entries) return undefined;
    rgb[3 * i] = palette[3 * k];
    rgb[3 * i + 1] = palette[3 * k + 1];
    rgb[3 * i + 2] = palette[3 * k + 2];
  }
  return rgb;
}

/** The pixels of a PNG this decoder takes, or undefined for sharp to decode (or refuse). */
export function decodePng(body: Uint8Array): DecodedPixels | undefined {
  if (body.length < 45 || SIGNATURE.some((v, i) => body[i] !== v)) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(8) !== 13 || view.getUint32(12) !== IHDR) return undefined;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const [depth, colourType, compression, filterMethod, interlace] = body.subarray(24, 29);
  const samples = SAMPLES[colourType];
  if (!samples || depth !== 8 || compression !== 0 || filterMethod !== 0 || interlace !== 0) return undefined;
  if (width === 0 || height === 0 || width * height > MAX_DIRECT_PNG_PIXELS) return undefined;

  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatEnded = false;
  let chunks = 0;
  for (let offset = 8; ; ) {
    if (offset + 12 > body.length || ++chunks > MAX_CHUNKS) return undefined;
    const length = view.getUint32(offset);
    const type = view.getUint32(offset + 4);
    const end = offset + 12 + length;
    if (end > body.length) return undefined;
    const critical = (body[offset + 4] & 0x20) === 0;
    // Critical chunks must be intact, as libpng and libspng insist.
    if (critical && zlib.crc32(body.subarray(offset + 4, end - 4)) !== view.getUint32(end - 4)) return undefined;
    const data = body.subarray(offset + 8, end - 4);
    if (type === IEND) break;
    // Anything out of order, or a colour profile (which sharp applies), is sharp's to judge.
    if (type === IHDR && offset !== 8) return undefined;
    if (type === ICCP || type === CICP) return undefined;
    if (type === IDAT) {
      if (idatEnded) return undefined;
      idat.push(data);
    } else {
      if (idat.length > 0) idatEnded = true;
      if (type === PLTE) {
        if (palette || idat.length > 0 || colourType === 0 || colourType === 4 || data.length % 3 !== 0 || data.length > 768) return undefined;
        palette = data;
      } else if (critical && type !== IHDR) {
        return undefined;
      }
    }
    offset = end;
  }
  if (idat.length === 0 || (colourType === 3 && !palette)) return undefined;

  const stride = width * samples;
  const expected = height * (stride + 1);
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: expected });
  } catch {
    return undefined;
  }
  if (raw.length !== expected) return undefined;
  const pixels = new Uint8Array(height * stride);
  if (!unfilter(raw, pixels, height, stride, samples)) return undefined;
  if (colourType === 3) {
    const rgb = expandPalette(pixels, palette!);
    return rgb && { data: rgb, width, height, channels: 3 };
  }
  if (colourType === 4) return { data: withoutAlpha(pixels), width, height, channels: 1 };
  return { data: pixels, width, height, channels: samples };
}
