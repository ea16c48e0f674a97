// The request bodies of the PP-OCR benchmarks: the post's stress scenario, JPEG for all three models.
import sharp from 'sharp';

export type ModelKey = 'det' | 'rec' | 'cls';

export interface Workload {
  key: ModelKey;
  /** Folder of the model in the built-in store, and its name in Quiver. */
  folder: string;
  contentType: string;
  body: Buffer;
  description: string;
}

type Line = { t: string; x: number; y: number; s: number };

function text(w: number, h: number, lines: Line[], format: 'jpeg' | 'png'): Promise<Buffer> {
  const body = lines.map((l) => `<text x="${l.x}" y="${l.y}" font-family="DejaVu Sans, sans-serif" font-size="${l.s}" fill="black">${l.t}</text>`).join('');
  const img = sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="white"/>${body}</svg>`));
  return (format === 'jpeg' ? img.jpeg({ quality: 90 }) : img.png()).toBuffer();
}

export async function workloads(format: 'jpeg' | 'png' = 'jpeg'): Promise<Record<ModelKey, Workload>> {
  const type = `image/${format}`;
  const name = format.toUpperCase();
  return {
    det: {
      key: 'det', folder: 'ocr-det', contentType: 'image/jpeg', description: 'text detector, 1280×960 JPEG page',
      body: await text(1280, 960, [{ t: 'Quiver benchmark page', x: 80, y: 200, s: 64 }, { t: 'three models at once', x: 80, y: 500, s: 48 }, { t: 'line three 12345', x: 300, y: 800, s: 40 }], 'jpeg'),
    },
    rec: { key: 'rec', folder: 'ocr-rec', contentType: type, description: `recogniser, 320×48 ${name} line`, body: await text(320, 48, [{ t: 'Hello Quiver 2026', x: 6, y: 35, s: 28 }], format) },
    cls: { key: 'cls', folder: 'ocr-cls', contentType: type, description: `orientation classifier, 192×48 ${name} crop`, body: await text(192, 48, [{ t: 'Orientation', x: 6, y: 34, s: 26 }], format) },
  };
}
