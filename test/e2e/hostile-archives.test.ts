// Hostile archives are checked while they stream, off the event loop: the server keeps answering
// /ping and other models while a bomb or a tar of 110,000 entries is refused. (The figures against the
// issue's goals come from `npm run bench:hostile`; this checks there is no freeze.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tarGz, zip } from '../fixtures/archives';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer();
  writeModelFolder(path.join(s.store, 'adder'), addModel([1]));
  expect((await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST' })).status).toBe(200);
  const zeros = Buffer.alloc(1024 * 1024);
  fs.writeFileSync(path.join(s.store, 'bomb.tar.gz'), tarGz(Array.from({ length: 128 }, (_, i) => ({ name: `z${i}.bin`, content: zeros }))));
  fs.writeFileSync(path.join(s.store, 'many.tar.gz'), tarGz(Array.from({ length: 110_000 }, (_, i) => ({ name: `f${i}`, content: '' }))));
  fs.writeFileSync(path.join(s.store, 'bomb.mar'), zip([{ name: 'z.bin', content: Buffer.alloc(128 * 1024 * 1024), deflate: true }]));
});

afterAll(async () => s.close());

/** Pings and predicts back to back until `work` settles; the slowest answer in ms. */
async function slowestAnswerDuring<T>(work: Promise<T>): Promise<{ result: T; slowestMs: number; answers: number }> {
  let done = false;
  let slowestMs = 0;
  let answers = 0;
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      const [ping, predicted] = await Promise.all([fetch(`${s.inference}/ping`), postJson(`${s.inference}/predictions/adder`, { x: [[1]] })]);
      expect(ping.status).toBe(200);
      expect(await json(predicted)).toEqual({ y: [[2]] });
      slowestMs = Math.max(slowestMs, performance.now() - started);
      answers++;
    }
  })();
  const result = await work;
  done = true;
  await probe;
  return { result, slowestMs, answers };
}

test.each([
  ['a tar.gz bomb', 'bomb.tar.gz', /over 200 times its size/],
  ['a tar of 110,000 entries', 'many.tar.gz', /more than 100000 entries/],
  ['a zip bomb', 'bomb.mar', /over 200 times its size/],
])('%s is refused while the server keeps answering', async (_what, file, message) => {
  const { result, slowestMs, answers } = await slowestAnswerDuring(fetch(`${s.management}/models?url=${file}&model_name=hostile`, { method: 'POST' }));
  expect(result.status).toBe(400);
  expect((await json(result)).message).toMatch(message);
  expect(answers).toBeGreaterThan(0);
  // A freeze of the event loop (the old synchronous listing) held /ping for seconds.
  expect(slowestMs).toBeLessThan(2000);
  expect(fs.readdirSync(path.join(s.server.config.work_dir, 'unpacked')).filter((d) => !d.startsWith('adder'))).toEqual([]);
});
