// HWC uint8 pixels → CHW float32, scaled and normalized, written into a buffer the caller owns.
// This is the seam where the native kernels plug in; this TypeScript loop is the reference path.
import type { ResizePlan } from './resize-plan';

export interface NormalizeParams {
  scale: number;
  /** mean and std are in the model's channel order (after any RGB→BGR swap), as model cards give them. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Emit channels as B, G, R instead of R, G, B. */
  bgr: boolean;
  /** Pixel value (0-255) for the padded area. */
  padValue: number;
}

/**
 * `src` holds contentWidth × contentHeight pixels of `channels` (3 or 4; alpha ignored).
 * `dst` holds 3 × tensorHeight × tensorWidth floats; every element is written.
 */
export function normalizeInto(src: Uint8Array, channels: number, dst: Float32Array, plan: ResizePlan, p: NormalizeParams): void {
  const { contentWidth: cw, contentHeight: ch, tensorWidth: tw, tensorHeight: th, padLeft, padTop } = plan;
  const plane = tw * th;
  const padded = cw !== tw || ch !== th;
  for (let c = 0; c < 3; c++) {
    const srcChannel = p.bgr ? 2 - c : c;
    // Fused affine: (px * scale - mean) / std = px * a + b.
    const a = p.scale / p.std[c];
    const b = -p.mean[c] / p.std[c];
    const base = c * plane;
    if (padded) dst.fill(p.padValue * a + b, base, base + plane);
    for (let y = 0; y < ch; y++) {
      let si = y * cw * channels + srcChannel;
      let di = base + (y + padTop) * tw + padLeft;
      const end = di + cw;
      while (di < end) {
        dst[di++] = src[si] * a + b;
        si += channels;
      }
    }
  }
}
