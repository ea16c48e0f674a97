// A model alone on its thread keeps several short tasks waiting there behind the running one
// (fair-share.ts mayPrefetch), so that the thread never waits for the main thread's next hand-over.
// Each still gets its own answer in turn, and the ones waiting survive the thread's end.
import { writeFaultyModel } from '../fixtures/fault-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '1', 'max-worker-threads': '1' });
  writeFaultyModel(s.store, 'faulty', { responseTimeoutS: 1 });
  expect((await fetch(`${s.management}/models?url=faulty&initial_workers=1&synchronous=true`, { method: 'POST' })).status).toBe(200);
  // The lane learns that its runs are short.
  for (let i = 0; i < 8; i++) await (await faulty(i)).text();
});

afterAll(async () => s.close());

const faulty = (x: number, sleepMs?: number) => postJson(`${s.inference}/predictions/faulty`, { x: [[x]] }, sleepMs ? { 'x-amzn-sagemaker-custom-attributes': `sleep=${sleepMs}` } : {});

test('many short requests at once each get their own answer', async () => {
  const xs = Array.from({ length: 80 }, (_, i) => i);
  expect(await Promise.all(xs.map(async (x) => json(await faulty(x))))).toEqual(xs.map((x) => ({ y: x + 1 })));
});

test('tasks waiting behind one that ends its thread run on the thread that replaces it', async () => {
  const slow = faulty(1000, 300);
  await new Promise((r) => setTimeout(r, 50));
  // While the slow run goes, all four are sent to the thread (the last waits in the lane); the first ends it when it starts.
  const order: number[] = [];
  const inOrder = (x: number) => faulty(x).then((r) => (order.push(x), r));
  const [dying, ...behind] = await Promise.all([faulty(3000), inOrder(11), inOrder(12), inOrder(13)]);
  expect(await json(await slow)).toEqual({ y: 1001 });
  expect(dying.status).toBe(500);
  expect(await json(dying)).toMatchObject({ type: 'WorkerException' });
  expect(await Promise.all(behind.map((r) => json(r)))).toEqual([{ y: 12 }, { y: 13 }, { y: 14 }]);
  // Sent again in the order they came.
  expect(order).toEqual([11, 12, 13]);
  expect(await json(await faulty(3))).toEqual({ y: 4 });
});

test('a slow request keeps the ones behind it in order', async () => {
  const slow = faulty(1000, 300);
  await new Promise((r) => setTimeout(r, 50));
  const order: number[] = [];
  const quick = [21, 22, 23].map((x) => faulty(x).then(async (r) => {
    order.push(x);
    return json(r);
  }));
  expect(await json(await slow)).toEqual({ y: 1001 });
  expect(await Promise.all(quick)).toEqual([{ y: 22 }, { y: 23 }, { y: 24 }]);
  expect(order).toEqual([21, 22, 23]);
});
