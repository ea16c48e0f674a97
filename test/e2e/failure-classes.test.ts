// Whose fault a failure is decides its status: a client's mistake is a 4xx, the model's or the
// server's failure a 5xx, for built-in preprocessing, handlers and onnxruntime alike.
import * as path from 'node:path';
import sharp from 'sharp';
import { addModel, brokenModel, identityImageModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

const HANDLER = `module.exports = {
  preprocess(body, ctx) {
    const text = Buffer.from(body).toString();
    if (text === 'reject') ctx.rejectInput('send a number, not "reject"');
    if (text === 'teapot') throw Object.assign(new Error('short and stout'), { status: 418 });
    if (text === 'bug') return undefined.x;
    return { x: { type: 'float32', dims: [1, 1], data: new Float32Array([Number(text)]) } };
  },
};`;

beforeAll(async () => {
  s = await startServer();
  writeModelFolder(path.join(s.store, 'handled'), addModel([1]), { handler: 'handler.js' }, { 'handler.js': HANDLER });
  writeModelFolder(path.join(s.store, 'broken'), brokenModel());
  writeModelFolder(path.join(s.store, 'adder'), addModel([1, 2, 3]));
  // A text-line config with no maxWidth: a thin strip would become a huge tensor.
  writeModelFolder(path.join(s.store, 'lines'), identityImageModel(48, 'W'), { image: { resize: 'height', height: 48 } });
  writeModelFolder(path.join(s.store, 'square'), identityImageModel(4, 4), { image: { resize: 'stretch' } });
  for (const name of ['handled', 'broken', 'adder', 'lines', 'square']) {
    expect((await fetch(`${s.management}/models?url=${name}&synchronous=true`, { method: 'POST' })).status).toBe(200);
  }
});

afterAll(async () => s.close());

const send = (model: string, body: string) => fetch(`${s.inference}/predictions/${model}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });

test("a handler's rejection is a 400; a bug in its preprocess a 500", async () => {
  const rejected = await send('handled', 'reject');
  expect(rejected.status).toBe(400);
  expect(await json(rejected)).toMatchObject({ type: 'InvalidInputException', message: expect.stringContaining('send a number, not "reject"') });
  expect((await send('handled', 'teapot')).status).toBe(400);
  const bug = await send('handled', 'bug');
  expect(bug.status).toBe(500);
  expect(await json(bug)).toMatchObject({ type: 'InferenceException', message: expect.stringMatching(/failed in preprocess: Cannot read properties of undefined/) });
  expect(await json(await send('handled', '41'))).toEqual({ y: [[42]] });
});

test('a model that fails to run is a 500; an input it cannot take is a 400', async () => {
  const broken = await postJson(`${s.inference}/predictions/broken`, { x: [[1, 2, 3]] });
  expect(broken.status).toBe(500);
  expect(await json(broken)).toMatchObject({ type: 'InferenceException', message: expect.stringMatching(/model "broken" failed to run: .*indices/i) });
  const wrongType = await postJson(`${s.inference}/predictions/adder`, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP64', data: [1, 2, 3] }] });
  expect(wrongType.status).toBe(400);
});

test('1e999 in a JSON tensor is a 400 naming it, not an answer of nulls', async () => {
  const r = await fetch(`${s.inference}/predictions/adder`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x": [[1, 1e999, 3]]}' });
  expect(r.status).toBe(400);
  expect((await json(r)).message).toMatch(/holds Infinity where a finite float32/);
});

test('an image whose input would be huge, or whose side is past what the kernels take, is a 400', async () => {
  const strip = await sharp({ create: { width: 20000, height: 1, channels: 3, background: '#fff' } }).png().toBuffer();
  const huge = await fetch(`${s.inference}/predictions/lines`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: strip });
  expect(huge.status).toBe(400);
  expect(await json(huge)).toMatchObject({ type: 'ImageTooLargeException', message: expect.stringMatching(/would make a \d+×48 input .*max_image_pixels/) });
  const wide = await sharp({ create: { width: 40000, height: 2, channels: 3, background: '#fff' } }).png().toBuffer();
  const r = await fetch(`${s.inference}/predictions/square`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: wide });
  expect(r.status).toBe(400);
  expect(await json(r)).toMatchObject({ type: 'ImageTooLargeException', message: expect.stringContaining('a side may be at most 32767 pixels') });
  const line = await sharp({ create: { width: 200, height: 48, channels: 3, background: '#fff' } }).png().toBuffer();
  expect((await fetch(`${s.inference}/predictions/lines`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: line })).status).toBe(200);
});
