// What the fuzzer feeds: each parser that sees bytes from the network or from an archive, its seed
// inputs (valid ones, made in code), and the only failures it may answer with. Any other exception, or
// an archive that writes outside its folder, is a crash.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import {
  BadRequestError, ImageTooLargeError, InvalidImageError, InvalidInputError, InvalidModelArchiveError, QuiverError, UnsupportedMediaTypeError,
} from '../../src/errors';
import { requestPayloads } from '../../src/http/request-body';
import { extractArchive } from '../../src/models/archive';
import { readImageHeader } from '../../src/preprocess/image-header';
import { preprocessImage } from '../../src/preprocess/image';
import { decodePng } from '../../src/preprocess/png';
import { parseTensorRequest } from '../../src/preprocess/tensor-request';
import { imageInputSchema } from '../../src/models/model-config';
import type { TensorInfo } from '../../src/preprocess/tensor-types';
import { tarGz, zip } from '../fixtures/archives';

export interface FuzzTarget {
  name: string;
  seeds: () => Promise<Buffer[]>;
  /** Repairs what a mutation breaks that the parser checks first (PNG chunk CRCs), so it gets further. */
  repair?: (input: Buffer) => Buffer;
  /** Resolves when the input was handled acceptably; throws (or rejects) on a crash. */
  run: (input: Buffer) => void | Promise<void>;
}

/** An exception the target may throw for bad input; anything else is a crash. */
function allowOnly(err: unknown, ...kinds: (abstract new (...args: never[]) => QuiverError)[]): void {
  if (kinds.some((k) => err instanceof k)) return;
  throw err;
}

