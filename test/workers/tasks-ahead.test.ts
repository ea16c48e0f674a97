// A model alone on its thread keeps several short tasks waiting on the thread (fair-share.ts
// mayPrefetch): they run while the main thread is busy elsewhere, instead of one at a time per turn of
// its event loop. Real thread, real session.
import { ModelRegistry } from '../../src/models/registry';
import { ModelScheduler } from '../../src/scheduler/scheduler';
import { MAX_TASKS_ON_THREAD } from '../../src/scheduler/fair-share';
import { WorkerPool } from '../../src/workers/pool';
import { writeFaultyModel } from '../fixtures/fault-models';
import { tempDir } from '../fixtures/server';

const request = (x: number, customAttributes?: string) => ({
  body: Buffer.from(JSON.stringify({ x: [[x]] })), contentType: 'application/json', requestId: 't', enqueuedAt: Date.now(), ...(customAttributes ? { customAttributes } : {}),
});

describe('tasks sent ahead to a thread of its own', () => {
  const store = tempDir('store');
  writeFaultyModel(store, 'faulty');
  const pool = new WorkerPool(1, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e7, preprocessBackend: 'auto', heapLimitMb: 0 });
  const scheduler = new ModelScheduler(new ModelRegistry(), pool, {
    modelStore: store, workDir: tempDir('work'), maxArchiveBytes: 1e8, defaultWorkersPerModel: 1, jobQueueSize: 100,
  });
  afterAll(() => scheduler.close());

  test('run while the main thread is blocked, each with its own answer', async () => {
    await scheduler.register({ url: 'faulty' });
    // The lane learns that its runs are short: from runs back to back on the thread, as a loaded machine
    // (CI's parallel suites) stretches the gaps between runs one at a time, not the runs themselves.
    for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 16 }, (_, i) => scheduler.infer('faulty', undefined, request(i))));
    const slow = scheduler.infer('faulty', undefined, request(1000, 'sleep=200'));
    const quick = Array.from({ length: MAX_TASKS_ON_THREAD - 1 }, (_, i) => scheduler.infer('faulty', undefined, request(10 + i)));
    await new Promise((r) => setTimeout(r, 20));
    // The main thread does nothing for 800 ms: only tasks already on the thread can run meanwhile.
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 800);
    expect(JSON.parse((await slow).body)).toEqual({ y: 1001 });
    const answers = await Promise.all(quick);
    answers.forEach((a, i) => expect(JSON.parse(a.body)).toEqual({ y: 11 + i }));
    // The first always goes ahead on a thread of its own and starts right after the slow run (~200 ms
    // after it was queued), inside the block; sent one at a time it would have waited for the block's end.
    // How many more go with it depends on the run time the lane learned (mayPrefetch, tested on its own),
    // which a loaded machine stretches; those that went ahead are the first ones.
    expect(answers[0].timings.queueMs).toBeLessThan(600);
    const inside = answers.map((a) => a.timings.queueMs < 600);
    expect(inside).toEqual(inside.map((_, i) => i < inside.filter(Boolean).length));
  });
});
