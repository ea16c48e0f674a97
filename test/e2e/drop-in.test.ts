// MMS and TorchServe clients unchanged: the requests their docs show, made with the real curl, against
// the real PP-OCR classifier and generated models.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { BUILTIN_MODEL_STORE } from '../../src/config/schema';
import { curl, curlJson } from '../fixtures/curl';
import { textPage } from '../fixtures/images';
import { addModel, linearModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, startServer, tempDir, TestServer } from '../fixtures/server';

let s: TestServer;
let files: string;
let upright: Buffer;

beforeAll(async () => {
  const store = tempDir('dropin-store');
  fs.cpSync(path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), path.join(store, 'ocr-cls'), { recursive: true });
  writeModelFolder(path.join(store, 'adder'), addModel([10, 20, 30]));
  const labels = ['tabby', 'lynx', 'cougar'];
  const weights = [[1, 0, 0], [0, 1, 0]];
  writeModelFolder(path.join(store, 'cats'), linearModel(weights), { postprocess: { type: 'topk', k: 2, labels } });
  writeModelFolder(path.join(store, 'cats-ts'), linearModel(weights), { postprocess: { type: 'topk', k: 2, labels, format: 'torchserve' } });
  s = await startServer({ 'model-store': store, models: ['ocr-cls', 'adder', 'cats', 'cats-ts'], 'classifier-format': 'mms' });
  files = tempDir('dropin-files');
  upright = await textPage(192, 48, [{ text: 'Orientation', x: 4, y: 34, size: 28 }]);
  fs.writeFileSync(path.join(files, 'line.jpg'), upright);
  fs.writeFileSync(path.join(files, 'flipped.png'), await sharp(upright).rotate(180).png().toBuffer());
  fs.writeFileSync(path.join(files, 'tensors.json'), JSON.stringify({ x: [[1, 2, 3]] }));
});

afterAll(async () => s.close());

const file = (name: string) => path.join(files, name);
type Classes = { probability: number; class: string }[];

