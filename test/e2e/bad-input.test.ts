// Bad input never hurts: each gets a clear 4xx with a JSON body, and requests running beside it
// keep getting right answers.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { addModel, identityImageModel, writeModelFolder } from '../fixtures/onnx-models';
import { tarGz, zip } from '../fixtures/archives';
import { liarPng, solidJpeg } from '../fixtures/images';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

afterAll(async () => s.close());

async function register(name: string, url: string): Promise<void> {
  const r = await fetch(`${s.management}/models?url=${encodeURIComponent(url)}&model_name=${name}`, { method: 'POST' });
  if (r.status !== 200) throw new Error(`register ${name}: ${r.status} ${await r.text()}`);
}

beforeAll(async () => {
  s = await startServer({ 'max-request-size': String(256 * 1024), 'max-image-pixels': '4000000' });
  writeModelFolder(path.join(s.store, 'adder2'), addModel([1, 2, 3]));
  writeModelFolder(path.join(s.store, 'image2'), identityImageModel(4, 4), { image: { resize: 'stretch' } });
  writeModelFolder(path.join(s.store, 'faulty2'), addModel([1]), { handler: 'handler.js' }, {
    'handler.js': `module.exports = { postprocess(outputs) {
      const v = outputs.y.data[0];
      if (v === 100) throw new Error('handler failed on purpose');
      if (v === 200) process.exit(1);
      return { y: v };
    } };`,
  });
  await register('adder', 'adder2');
  await register('image', 'image2');
  await register('faulty', 'faulty2');
});

const post = (model: string, body: string | Buffer, type: string) =>
  fetch(`${s.inference}/predictions/${model}`, { method: 'POST', headers: { 'content-type': type }, body });

async function expectError(response: Promise<Response>, status: number, message?: RegExp): Promise<void> {
  const r = await response;
  const body = await json(r);
  expect({ status: r.status, code: body.code }).toEqual({ status, code: status });
  expect(typeof body.type).toBe('string');
  if (message) expect(body.message).toMatch(message);
}

function truncatedRequest(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('POST /predictions/adder HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"x": [[1,');
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

describe('bad input', () => {
  test('each bad request gets its 4xx while good requests beside it are answered correctly', async () => {
    const good = Array.from({ length: 40 }, (_, i) => postJson(`${s.inference}/predictions/adder`, { x: [[i, i, i]] }));
    const port = Number(new URL(s.inference).port);
    const bad = [
      expectError(post('adder', '{"x": [[1,2', 'application/json'), 400, /not valid JSON/),
      expectError(post('adder', JSON.stringify({ z: [[1, 2, 3]] }), 'application/json'), 400, /no input named "z"/),
      expectError(post('adder', JSON.stringify({ x: [[1, 2]] }), 'application/json'), 400, /dimension 1 = 2/),
      expectError(post('adder', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT8', data: [1, 2, 3] }] }), 'application/json'), 400, /datatype INT8/),
      expectError(post('adder', 'hello', 'text/plain'), 415),
      expectError(post('adder', '', 'application/json'), 400, /empty/),
      expectError(post('image', Buffer.from('GIF89a but not really'), 'image/gif'), 400),
      expectError(post('image', liarPng(60000, 60000), 'image/png'), 400, /over the limit/),
      expectError(post('adder', Buffer.alloc(300 * 1024, 32), 'application/json'), 413, /max_request_size/),
      expectError(post('missing-model', '{}', 'application/json'), 404),
      expectError(post('image', JSON.stringify({ x: [[1]] }), 'application/json'), 400, /rank 4/),
      truncatedRequest(port),
    ];
    await Promise.all(bad);
    const answers = await Promise.all(good);
    for (const [i, r] of answers.entries()) {
      expect(r.status).toBe(200);
      expect(await json(r)).toEqual({ y: [[i + 1, i + 2, i + 3]] });
    }
  });

  test('an image model answers a real image after all that', async () => {
    const r = await post('image', await solidJpeg(9, 7, [255, 0, 0]), 'image/jpeg');
    expect(r.status).toBe(200);
    const { y } = await json(r);
    expect(y[0][0][0][0]).toBeCloseTo(1, 1);
    expect(y[0][1][0][0]).toBeCloseTo(0, 1);
  });

  test('a failing handler is a 500 for that request alone; a worker that dies is replaced', async () => {
    await expectError(postJson(`${s.inference}/predictions/faulty`, { x: [[99]] }), 500, /handler failed on purpose/);
    expect(await json(await postJson(`${s.inference}/predictions/faulty`, { x: [[1]] }))).toEqual({ y: 2 });
    await expectError(postJson(`${s.inference}/predictions/faulty`, { x: [[199]] }), 500, /worker \d+ failed/);
    // The replacement thread loads the model again on its first task.
    expect(await json(await postJson(`${s.inference}/predictions/faulty`, { x: [[4]] }))).toEqual({ y: 5 });
    expect(await json(await postJson(`${s.inference}/predictions/adder`, { x: [[0, 0, 0]] }))).toEqual({ y: [[1, 2, 3]] });
  });

  test('hostile archives are refused with 400 and write nothing outside the work folder', async () => {
    const marker = path.join(path.dirname(s.store), `quiver-evil-${process.pid}.txt`);
    fs.writeFileSync(path.join(s.store, 'evil.tar.gz'), tarGz([{ name: `../quiver-evil-${process.pid}.txt`, content: 'pwned' }, { name: 'model.onnx', content: 'x' }]));
    fs.writeFileSync(path.join(s.store, 'link.tar.gz'), tarGz([{ name: 'model.onnx', type: '2', linkTarget: '/etc/passwd' }]));
    fs.writeFileSync(path.join(s.store, 'evil.mar'), zip([{ name: 'model.onnx', content: '/etc/passwd', mode: 0o120777 }]));
    for (const url of ['evil.tar.gz', 'link.tar.gz', 'evil.mar']) {
      await expectError(fetch(`${s.management}/models?url=${url}`, { method: 'POST' }), 400);
    }
    expect(fs.existsSync(marker)).toBe(false);
    await expectError(fetch(`${s.management}/models?url=${encodeURIComponent('../../etc')}`, { method: 'POST' }), 400);
    await expectError(fetch(`${s.management}/models?url=${encodeURIComponent('/etc')}`, { method: 'POST' }), 400);
  });

  test('the server still serves after everything above', async () => {
    expect((await fetch(`${s.inference}/ping`)).status).toBe(200);
    expect(await json(await postJson(`${s.inference}/predictions/adder`, { x: [[1, 1, 1]] }))).toEqual({ y: [[2, 3, 4]] });
  });
});
