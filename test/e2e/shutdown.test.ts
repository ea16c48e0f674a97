// Graceful shutdown: everything in flight is answered, /ping says 503 while draining, nothing is lost.
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer } from '../fixtures/server';

test('shutdown answers every request in flight, then closes; /ping is 503 while it drains', async () => {
  const s = await startServer({ workers: '2' });
  writeFaultyModel(s.store, 'slow');
  expect((await fetch(`${s.management}/models?url=slow&initial_workers=2`, { method: 'POST' })).status).toBe(200);
  const port = new URL(s.inference).port;
  // 12 requests of 400 ms on 2 workers: about 2.4 s of work in flight, so that on a loaded machine the
  // first ones cannot be done before the last have arrived.
  const inFlight = Array.from({ length: 12 }, (_, i) =>
    postJson(`${s.inference}/predictions/slow`, { x: [[1000]] }, { 'X-Amzn-SageMaker-Custom-Attributes': 'sleep=400', 'X-Request-Id': `r${i}` }),
  );
  // Shut down once all 12 have arrived (a fixed wait raced them on a loaded machine: a request whose
  // connection opened after the drain began was reset, which is right, and not what this test is about).
  for (let i = 0; i < 1000 && s.server.scheduler.pendingRequests() < 12; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  const pending = s.server.scheduler.pendingRequests();
  if (pending !== 12) {
    // Say what the requests got, for a failure that could not be reproduced (CI once saw 0 pending).
    const got = await Promise.all(inFlight.map((p) => p.then(async (r) => `${r.status} ${(await r.text()).slice(0, 120)}`, (e: Error) => e.message)));
    throw new Error(`${pending} of the 12 requests were pending after 10 s; they got: ${got.join(' | ')}`);
  }
  const shutdown = s.server.shutdown(10_000);
  const ping = await fetch(`http://127.0.0.1:${port}/ping`, { headers: { connection: 'close' } }).then(
    (r) => r.status,
    () => 'refused',
  );
  // While draining: 503 on a connection that was already open, or no new connection at all.
  expect([503, 'refused']).toContain(ping);
  const answers = await Promise.all(inFlight);
  for (const r of answers) {
    expect(r.status).toBe(200);
    expect(await json(r)).toEqual({ y: 1001 });
  }
  expect(await shutdown).toBe(true);
  await expect(fetch(`${s.inference}/ping`)).rejects.toThrow();
});
