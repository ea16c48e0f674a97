// Bodies in flight are bounded together (max_inflight_bytes), reserved before they are read: past it a
// request gets 503 at once.
import * as net from 'node:net';
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ 'max-inflight-bytes': '5000' });
  writeFaultyModel(s.store, 'slow');
  expect((await fetch(`${s.management}/models?url=slow&initial_workers=2&synchronous=true`, { method: 'POST' })).status).toBe(200);
});

afterAll(async () => s.close());

/** A request that sleeps 2 s in its handler, with a body padded to `bytes`. */
const slow = (bytes: number) => {
  const body = JSON.stringify({ x: [[1000]] });
  return fetch(`${s.inference}/predictions/slow`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-amzn-sagemaker-custom-attributes': 'sleep=2000' },
    body: body + ' '.repeat(bytes - body.length),
  });
};

test('past max_inflight_bytes a request gets 503 with Retry-After; once answers leave, it is served', async () => {
  const held = [slow(2000), slow(2000)];
  await new Promise((resolve) => setTimeout(resolve, 500));
  const refused = await slow(2000);
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('1');
  expect((await json(refused)).message).toMatch(/holds 4000 bytes of requests in flight; 2000 more would pass max_inflight_bytes \(5000\)/);
  for (const r of await Promise.all(held)) expect(await json(r)).toEqual({ y: 1001 });
  expect(await json(await slow(2000))).toEqual({ y: 1001 });
});

test('a body still on its way counts from its Content-Length, before any of it is read', async () => {
  const port = Number(new URL(s.inference).port);
  const sender = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => sender.once('connect', resolve));
  sender.write('POST /predictions/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"x":');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const refused = await slow(2000);
  expect(refused.status).toBe(503);
  expect((await json(refused)).message).toMatch(/holds 4000 bytes of requests in flight/);
  sender.destroy();
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await json(await slow(2000))).toEqual({ y: 1001 });
});
