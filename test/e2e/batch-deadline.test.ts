// A batch runs to its latest member's deadline: an old member whose response_timeout passes fails
// alone with 504, the fresh members of the same batch still get their answers, and the thread lives.
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '1', 'max-worker-threads': '1' });
  // The handler sleeps on the value 1000: one slow member makes the whole batch's run slow.
  writeFaultyModel(s.store, 'batched', { batchSize: 4, maxBatchDelayMs: 5000, responseTimeoutS: 3 });
  const r = await fetch(`${s.management}/models?url=batched&model_name=batched`, { method: 'POST' });
  expect(r.status).toBe(200);
});

afterAll(async () => s.close());

test('the oldest member times out alone; a member that joined later gets its answer from the same run', async () => {
  const t0 = performance.now();
  const slow = (ms: number) => ({ 'X-Amzn-SageMaker-Custom-Attributes': `sleep=${ms}` });
  // t=0: a blocker holds the only host for 1 s. t=0.1: the old request queues (deadline 3.1 s); t=0.9:
  // a fresh one (deadline 3.9 s). At t=1 both leave as one batch, whose run takes 2.5 s (done ≈3.5 s).
  const blocker = postJson(`${s.inference}/predictions/batched`, { x: [[1000]] }, slow(1000));
  await new Promise((r) => setTimeout(r, 100));
  const old = postJson(`${s.inference}/predictions/batched`, { x: [[1000]] }, slow(2500));
  await new Promise((r) => setTimeout(r, 800));
  const fresh = postJson(`${s.inference}/predictions/batched`, { x: [[7]] });
  expect((await blocker).status).toBe(200);
  const [a, b] = await Promise.all([old, fresh]);
  expect(a.status).toBe(504);
  expect((await json(a)).type).toBe('InferenceTimeoutException');
  expect(b.status).toBe(200);
  expect(await json(b)).toEqual({ y: 8 });
  expect(performance.now() - t0).toBeGreaterThan(3000);
  // The thread was not ended for the old member's timeout.
  const metrics = await (await fetch(`${s.management}/metrics`)).text();
  expect(metrics).not.toMatch(/quiver_worker_restarts_total\{[^}]*\} [1-9]/);
});
