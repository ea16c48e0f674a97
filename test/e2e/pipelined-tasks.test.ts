// A short task is sent to its thread while another runs (pool.ts), so that it starts as soon as that
// one ends. Sent ahead, it still gets its own answer, in turn, and survives the thread's end.
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  // One thread for both models, so that one's task can be sent behind the other's.
  s = await startServer({ workers: '1', 'max-worker-threads': '1' });
  writeFaultyModel(s.store, 'faulty', { responseTimeoutS: 1 });
  writeModelFolder(path.join(s.store, 'plain'), addModel([10]));
  for (const name of ['faulty', 'plain']) {
    expect((await fetch(`${s.management}/models?url=${name}&initial_workers=1&synchronous=true`, { method: 'POST' })).status).toBe(200);
  }
  // Both lanes learn that their runs are short.
  for (let i = 0; i < 8; i++) {
    await (await postJson(`${s.inference}/predictions/plain`, { x: [[i]] })).text();
    await (await postJson(`${s.inference}/predictions/faulty`, { x: [[i]] })).text();
  }
});

afterAll(async () => s.close());

const plain = (x: number) => postJson(`${s.inference}/predictions/plain`, { x: [[x]] });
const faulty = (x: number, sleepMs?: number) => postJson(`${s.inference}/predictions/faulty`, { x: [[x]] }, sleepMs ? { 'x-amzn-sagemaker-custom-attributes': `sleep=${sleepMs}` } : {});

test('many short requests at once each get their own answer', async () => {
  const xs = Array.from({ length: 60 }, (_, i) => i);
  const answers = await Promise.all(xs.map(async (x) => (x % 2 ? json(await plain(x)) : json(await faulty(x)))));
  expect(answers).toEqual(xs.map((x) => (x % 2 ? { y: [[x + 10]] } : { y: x + 1 })));
});

test('a short request behind a slow one is answered right after it', async () => {
  const slow = faulty(1000, 300);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  const quick = await plain(5);
  expect(await json(quick)).toEqual({ y: [[15]] });
  expect(Date.now() - started).toBeLessThan(5000);
  expect(await json(await slow)).toEqual({ y: 1001 });
});

test('a request sent ahead of a stuck one runs on the thread that replaces it', async () => {
  const stuck = faulty(2000);
  await new Promise((r) => setTimeout(r, 100));
  // Its model answers within 120 s: it waits out the stuck run, the thread's end and the model's reload.
  const behind = plain(7);
  expect((await stuck).status).toBe(504);
  const answered = await behind;
  expect(answered.status).toBe(200);
  expect(await json(answered)).toEqual({ y: [[17]] });
  expect(await json(await faulty(3))).toEqual({ y: 4 });
});
