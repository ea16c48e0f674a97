import { normalizeInto, NormalizeParams } from '../../src/preprocess/normalize';
import { ResizePlan } from '../../src/preprocess/resize-plan';
import { randomPixels } from '../fixtures/images';

/** Float64 reference, element by element, written as plainly as possible. */
function reference(src: Uint8Array, channels: number, plan: ResizePlan, p: NormalizeParams): Float64Array {
  const { tensorWidth: tw, tensorHeight: th } = plan;
  const out = new Float64Array(3 * tw * th);
  for (let c = 0; c < 3; c++) {
    const sc = p.bgr ? 2 - c : c;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const cx = x - plan.padLeft;
        const cy = y - plan.padTop;
        const inside = cx >= 0 && cy >= 0 && cx < plan.contentWidth && cy < plan.contentHeight;
        const pixel = inside ? src[(cy * plan.contentWidth + cx) * channels + sc] : p.padValue;
        out[c * tw * th + y * tw + x] = (pixel * p.scale - p.mean[c]) / p.std[c];
      }
    }
  }
  return out;
}

const params: NormalizeParams = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false, padValue: 114 };

const cases: [string, number, number, number, number, number, number, number][] = [
  // name, content w, h, tensor w, h, pad left, top, channels
  ['1×1', 1, 1, 1, 1, 0, 0, 3],
  ['1×4097', 1, 4097, 1, 4097, 0, 0, 3],
  ['4097×1', 4097, 1, 4097, 1, 0, 0, 3],
  ['3×5 RGBA', 3, 5, 3, 5, 0, 0, 4],
  ['odd letterbox', 17, 9, 17, 23, 0, 7, 3],
  ['right padded', 33, 48, 320, 48, 0, 0, 3],
  ['centred both ways', 5, 3, 11, 13, 3, 5, 3],
];

describe('normalizeInto', () => {
  test.each(cases)('%s matches the float64 reference and writes every element', (_name, cw, ch, tw, th, padLeft, padTop, channels) => {
    const plan: ResizePlan = { contentWidth: cw, contentHeight: ch, tensorWidth: tw, tensorHeight: th, padLeft, padTop, scaleX: 1, scaleY: 1 };
    const src = randomPixels(cw, ch, channels, cw * 31 + ch);
    for (const bgr of [false, true]) {
      const p = { ...params, bgr };
      const out = new Float32Array(3 * tw * th).fill(Number.NaN);
      normalizeInto(src, channels, out, plan, p);
      const want = reference(src, channels, plan, p);
      let maxError = 0;
      for (let i = 0; i < out.length; i++) maxError = Math.max(maxError, Math.abs(out[i] - want[i]));
      expect(out.some(Number.isNaN)).toBe(false);
      expect(maxError).toBeLessThanOrEqual(1e-4);
    }
  });
});