describe("the inference API as MMS's and TorchServe's docs call it", () => {
  test('curl -X POST -T kitten.jpg: a body with no content type is sniffed as the image it is', async () => {
    const answer = await curlJson(['-X', 'POST', `${s.inference}/predictions/ocr-cls`, '-T', file('line.jpg')]);
    expect(answer.status).toBe(200);
    const classes = answer.json as Classes;
    expect(classes.map((c) => c.class)).toEqual(['0', '180']);
    expect(classes[0].probability + classes[1].probability).toBeCloseTo(1, 4);
  });

  test('curl -T alone (a PUT), and a PNG read upside down', async () => {
    const answer = await curlJson([`${s.inference}/predictions/ocr-cls`, '-T', file('flipped.png')]);
    expect(answer.status).toBe(200);
    expect((answer.json as Classes)[0].class).toBe('180');
  });

  test('curl -F data=@kitten.jpg: the data field of a multipart form', async () => {
    const answer = await curlJson(['-X', 'POST', `${s.inference}/predictions/ocr-cls`, '-F', `data=@${file('line.jpg')}`]);
    expect(answer.status).toBe(200);
    expect((answer.json as Classes)[0].class).toBe('0');
    const body = await curlJson([`${s.inference}/predictions/ocr-cls`, '-F', `body=@${file('flipped.png')}`]);
    expect((body.json as Classes)[0].class).toBe('180');
  });

  test('several files in one form are several requests, answered in order', async () => {
    const answer = await curlJson([
      `${s.inference}/predictions/ocr-cls`, '-F', `data=@${file('line.jpg')}`, '-F', 'note=ignored', '-F', `data=@${file('flipped.png')}`,
    ]);
    expect(answer.status).toBe(200);
    const [first, second] = answer.json as Classes[];
    expect(answer.json).toHaveLength(2);
    expect(first[0].class).toBe('0');
    expect(second[0].class).toBe('180');
  });

  test('curl --data-binary @file (sent as url-encoded) and JSON without a content type', async () => {
    const image = await curlJson([`${s.inference}/predictions/ocr-cls`, '--data-binary', `@${file('line.jpg')}`]);
    expect(image.status).toBe(200);
    expect((image.json as Classes)[0].class).toBe('0');
    const tensors = await curlJson(['-X', 'POST', `${s.inference}/predictions/adder`, '-T', file('tensors.json')]);
    expect(tensors).toEqual({ status: 200, json: { y: [[11, 22, 33]] } });
    const posted = await curlJson([`${s.inference}/predictions/adder`, '-d', '{"x": [[0, 0, 0]]}']);
    expect(posted).toEqual({ status: 200, json: { y: [[10, 20, 30]] } });
  });

  test('a form without a data or body field, or bytes a model cannot take, are 4xx with JSON bodies', async () => {
    const noField = await curlJson([`${s.inference}/predictions/ocr-cls`, '-F', `image=@${file('line.jpg')}`]);
    expect(noField.status).toBe(400);
    expect(noField.json.message).toMatch(/no "data" or "body" field \(fields: "image"\)/);
    fs.writeFileSync(file('noise.bin'), Buffer.from([1, 2, 3, 4]));
    const noise = await curlJson([`${s.inference}/predictions/adder`, '-T', file('noise.bin')]);
    expect(noise.status).toBe(415);
    expect(noise.json.type).toBe('UnsupportedMediaTypeException');
  });

  test('a JSON file sent with curl -F (typed octet-stream) is taken as JSON tensors', async () => {
    const answer = await curlJson([`${s.inference}/predictions/adder`, '-F', `data=@${file('tensors.json')}`]);
    expect(answer).toEqual({ status: 200, json: { y: [[11, 22, 33]] } });
  });

  test('a form whose second input fails fails as a whole, and the server lives on', async () => {
    fs.writeFileSync(file('noise2.bin'), Buffer.from([9, 9, 9]));
    const empty = await curlJson([`${s.inference}/predictions/adder`, '-F', `data=@${file('tensors.json')}`, '-F', 'data=']);
    expect(empty.status).toBe(400);
    expect(empty.json.message).toMatch(/request input is empty/);
    const noise = await curlJson([`${s.inference}/predictions/adder`, '-F', `data=@${file('tensors.json')}`, '-F', `data=@${file('noise2.bin')}`]);
    expect(noise.status).toBe(415);
    const many = ['-F', `data=@${file('tensors.json')}`];
    const tooMany = await curlJson([`${s.inference}/predictions/adder`, ...Array.from({ length: 33 }, () => many).flat()]);
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.message).toMatch(/33 inputs; one request may carry at most 32/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await curlJson([`${s.inference}/ping`])).status).toBe(200);
  });

  test('a trailing slash names the same model', async () => {
    const answer = await curlJson([`${s.inference}/predictions/adder/`, '-d', '{"x": [[0, 0, 0]]}']);
    expect(answer).toEqual({ status: 200, json: { y: [[10, 20, 30]] } });
  });

  test('an unknown model is a 404 whatever the method or body', async () => {
    for (const args of [[`${s.inference}/predictions/squeezenet0_0`], ['-X', 'POST', `${s.inference}/predictions/squeezenet0_0`, '-T', file('line.jpg')], [`${s.inference}/predictions/ocr-cls/0.0`, '-T', file('line.jpg')]]) {
      const answer = await curlJson(args);
      expect(answer.status).toBe(404);
      // TorchServe's type for a registered model without that version.
      expect(answer.json).toMatchObject({ code: 404, type: args.some((a) => a.endsWith('/0.0')) ? 'ModelVersionNotFoundException' : 'ModelNotFoundException' });
    }
  });
});

describe('classifier answers in MMS and TorchServe shapes', () => {
  test('classifier_format=mms: [{"probability","class"}], most likely first', async () => {
    const answer = await json(await fetch(`${s.inference}/predictions/cats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: [[0, 5]] }) }));
    expect(answer.map((c: { class: string }) => c.class)).toEqual(['lynx', 'tabby']);
    expect(Object.keys(answer[0]).sort()).toEqual(['class', 'probability']);
  });

  test('a model config may choose TorchServe\'s {"<label>": probability}', async () => {
    const answer = await curlJson([`${s.inference}/predictions/cats-ts`, '-d', '{"x": [[5, 0]]}']);
    expect(Object.keys(answer.json)).toEqual(['tabby', 'lynx']);
    // Scores [5, 0, 0] through softmax.
    expect(answer.json.tabby).toBeCloseTo(Math.exp(5) / (Math.exp(5) + 2), 5);
    expect(answer.json.lynx).toBeCloseTo(1 / (Math.exp(5) + 2), 5);
  });
});
