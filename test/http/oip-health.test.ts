// The OIP health routes as the spec reads them: 200 is true, a 4xx false (Triton answers 400); a server
// that is not ready must not answer 5xx, which probes and clients read as a broken server. Mounted
// behind the drain gate, as the server mounts them.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { drainGate, type ServerLifecycle } from '../../src/http/app';
import { errorHandler } from '../../src/http/error-handler';
import { oipRouter } from '../../src/http/oip';
import type { ModelScheduler } from '../../src/scheduler/scheduler';

test('while the server drains: ready is 400 with {ready: false}, live 200, other routes 503', async () => {
  const lifecycle: ServerLifecycle = { draining: false, inFlight: 0 };
  const app = express()
    .use(drainGate(lifecycle))
    .use(oipRouter({} as ModelScheduler, { maxRequestSize: 1 << 20, isHealthy: () => !lifecycle.draining }))
    .use(errorHandler('mms'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`;
  try {
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    lifecycle.draining = true;
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(400);
    expect(await ready.json()).toMatchObject({ ready: false, error: expect.any(String) });
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const other = await fetch(`${base}/repository/index`, { method: 'POST' });
    expect(other.status).toBe(503);
    expect(await other.json()).toEqual({ error: expect.stringContaining('shutting down') });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
