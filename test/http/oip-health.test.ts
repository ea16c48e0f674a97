// The OIP health routes as the spec reads them: 200 is true, a 4xx false (Triton answers 400); a server
// that is not ready must not answer 5xx, which probes and clients read as a broken server.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { oipRouter } from '../../src/http/oip';
import type { ModelScheduler } from '../../src/scheduler/scheduler';

test('ready is 200 while healthy and 400 with {ready: false} once not; live stays 200', async () => {
  let healthy = true;
  const app = express().use(oipRouter({} as ModelScheduler, { maxRequestSize: 1 << 20, isHealthy: () => healthy }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/health`;
  try {
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    healthy = false;
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(400);
    expect(await ready.json()).toMatchObject({ ready: false, error: expect.any(String) });
    expect((await fetch(`${base}/live`)).status).toBe(200);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
