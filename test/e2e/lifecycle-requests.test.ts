// The lifecycle as clients meet it: a client that goes away takes its queued request off the queue;
// a version with max_worker above min_worker grows while requests queue; a restart predicts each
// model's cost from what it measured before, as the snapshot recorded it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFaultyModel } from '../fixtures/fault-models';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

const SLOW = (ms: number) => ({ 'X-Amzn-SageMaker-Custom-Attributes': `sleep=${ms}` });

describe('requests and the lifecycle', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ workers: '2', 'max-worker-threads': '2', 'job-queue-size': '3' });
    writeFaultyModel(s.store, 'slow', { responseTimeoutS: 30 });
    const r = await fetch(`${s.management}/models?url=slow&initial_workers=1`, { method: 'POST' });
    expect(r.status).toBe(200);
  });
  afterAll(async () => s.close());

  test('a client that disconnects while its request is queued frees its place in job_queue_size', async () => {
    const blocker = postJson(`${s.inference}/predictions/slow`, { x: [[1000]] }, SLOW(1500));
    await new Promise((r) => setTimeout(r, 100));
    const gone = [new AbortController(), new AbortController()];
    const abandoned = gone.map((c) => fetch(`${s.inference}/predictions/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: [[1]] }), signal: c.signal }).catch((err: Error) => err));
    for (let i = 0; i < 100 && s.server.scheduler.pendingRequests() < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.server.scheduler.pendingRequests()).toBe(3);
    for (const c of gone) c.abort();
    for (const a of await Promise.all(abandoned)) expect((a as Error).name).toBe('AbortError');
    // Their places are free at once, not when the worker would have reached them.
    for (let i = 0; i < 100 && s.server.scheduler.pendingRequests() > 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.server.scheduler.pendingRequests()).toBe(1);
    const next = await Promise.all([1, 2].map((x) => postJson(`${s.inference}/predictions/slow`, { x: [[x]] })));
    expect(next.map((r) => r.status)).toEqual([200, 200]);
    expect((await blocker).status).toBe(200);
  });

  test('max_worker above min_worker: queued requests and an idle thread grow the version by a copy', async () => {
    const scaled = await fetch(`${s.management}/models/slow?min_worker=1&max_worker=2&synchronous=true`, { method: 'PUT' });
    expect({ status: scaled.status, body: await json(scaled) }).toMatchObject({ status: 200 });
    expect((await json(await fetch(`${s.management}/models/slow`))).workers).toHaveLength(1);
    const queued = [1, 2, 3].map(() => postJson(`${s.inference}/predictions/slow`, { x: [[1000]] }, SLOW(1500)));
    let workers = 1;
    for (let i = 0; i < 60 && workers < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      workers = (await json(await fetch(`${s.management}/models/slow`))).workers.length;
    }
    expect(workers).toBe(2);
    for (const r of await Promise.all(queued)) expect({ status: r.status, body: await json(r) }).toMatchObject({ status: 200 });
    // min_worker is still what it was asked to keep.
    expect((await json(await fetch(`${s.management}/models/slow`))).minWorkers).toBe(1);
  });
});

test('a restart predicts a model from the cost it measured before, as the snapshot recorded it', async () => {
  const store = tempDir('measured-store');
  const workDir = tempDir('measured-work');
  writeModelFolder(path.join(store, 'adder'), addModel(Array.from({ length: 4096 }, (_, i) => i)));
  let s = await startServer({ 'model-store': store, 'work-dir': workDir });
  try {
    expect((await fetch(`${s.management}/models?url=adder`, { method: 'POST' })).status).toBe(200);
    expect((await postJson(`${s.inference}/predictions/adder`, { x: [Array.from({ length: 4096 }, () => 1)] })).status).toBe(200);
    // Written at the next change of the registry: a scale.
    expect((await fetch(`${s.management}/models/adder?min_worker=1&synchronous=true`, { method: 'PUT' })).status).toBe(200);
    const [model] = JSON.parse(fs.readFileSync(path.join(workDir, 'snapshot.json'), 'utf8')).models;
    expect(model.measured.copyBytes).toBeGreaterThan(0);
    await s.server.close();
    s = await startServer({ 'model-store': store, 'work-dir': workDir }, {}, { restoreSnapshot: true });
    const described = await json(await fetch(`${s.management}/models/adder`));
    expect(described.status).toBe('READY');
    expect(described.predictedBytes).toBe(model.measured.copyBytes + (model.measured.firstRunBytes ?? 0));
  } finally {
    await s.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
});

test('a restore that cannot bring a model back keeps it in the snapshot, and a restore writes the snapshot once', async () => {
  const store = tempDir('restore-store');
  const workDir = tempDir('restore-work');
  writeModelFolder(path.join(store, 'adder'), addModel([1]));
  const entry = (name: string, url: string) => ({ name, url, workers: 1, batchSize: 1, maxBatchDelayMs: 100, responseTimeoutS: 120, modelVersion: '1.0', isDefault: true });
  const models = [entry('gone', 'missing-folder'), entry('adder', 'adder')];
  fs.writeFileSync(path.join(workDir, 'snapshot.json'), JSON.stringify({ version: 1, savedAt: new Date().toISOString(), models }));
  const s = await startServer({ 'model-store': store, 'work-dir': workDir }, {}, { restoreSnapshot: true });
  try {
    expect((await json(await postJson(`${s.inference}/predictions/adder`, { x: [[1]] }))).y).toEqual([[2]]);
    expect((await fetch(`${s.management}/models/gone`)).status).toBe(404);
    const written = JSON.parse(fs.readFileSync(path.join(workDir, 'snapshot.json'), 'utf8')).models.map((m: { name: string }) => m.name).sort();
    expect(written).toEqual(['adder', 'gone']);
  } finally {
    await s.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
});

test('a run a little past its deadline answers 504 on time but does not end its thread', async () => {
  const s = await startServer({ workers: '1', 'max-worker-threads': '1' });
  try {
    writeFaultyModel(s.store, 'late', { responseTimeoutS: 1 });
    expect((await fetch(`${s.management}/models?url=late`, { method: 'POST' })).status).toBe(200);
    const restarts = async () => {
      const text = await (await fetch(`${s.management}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith('quiver_worker_restarts_total')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    };
    const started = Date.now();
    const slow = await postJson(`${s.inference}/predictions/late`, { x: [[1000]] }, SLOW(1400));
    const took = Date.now() - started;
    expect(slow.status).toBe(504);
    expect(took).toBeLessThan(1350);
    // The run finished within the grace: same thread, and the model still answers.
    await new Promise((r) => setTimeout(r, 700));
    expect(await json(await postJson(`${s.inference}/predictions/late`, { x: [[5]] }))).toEqual({ y: 6 });
    expect(await restarts()).toBe(0);
  } finally {
    await s.close();
  }
});

