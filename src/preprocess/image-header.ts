// Reads a PNG's or JPEG's size and colour layout from its header bytes, so the common formats need no
// extra libvips call before decoding (sharp's metadata() costs about as much as a small inference).
// Anything it cannot read falls back to sharp, which also gives the clear error.

export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
  /** Channels after decoding: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha (or CMYK for JPEG). */
  channels: number;
  space: 'srgb' | 'b-w' | 'cmyk';
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

function readPng(b: Uint8Array): ImageHeader | undefined {
  if (b.length < 33 || PNG_SIGNATURE.some((v, i) => b[i] !== v)) return undefined;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (view.getUint32(12) !== 0x49484452) return undefined; // IHDR
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const colourType = b[25];
  let channels = PNG_CHANNELS[colourType];
  if (channels === undefined || width === 0 || height === 0) return undefined;
  // A palette with transparency (tRNS) decodes with alpha; sharp will say how many channels it made.
  if (colourType === 3) channels = 3;
  return { format: 'png', width, height, channels, space: channels <= 2 ? 'b-w' : 'srgb' };
}

function readJpeg(b: Uint8Array): ImageHeader | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = (b[i + 2] << 8) | b[i + 3];
    // Start-of-frame markers (not DHT 0xC4, JPG 0xC8, DAC 0xCC) carry the size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = (b[i + 5] << 8) | b[i + 6];
      const width = (b[i + 7] << 8) | b[i + 8];
      const components = b[i + 9];
      if (!width || !height || ![1, 3, 4].includes(components)) return undefined;
      return { format: 'jpeg', width, height, channels: components, space: components === 1 ? 'b-w' : components === 4 ? 'cmyk' : 'srgb' };
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    i += 2 + length;
  }
  return undefined;
}

export function readImageHeader(body: Uint8Array): ImageHeader | undefined {
  return readPng(body) ?? readJpeg(body);
}
