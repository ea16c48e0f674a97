// max_worker above min_worker = 0: the version keeps no worker while unused, and the first request
// that finds it so gets a copy started for it (as a cold load), instead of a 503 for ever.
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '2' });
  writeModelFolder(path.join(s.store, 'adder'), addModel([10, 20, 30]));
  writeModelFolder(path.join(s.store, 'idle'), addModel([1, 1, 1]));
  for (const name of ['adder', 'idle']) {
    expect((await fetch(`${s.management}/models?url=${name}&initial_workers=1&synchronous=true`, { method: 'POST' })).status).toBe(200);
  }
});

afterAll(async () => s.close());

const workers = async (name: string) => (await json(await fetch(`${s.management}/models/${name}`)))[0]?.workers ?? (await json(await fetch(`${s.management}/models/${name}`))).workers;

test('min_worker=0, max_worker=2: no worker until a request, then one, and the answer', async () => {
  expect((await fetch(`${s.management}/models/adder?min_worker=0&max_worker=2&synchronous=true`, { method: 'PUT' })).status).toBe(200);
  expect(await workers('adder')).toHaveLength(0);
  const answers = await Promise.all([1, 2, 3].map((x) => postJson(`${s.inference}/predictions/adder`, { x: [[x, x, x]] })));
  for (const [i, r] of answers.entries()) {
    expect(r.status).toBe(200);
    expect(await json(r)).toEqual({ y: [[11 + i, 21 + i, 31 + i]] });
  }
  expect((await workers('adder')).length).toBeGreaterThanOrEqual(1);
});

test('min_worker=0, max_worker=0: a clear 503 that says how to scale it', async () => {
  expect((await fetch(`${s.management}/models/idle?min_worker=0&max_worker=0&synchronous=true`, { method: 'PUT' })).status).toBe(200);
  const r = await postJson(`${s.inference}/predictions/idle`, { x: [[1, 2, 3]] });
  expect(r.status).toBe(503);
  expect((await json(r)).message).toMatch(/min_worker=1/);
});
