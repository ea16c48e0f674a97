// PP-OCR text detector answer: the probability map becomes text boxes in the original picture's
// pixels (DB post-processing: threshold, connected regions, mean score, unclip).
'use strict';

const PIXEL_THRESHOLD = 0.3;
const BOX_THRESHOLD = 0.6;
const UNCLIP_RATIO = 1.5;
const MIN_SIDE = 3;

function regions(prob, width, height) {
  const seen = new Uint8Array(width * height);
  const stack = new Int32Array(width * height);
  const found = [];
  for (let start = 0; start < prob.length; start++) {
    if (seen[start] || prob[start] <= PIXEL_THRESHOLD) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    let minX = width, minY = height, maxX = 0, maxY = 0, sum = 0, count = 0;
    while (top > 0) {
      const i = stack[--top];
      const x = i % width;
      const y = (i - x) / width;
      sum += prob[i];
      count++;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      const neighbours = [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, y > 0 ? i - width : -1, y < height - 1 ? i + width : -1];
      for (const n of neighbours) {
        if (n >= 0 && !seen[n] && prob[n] > PIXEL_THRESHOLD) {
          seen[n] = 1;
          stack[top++] = n;
        }
      }
    }
    found.push({ minX, minY, maxX: maxX + 1, maxY: maxY + 1, score: sum / count });
  }
  return found;
}

function postprocess(outputs, ctx) {
  const map = outputs[ctx.outputs[0].name];
  const height = map.dims[2];
  const width = map.dims[3];
  const image = ctx.image;
  const boxes = [];
  for (const r of regions(map.data, width, height)) {
    const w = r.maxX - r.minX;
    const h = r.maxY - r.minY;
    if (r.score < BOX_THRESHOLD || Math.min(w, h) < MIN_SIDE) continue;
    // DB shrinks text regions when it trains; grow them back by area × ratio / perimeter.
    const d = (w * h * UNCLIP_RATIO) / (2 * (w + h));
    const x1 = Math.max(0, (r.minX - d - image.padLeft) / image.scaleX);
    const y1 = Math.max(0, (r.minY - d - image.padTop) / image.scaleY);
    const x2 = Math.min(image.originalWidth, (r.maxX + d - image.padLeft) / image.scaleX);
    const y2 = Math.min(image.originalHeight, (r.maxY + d - image.padTop) / image.scaleY);
    boxes.push({ box: [x1, y1, x2, y2].map((v) => Math.round(v)), score: Math.round(r.score * 1e4) / 1e4 });
  }
  boxes.sort((a, b) => a.box[1] - b.box[1] || a.box[0] - b.box[0]);
  return { width: image.originalWidth, height: image.originalHeight, boxes };
}

module.exports = { postprocess };