test('a scale-down waiting for a long request does not hold up other models\' loads', async () => {
  // A third thread for the other model: the two threads of slow2 are busy with its long requests.
  const s = await startServer({ workers: '2', 'max-worker-threads': '3' });
  try {
    writeFaultyModel(s.store, 'slow2', { responseTimeoutS: 30 });
    writeModelFolder(path.join(s.store, 'other'), addModel([7]));
    expect((await fetch(`${s.management}/models?url=slow2&initial_workers=2`, { method: 'POST' })).status).toBe(200);
    // One long request on each copy: whichever the scale-down removes is busy.
    const long = [1, 2].map(() => postJson(`${s.inference}/predictions/slow2`, { x: [[1000]] }, SLOW(3000)));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    expect((await fetch(`${s.management}/models/slow2?min_worker=1&synchronous=true`, { method: 'PUT' })).status).toBe(200);
    expect((await fetch(`${s.management}/models?url=other`, { method: 'POST' })).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await json(await fetch(`${s.management}/models/slow2`))).workers).toHaveLength(1);
    for (const r of await Promise.all(long)) expect(r.status).toBe(200);
    // The removed copy is unloaded once its request is done: the threads hold what the lifecycle counts.
    await new Promise((r) => setTimeout(r, 300));
    const status = await json(await fetch(`${s.management}/status?sessions=true`));
    expect(status.sessions.workers).toBe(status.sessions.lifecycle);
    expect(status.sessions.lifecycle).toBe(2);
  } finally {
    await s.close();
  }
});
