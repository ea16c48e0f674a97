// PP-OCR text recogniser answer: greedy CTC decoding of the per-step character scores into text.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dictionaries = new Map();

function dictionary(dir) {
  let keys = dictionaries.get(dir);
  if (!keys) {
    const text = fs.readFileSync(path.join(dir, 'ppocr_keys_v1.txt'), 'utf8');
    // Index 0 is the CTC blank; the dictionary follows, then the space character.
    keys = ['', ...text.split(/\r?\n/).filter((line) => line.length > 0), ' '];
    dictionaries.set(dir, keys);
  }
  return keys;
}

function postprocess(outputs, ctx) {
  const scores = outputs[ctx.outputs[0].name];
  const [, steps, classes] = scores.dims;
  const keys = dictionary(ctx.model.dir);
  let text = '';
  let confidence = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestScore = -Infinity;
    const row = t * classes;
    for (let c = 0; c < classes; c++) {
      const s = scores.data[row + c];
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    if (best !== 0 && best !== previous) {
      text += keys[best] ?? '';
      confidence += bestScore;
      kept++;
    }
    previous = best;
  }
  return { text: text.trim(), confidence: kept > 0 ? Math.round((confidence / kept) * 1e4) / 1e4 : 0 };
}

module.exports = { postprocess };