function tryAllowing(fn: () => unknown, ...kinds: (abstract new (...args: never[]) => QuiverError)[]): void {
  try {
    fn();
  } catch (err) {
    allowOnly(err, ...kinds);
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Recomputes every chunk's CRC, so a mutated PNG reaches the decoder's later checks. */
export function repairPngCrcs(input: Buffer): Buffer {
  const out = Buffer.from(input);
  if (out.length < 8 || !out.subarray(0, 8).equals(PNG_SIGNATURE)) return out;
  for (let offset = 8; offset + 12 <= out.length; ) {
    const end = offset + 12 + out.readUInt32BE(offset);
    if (end > out.length || end < offset) break;
    out.writeUInt32BE(zlib.crc32(out.subarray(offset + 4, end - 4)) >>> 0, end - 4);
    offset = end;
  }
  return out;
}

async function imageSeeds(): Promise<Buffer[]> {
  const pixels = Buffer.alloc(16 * 8 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
  const raw = { raw: { width: 16, height: 8, channels: 3 as const } };
  return Promise.all([
    sharp(pixels, raw).png().toBuffer(),
    sharp(pixels, raw).png({ palette: true }).toBuffer(),
    sharp(pixels, raw).greyscale().png().toBuffer(),
    sharp(pixels, raw).ensureAlpha().png().toBuffer(),
    sharp(pixels, raw).jpeg().toBuffer(),
  ]);
}

const TENSOR_INPUTS: TensorInfo[] = [
  { name: 'x', type: 'float32', shape: ['N', 3] },
  { name: 'ids', type: 'int64', shape: [1, 'T'] },
  { name: 'mask', type: 'bool', shape: ['N'] },
];

const IMAGE_CONFIG = imageInputSchema.parse({ resize: 'height', height: 8, maxWidth: 64, multiple: 4 });
const IMAGE_INPUT: TensorInfo = { name: 'x', type: 'float32', shape: [1, 3, 8, 'W'] };

const BOUNDARY = 'fuzzboundary';

export const TARGETS: FuzzTarget[] = [
  {
    name: 'image-header',
    seeds: imageSeeds,
    run: (input) => {
      // Never throws: it reads what it can and leaves the rest to sharp.
      const header = readImageHeader(input);
      if (header && (!(header.width > 0) || !(header.height > 0))) throw new Error(`image header with size ${header.width}×${header.height}`);
    },
  },
  {
    name: 'png',
    seeds: async () => (await imageSeeds()).filter((b) => b.subarray(0, 8).equals(PNG_SIGNATURE)),
    repair: repairPngCrcs,
    run: (input) => {
      const decoded = decodePng(input);
      if (decoded && decoded.data.length !== decoded.width * decoded.height * decoded.channels) {
        throw new Error(`decoded ${decoded.data.length} bytes for ${decoded.width}×${decoded.height}×${decoded.channels}`);
      }
    },
  },
  {
    name: 'image-pipeline',
    seeds: imageSeeds,
    repair: repairPngCrcs,
    run: async (input) => {
      try {
        await preprocessImage(input, IMAGE_CONFIG, IMAGE_INPUT, { maxPixels: 1 << 20 });
      } catch (err) {
        allowOnly(err, InvalidImageError, ImageTooLargeError, UnsupportedMediaTypeError, InvalidInputError);
      }
    },
  },
  {
    name: 'tensor-json',
    seeds: async () => [
      { x: [[1, 2, 3]], ids: [[1, 2]], mask: [true] },
      { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [7] }, { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] }] },
      { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [[1.5, -2e10, 0]] }, { name: 'ids', shape: [1, 2], datatype: 'INT64', data: [[9007199254740991, -3]] }, { name: 'mask', shape: [1], datatype: 'BOOL', data: [0] }] },
    ].map((b) => Buffer.from(JSON.stringify(b))),
    run: (input) => tryAllowing(() => parseTensorRequest(input.toString('utf8'), TENSOR_INPUTS, 'fuzz'), InvalidInputError),
  },
  {
    name: 'multipart',
    seeds: async () => [
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0abc\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="body"\r\n\r\n{"x":[1]}\r\n--${BOUNDARY}--\r\n`, 'latin1'),
      Buffer.from(`preamble\r\n--${BOUNDARY} \r\nContent-Disposition: form-data; name=data\r\n\r\n\r\n--${BOUNDARY}--`, 'latin1'),
    ],
    run: (input) => {
      tryAllowing(() => requestPayloads(input, `multipart/form-data; boundary=${BOUNDARY}`), BadRequestError);
      tryAllowing(() => requestPayloads(input, 'application/x-www-form-urlencoded'), BadRequestError);
      tryAllowing(() => requestPayloads(input, undefined), BadRequestError);
    },
  },
  {
    name: 'archive',
    seeds: async () => [
      tarGz([{ name: 'MAR-INF/', type: '5' }, { name: 'MAR-INF/MANIFEST.json', content: '{"model":{}}' }, { name: 'model.onnx', content: 'abc' }]),
      zlib.gunzipSync(tarGz([{ name: 'a/b/model.onnx', content: Buffer.alloc(700, 1) }])),
      zip([{ name: 'MAR-INF/' }, { name: 'MAR-INF/MANIFEST.json', content: '{}' }, { name: 'model.onnx', content: 'xyz', deflate: true }]),
    ],
    run: async (input) => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-fuzz-'));
      try {
        const file = path.join(root, 'input');
        fs.writeFileSync(file, input);
        const dest = path.join(root, 'sandbox', 'out');
        fs.mkdirSync(path.dirname(dest));
        try {
          await extractArchive(file, dest, { maxBytes: 1 << 20, maxEntries: 64 });
        } catch (err) {
          allowOnly(err, InvalidModelArchiveError);
          if (fs.readdirSync(path.dirname(dest)).length !== 0) throw new Error('a refused archive left files behind');
        }
        const beside = fs.readdirSync(root).filter((n) => n !== 'input' && n !== 'sandbox');
        if (beside.length > 0) throw new Error(`the archive wrote outside its folder: ${beside.join(', ')}`);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  },
];
