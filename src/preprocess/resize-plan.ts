// Where a picture lands in the model's input: a pure function of the picture's size, the model
// config and the model's fixed dimensions. Detectors need the scale and offsets to map boxes back.
import { InvalidInputError } from '../errors';
import type { ImageInputConfig } from '../models/model-config';

export interface ResizePlan {
  /** Size the picture is resized to. */
  contentWidth: number;
  contentHeight: number;
  /** Size of the tensor; larger than the content when padded. */
  tensorWidth: number;
  tensorHeight: number;
  padLeft: number;
  padTop: number;
  /** Content pixels per source pixel. */
  scaleX: number;
  scaleY: number;
}

export interface FixedDims {
  width?: number;
  height?: number;
}

const roundTo = (value: number, multiple: number): number => Math.max(multiple, Math.round(value / multiple) * multiple);

function requireSize(cfg: ImageInputConfig, fixed: FixedDims): { width: number; height: number } {
  const width = cfg.width ?? fixed.width;
  const height = cfg.height ?? fixed.height;
  if (width === undefined || height === undefined) {
    throw new InvalidInputError(`image resize "${cfg.resize}" needs a width and height in the model config or fixed in the model`);
  }
  return { width, height };
}

export function planResize(srcWidth: number, srcHeight: number, cfg: ImageInputConfig, fixed: FixedDims = {}): ResizePlan {
  const plan = (cw: number, ch: number, tw = cw, th = ch, padLeft = 0, padTop = 0): ResizePlan => ({
    contentWidth: cw, contentHeight: ch, tensorWidth: tw, tensorHeight: th, padLeft, padTop,
    scaleX: cw / srcWidth, scaleY: ch / srcHeight,
  });
  switch (cfg.resize) {
    case 'stretch': {
      const { width, height } = requireSize(cfg, fixed);
      return plan(width, height);
    }
    case 'letterbox': {
      const { width, height } = requireSize(cfg, fixed);
      const scale = Math.min(width / srcWidth, height / srcHeight);
      const cw = Math.max(1, Math.min(width, Math.round(srcWidth * scale)));
      const ch = Math.max(1, Math.min(height, Math.round(srcHeight * scale)));
      return plan(cw, ch, width, height, Math.floor((width - cw) / 2), Math.floor((height - ch) / 2));
    }
    case 'fit': {
      const maxSide = cfg.maxSide ?? Math.max(cfg.width ?? fixed.width ?? 0, cfg.height ?? fixed.height ?? 0);
      const scale = maxSide > 0 ? Math.min(1, maxSide / Math.max(srcWidth, srcHeight)) : 1;
      return plan(roundTo(srcWidth * scale, cfg.multiple), roundTo(srcHeight * scale, cfg.multiple));
    }
    case 'height': {
      const height = cfg.height ?? fixed.height;
      if (height === undefined) throw new InvalidInputError('image resize "height" needs a height in the model config or fixed in the model');
      // A fixed model width is both the floor and the cap; otherwise `width` is the floor, maxWidth the cap.
      const maxWidth = fixed.width ?? cfg.maxWidth;
      const minWidth = fixed.width ?? cfg.width ?? 1;
      let cw = Math.max(1, Math.ceil((srcWidth * height) / srcHeight));
      if (maxWidth !== undefined) cw = Math.min(cw, maxWidth);
      const tw = Math.max(minWidth, Math.ceil(cw / cfg.multiple) * cfg.multiple);
      return plan(cw, height, maxWidth !== undefined ? Math.min(tw, Math.max(maxWidth, cw)) : tw, height);
    }
  }
}
