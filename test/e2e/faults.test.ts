// Faults in a worker fail only the requests on that worker, with a clear 5xx; the worker is replaced,
// its models are placed again, and everything else keeps serving.
import * as http from 'node:http';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '2', 'worker-heap-mb': '64', 'job-queue-size': '50', 'max-queued-requests': '8' });
  writeFaultyModel(s.store, 'faulty', { responseTimeoutS: 1 });
  writeModelFolder(path.join(s.store, 'plain'), addModel([10]));
  for (const [name, url, workers] of [['faulty', 'faulty', 2], ['plain', 'plain', 2]] as const) {
    const r = await fetch(`${s.management}/models?url=${url}&model_name=${name}&initial_workers=${workers}`, { method: 'POST' });
    expect(r.status).toBe(200);
  }
});

afterAll(async () => s.close());

const faulty = (x: number, headers: Record<string, string> = {}) => postJson(`${s.inference}/predictions/faulty`, { x: [[x]] }, headers);
const plain = (x: number) => postJson(`${s.inference}/predictions/plain`, { x: [[x]] });

async function expectPlainServes(): Promise<void> {
  const answers = await Promise.all([1, 2, 3, 4].map((x) => plain(x)));
  for (const [i, r] of answers.entries()) expect(await json(r)).toEqual({ y: [[11 + i]] });
}

describe('faults and limits', () => {
  test('a request past response_timeout gets 504 at once; the stuck worker is replaced and serves again', async () => {
    const started = Date.now();
    const stuck = await faulty(2000);
    expect(stuck.status).toBe(504);
    expect(await json(stuck)).toMatchObject({ code: 504, type: 'InferenceTimeoutException' });
    expect(Date.now() - started).toBeLessThan(5000);
    await expectPlainServes();
    expect(await json(await faulty(1))).toEqual({ y: 2 });
  });

  test('a thread that exits fails only its own request', async () => {
    const [dying, ...others] = await Promise.all([faulty(3000), plain(0), plain(0)]);
    expect(dying.status).toBe(500);
    expect(await json(dying)).toMatchObject({ type: 'WorkerException' });
    for (const r of others) expect(r.status).toBe(200);
    await expectPlainServes();
  });

  test('a thread that runs out of heap is replaced; the request gets a clear 500', async () => {
    const r = await faulty(4000);
    expect(r.status).toBe(500);
    expect((await json(r)).message).toMatch(/worker \d+ failed/);
    await expectPlainServes();
    expect(await json(await faulty(5))).toEqual({ y: 6 });
  });

  test('a handler exception is a 500 for that request alone', async () => {
    const r = await faulty(5000);
    expect(await json(r)).toMatchObject({ code: 500, message: expect.stringMatching(/handler failed on purpose/) });
    await expectPlainServes();
  });

  test('past the global bound, requests get 503 with Retry-After at once, not after a timeout', async () => {
    const slow = Array.from({ length: 8 }, () => faulty(1000, { 'X-Amzn-SageMaker-Custom-Attributes': 'sleep=100' }));
    // Until all eight are counted in (a busy machine may take a while to read their bodies).
    for (let i = 0; i < 200 && s.server.scheduler.pendingRequests() < 8; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    const refused = await plain(1);
    expect(Date.now() - started).toBeLessThan(250);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await json(refused)).toMatchObject({ type: 'ServiceUnavailableException', message: expect.stringMatching(/max_queued_requests/) });
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
    await expectPlainServes();
  });

  test('a chunked body over max_request_size gets 413 before it is read to the end', async () => {
    const port = Number(new URL(s.inference).port);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/predictions/plain', headers: { 'content-type': 'application/json' } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 32);
      // 6553500 is the limit: keep sending until the server answers.
      const pump = () => {
        let ok = true;
        while (ok && sent < 20 * 1024 * 1024 && !req.destroyed) {
          ok = req.write(chunk);
          sent += chunk.length;
        }
        if (req.destroyed) return;
        if (sent < 20 * 1024 * 1024) req.once('drain', pump);
        else req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    await expectPlainServes();
  });
});
