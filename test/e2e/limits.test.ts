// Limits a careless or hostile client meets before any body is read: 413 from Content-Length or
// Expect: 100-continue, slow clients cut at their timeouts, and a cap on connections that keeps the
// port answering while thousands of idle sockets are open.
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;
let port: number;

beforeAll(async () => {
  s = await startServer({ 'max-request-size': '100000', 'oip-max-request-size': '300000', 'header-read-timeout': '1', 'request-read-timeout': '2' });
  writeModelFolder(path.join(s.store, 'adder'), addModel([1]));
  expect((await fetch(`${s.management}/models?url=adder&synchronous=true`, { method: 'POST' })).status).toBe(200);
  port = Number(new URL(s.inference).port);
});

afterAll(async () => s.close());

/** A raw connection: what the server writes, and when it closes. */
function connect(to = () => port): Promise<{ socket: net.Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(to(), '127.0.0.1');
    let data = '';
    const opened = Date.now();
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now() - opened)));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

const headers = (extra: string) => `POST /predictions/adder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}\r\n`;

describe('bodies over max_request_size', () => {
  test('a Content-Length over the limit gets 413 at once, with nothing sent, and the connection closes', async () => {
    const c = await connect();
    const started = Date.now();
    c.socket.write(headers('Content-Length: 104857600\r\n'));
    const answeredAfter = await new Promise<number>((resolve) => c.socket.once('data', () => resolve(Date.now() - started)));
    expect(answeredAfter).toBeLessThan(500);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.received()).toMatch(/"type":"RequestEntityTooLargeException"/);
    // The body never comes: the connection is closed once the linger (2 s) is over.
    const closedAfter = await c.closed;
    expect(closedAfter).toBeGreaterThanOrEqual(1500);
    expect(closedAfter).toBeLessThan(4000);
  });

  test('Expect: 100-continue over the limit gets 413, never "100 Continue"', async () => {
    const c = await connect();
    c.socket.write(headers('Content-Length: 104857600\r\nExpect: 100-continue\r\n'));
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.received()).not.toContain('100 Continue');
    expect(c.received()).toMatch(/"type":"RequestEntityTooLargeException"/);
  });

  test('under /v2 the same refusal is in the Open Inference Protocol\'s form, {"error": ...}', async () => {
    const c = await connect();
    c.socket.write('POST /v2/models/adder/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\nExpect: 100-continue\r\n\r\n');
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    const body = JSON.parse(c.received().slice(c.received().indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatch(/max_request_size/);
  });

  test('Expect: 100-continue within the limit is invited, then answered', async () => {
    const c = await connect();
    const body = '{"x":[[2]]}';
    c.socket.write(headers(`Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n`));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(c.received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    c.socket.write(body);
    await c.closed;
    expect(c.received()).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\{"y":\[\[3\]\]\}$/);
  });
});

describe('the /v2 routes have their own limit (Triton\'s 64 MiB by default, TorchServe\'s 6.5 MB elsewhere)', () => {
  // 200 KB of JSON: over max_request_size, within oip_max_request_size.
  const padded = (bytes: number) => `{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[2]}]${' '.repeat(bytes)}}`;

  test('a body between the two limits is served on /v2 and refused elsewhere', async () => {
    const v2 = await fetch(`${s.inference}/v2/models/adder/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: padded(200_000) });
    expect(v2.status).toBe(200);
    expect((await json(v2)).outputs[0].data).toEqual([3]);
    const mms = await fetch(`${s.inference}/predictions/adder`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"x":[[2]]${' '.repeat(200_000)}}` });
    expect(mms.status).toBe(413);
    expect((await json(mms)).message).toMatch(/\(max_request_size\)/);
  });

  test('past oip_max_request_size, /v2 answers 413 naming it, sent or inflated', async () => {
    const big = await fetch(`${s.inference}/v2/models/adder/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: padded(400_000) });
    expect(big.status).toBe(413);
    expect(await json(big)).toEqual({ error: expect.stringMatching(/over the limit of 300000 bytes \(oip_max_request_size\)/) });
    const bomb = await fetch(`${s.inference}/v2/models/adder/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: zlib.gzipSync(padded(400_000)),
    });
    expect(bomb.status).toBe(413);
    expect((await json(bomb)).error).toMatch(/inflates past oip_max_request_size/);
  });
});

describe('slow clients', () => {
  test('headers that never end: the connection is closed near header_read_timeout', async () => {
    const c = await connect();
    c.socket.write('POST /predictions/adder HTTP/1.1\r\nHost: x\r\n');
    const closedAfter = await c.closed;
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(4000);
  });

  test('a body that never ends: 408 near request_read_timeout', async () => {
    const c = await connect();
    c.socket.write(headers('Content-Length: 50\r\n') + '{"x":');
    const closedAfter = await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfter).toBeGreaterThanOrEqual(1900);
    expect(closedAfter).toBeLessThan(5000);
  });
});

describe('max_connections', () => {
  // Its own server, with the default read timeouts, so that no timeout closes the sockets under test.
  let capped: TestServer;
  let cappedPort: number;
  const connectCapped = () => connect(() => cappedPort);
  beforeAll(async () => {
    capped = await startServer({ 'max-connections': '40' });
    writeModelFolder(path.join(capped.store, 'adder'), addModel([1]));
    expect((await fetch(`${capped.management}/models?url=adder&synchronous=true`, { method: 'POST' })).status).toBe(200);
    cappedPort = Number(new URL(capped.inference).port);
  });
  afterAll(async () => capped.close());

  test('idle sockets past the cap are closed, oldest first, so a new client is still served', async () => {
    const idle = await Promise.all(Array.from({ length: 200 }, connectCapped));
    const answer = await postJson(`${capped.inference}/predictions/adder`, { x: [[1]] });
    expect(answer.status).toBe(200);
    expect(await json(answer)).toEqual({ y: [[2]] });
    // 200 opened against a cap of 40: the oldest went.
    await Promise.all(idle.slice(0, 150).map((c) => c.closed));
    expect(idle.slice(-30).filter((c) => c.socket.destroyed)).toHaveLength(0);
    for (const c of idle) c.socket.destroy();
  });

  test('when every connection has a request in flight, a new one gets a 503 with a JSON body', async () => {
    // Requests whose bodies never arrive keep their connections busy (until request_read_timeout).
    const busy = await Promise.all(Array.from({ length: 40 }, connectCapped));
    for (const c of busy) c.socket.write(headers('Content-Length: 20\r\n'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const refused = await connectCapped();
    await refused.closed;
    expect(refused.received()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(refused.received()).toMatch(/Retry-After: 1/);
    expect(refused.received()).toMatch(/"message":"the server holds 40 connections, all busy \(max_connections\); try again"/);
    // No request was read, so the body also carries OIP's "error" (Triton's clients read that key).
    expect(refused.received()).toMatch(/"error":"the server holds 40 connections, all busy \(max_connections\); try again"/);
    for (const c of busy) c.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await postJson(`${capped.inference}/predictions/adder`, { x: [[0]] })).status).toBe(200);
  });
});
