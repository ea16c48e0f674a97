import { activatedTime, AHEAD_COVER_MS, chargedTime, LaneState, MAX_TASKS_ON_THREAD, mayPrefetch, nextLane, PREFETCH_MAX_MS, serviceEstimate } from '../../src/scheduler/fair-share';
import { threadsToAdd } from '../../src/scheduler/placement';

/** Runs `lanes` on one thread under the policy until every task ran; returns the order of lane keys. */
function simulate(tasks: { key: string; ms: number; count: number }[]): string[] {
  const lanes = new Map<string, LaneState & { ms: number }>();
  let seq = 0;
  for (const t of tasks) lanes.set(t.key, { key: t.key, queued: t.count, usedMs: 0, headSeq: seq++, ms: t.ms });
  const order: string[] = [];
  for (;;) {
    const key = nextLane([...lanes.values()]);
    if (key === undefined) return order;
    const lane = lanes.get(key)!;
    order.push(key);
    lane.queued--;
    lane.usedMs = chargedTime(lane.usedMs, lane.ms);
    lane.headSeq = seq++;
  }
}

describe('fair share of a worker thread', () => {
  test('a small model queued behind a big one waits for one big run at most', () => {
    // The detector's 8 requests arrived first; FIFO would run all of them before the classifier.
    const order = simulate([{ key: 'det', ms: 200, count: 8 }, { key: 'cls', ms: 2, count: 8 }]);
    expect(order.slice(0, 9)).toEqual(['det', 'cls', 'cls', 'cls', 'cls', 'cls', 'cls', 'cls', 'cls']);
  });

  test('busy models of equal cost take turns', () => {
    expect(simulate([{ key: 'a', ms: 10, count: 3 }, { key: 'b', ms: 10, count: 3 }])).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  test('each busy model gets an equal share of thread time, whatever its run length', () => {
    const order = simulate([{ key: 'big', ms: 100, count: 10 }, { key: 'small', ms: 10, count: 100 }]);
    // Over the first second of thread time each has had about half.
    let used = 0;
    const share = { big: 0, small: 0 };
    for (const k of order) {
      const ms = k === 'big' ? 100 : 10;
      if (used + ms > 1000) break;
      used += ms;
      share[k as 'big' | 'small'] += ms;
    }
    expect(Math.abs(share.big - share.small)).toBeLessThanOrEqual(100);
  });

  test('idle time is not banked: a model back from idle starts at the thread clock', () => {
    expect(activatedTime(5, 400)).toBe(400);
    expect(activatedTime(500, 400)).toBe(500);
  });

  test('ties go to the oldest waiting task; empty lanes are never picked', () => {
    expect(nextLane([{ key: 'late', queued: 1, usedMs: 0, headSeq: 9 }, { key: 'early', queued: 1, usedMs: 0, headSeq: 3 }])).toBe('early');
    expect(nextLane([{ key: 'empty', queued: 0, usedMs: 0, headSeq: 0 }, { key: 'busy', queued: 2, usedMs: 50, headSeq: 1 }])).toBe('busy');
    expect(nextLane([{ key: 'empty', queued: 0, usedMs: 0, headSeq: 0 }])).toBeUndefined();
  });

  test('a weight divides the time charged', () => {
    expect(chargedTime(10, 100, 2)).toBe(60);
    expect(chargedTime(10, -5)).toBe(10);
  });
});

describe('threads for a new model', () => {
  const w = (id: number, models: number) => ({ id, models, bytes: models * 100 });

  test('a model gets a thread of its own while the pool may grow', () => {
    expect(threadsToAdd([w(0, 1), w(1, 1)], 1, new Set(), 8)).toBe(1);
    expect(threadsToAdd([w(0, 1), w(1, 0)], 1, new Set(), 8)).toBe(0);
    expect(threadsToAdd([w(0, 1), w(1, 1)], 3, new Set(), 8)).toBe(3);
  });

  test('past max_worker_threads, copies share threads', () => {
    expect(threadsToAdd([w(0, 1), w(1, 1)], 1, new Set(), 2)).toBe(0);
    expect(threadsToAdd([w(0, 1), w(1, 1), w(2, 1)], 4, new Set(), 5)).toBe(2);
  });

  test('a thread that already hosts the model is not counted as free', () => {
    expect(threadsToAdd([w(0, 0), w(1, 2)], 1, new Set([0]), 8)).toBe(1);
  });
});

describe('sending a task ahead', () => {
  test('only a lane whose runs are known to be short', () => {
    expect(mayPrefetch(undefined)).toBe(false);
    expect(mayPrefetch(2)).toBe(true);
    expect(mayPrefetch(PREFETCH_MAX_MS)).toBe(true);
    expect(mayPrefetch(200)).toBe(false);
  });

  test('on a thread of its own, a lane sends any task ahead once its run time is known', () => {
    expect(mayPrefetch(200, false)).toBe(true);
    expect(mayPrefetch(undefined, false)).toBe(false);
    expect(mayPrefetch(200, true)).toBe(false);
  });

  test('on a shared thread, one task at most waits behind the running one', () => {
    expect(mayPrefetch(1, true, 0)).toBe(true);
    expect(mayPrefetch(1, true, 1)).toBe(false);
  });

  test('on a thread of its own, short tasks go ahead until they cover the main thread\'s slice', () => {
    const sent = (ms: number) => {
      let ahead = 0;
      while (mayPrefetch(ms, false, ahead)) ahead++;
      return ahead;
    };
    // A 1 ms model keeps as many waiting as the thread takes; a 3 ms one two (3 ms < the cover, 6 ms not).
    expect(sent(1)).toBe(MAX_TASKS_ON_THREAD - 1);
    expect(sent(3)).toBe(2);
    expect(3 * 2).toBeGreaterThanOrEqual(AHEAD_COVER_MS);
    // A long model, one: its run alone covers the hand-over.
    expect(sent(20)).toBe(1);
    expect(sent(200)).toBe(1);
  });

  test('the expected run time follows the runs within a few', () => {
    let expected = serviceEstimate(undefined, 2);
    expect(expected).toBe(2);
    for (let i = 0; i < 12; i++) expected = serviceEstimate(expected, 200);
    expect(expected).toBeGreaterThan(190);
    expect(mayPrefetch(expected)).toBe(false);
    for (let i = 0; i < 16; i++) expected = serviceEstimate(expected, 2);
    expect(mayPrefetch(expected)).toBe(true);
  });
});
