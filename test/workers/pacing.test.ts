// A worker slot's pacing with a real thread and a real onnxruntime session: a paced model's thread
// waits after its runs, an unpaced one does not, and what each model used is counted for the pacer.
import * as path from 'node:path';
import { ModelRegistry } from '../../src/models/registry';
import { ModelScheduler } from '../../src/scheduler/scheduler';
import { WorkerPool } from '../../src/workers/pool';
import { scaleModel, writeModelFolder } from '../fixtures/onnx-models';
import { tempDir } from '../fixtures/server';

const N = 256;
const ROWS = 96;
const json = JSON.stringify({ x: Array.from({ length: ROWS }, (_, i) => Array.from({ length: N }, (_, j) => (i + j) % 7)) });
// A body of its own each: the pool moves bodies to the thread.
const request = () => ({ body: Buffer.from(json), contentType: 'application/json', requestId: 't', enqueuedAt: Date.now() });

describe('pacing on a worker thread', () => {
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'a'), scaleModel(N, 2));
  const pool = new WorkerPool(1, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e7, preprocessBackend: 'auto', heapLimitMb: 0 });
  const scheduler = new ModelScheduler(new ModelRegistry(), pool, {
    modelStore: store, workDir: tempDir('work'), maxArchiveBytes: 1e8, defaultWorkersPerModel: 1, jobQueueSize: 100,
  });
  afterAll(() => scheduler.close());

  /** Runs `n` requests queued at once; returns the wall time and the busy time the slot counted. */
  async function burst(n: number): Promise<{ wallMs: number; busyMs: number; requests: number }> {
    const slot = pool.slots[0];
    slot.takeUsage();
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: n }, () => scheduler.infer('a', undefined, request())));
    const wallMs = performance.now() - t0;
    for (const a of answers) expect(JSON.parse(a.body).y[1][0]).toBe(2);
    const usage = [...slot.takeUsage().values()];
    expect(usage).toHaveLength(1);
    return { wallMs, busyMs: usage[0].busyMs, requests: usage[0].requests };
  }

  test('a paced model\'s thread waits about its pace times its run time; unpaced, it runs back to back', async () => {
    await scheduler.register({ url: 'a' });
    await burst(4);
    const slot = pool.slots[0];
    const key = [...(await (async () => {
      await scheduler.infer('a', undefined, request());
      return slot.takeUsage();
    })()).keys()][0];

    const free = await burst(24);
    expect(free.requests).toBe(24);
    expect(free.wallMs - free.busyMs).toBeLessThan(0.5 * free.busyMs);

    slot.setPaces(new Map([[key, 1]]));
    const paced = await burst(24);
    expect(paced.requests).toBe(24);
    // A pace of 1: as long waiting as running, less the debt still short of a hold at the end.
    expect(paced.wallMs - paced.busyMs).toBeGreaterThan(0.6 * paced.busyMs);

    // Lifted: no hold is left over.
    slot.setPaces(new Map());
    const lifted = await burst(24);
    expect(lifted.wallMs - lifted.busyMs).toBeLessThan(0.5 * lifted.busyMs);
  });
});
