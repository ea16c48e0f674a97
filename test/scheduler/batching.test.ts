import { canBatch, decideBatch, rowGroups } from '../../src/scheduler/batching';
import { splitOutputs, stackFeeds } from '../../src/workers/inference';

const base = { queued: 0, oldestWaitMs: 0, batchSize: 8, maxBatchDelayMs: 10, idleHosts: 1, running: 1, inFlight: 6 };

describe('decideBatch', () => {
  test('a full batch goes at once', () => {
    expect(decideBatch({ ...base, queued: 8, inFlight: 8 })).toEqual({ action: 'dispatch', count: 8 });
    expect(decideBatch({ ...base, queued: 20, inFlight: 8 })).toEqual({ action: 'dispatch', count: 8 });
  });

  test('a batch short of its host\'s share waits out max_batch_delay from its oldest request, then goes', () => {
    expect(decideBatch({ ...base, queued: 3, oldestWaitMs: 4 })).toEqual({ action: 'wait', ms: 6 });
    expect(decideBatch({ ...base, queued: 3, oldestWaitMs: 10 })).toEqual({ action: 'dispatch', count: 3 });
    expect(decideBatch({ ...base, queued: 1, maxBatchDelayMs: 0 })).toEqual({ action: 'dispatch', count: 1 });
    // Past max_batch_delay nothing is held back for the other host: all of it goes, up to batch_size.
    expect(decideBatch({ ...base, queued: 5, inFlight: 1, oldestWaitMs: 2 })).toEqual({ action: 'dispatch', count: 3 });
    expect(decideBatch({ ...base, queued: 5, inFlight: 1, oldestWaitMs: 10 })).toEqual({ action: 'dispatch', count: 5 });
    expect(decideBatch({ ...base, queued: 12, inFlight: 1, oldestWaitMs: 10 })).toEqual({ action: 'dispatch', count: 8 });
  });

  test('a batch goes to an idle host once it holds that host\'s share of the queued and in-flight requests', () => {
    // 6 run on the other host: 4 queued wait (10 in sight, a share of 5); 5 go, and so do 6.
    expect(decideBatch({ ...base, queued: 4, oldestWaitMs: 2 })).toEqual({ action: 'wait', ms: 8 });
    expect(decideBatch({ ...base, queued: 5, oldestWaitMs: 2 })).toEqual({ action: 'dispatch', count: 5 });
    expect(decideBatch({ ...base, queued: 6, oldestWaitMs: 2 })).toEqual({ action: 'dispatch', count: 6 });
    // It takes its share rounded up, no more: the rest waits for the other host.
    expect(decideBatch({ ...base, queued: 7, oldestWaitMs: 2, batchSize: 32 })).toEqual({ action: 'dispatch', count: 7 });
    expect(decideBatch({ ...base, queued: 10, oldestWaitMs: 2, batchSize: 32 })).toEqual({ action: 'dispatch', count: 8 });
    // Three hosts, two of them idle, 8 in flight: 3 queued make a share (11 / 3); 2 do not.
    expect(decideBatch({ ...base, queued: 4, idleHosts: 2, running: 1, inFlight: 8 })).toEqual({ action: 'dispatch', count: 4 });
    expect(decideBatch({ ...base, queued: 3, idleHosts: 2, running: 1, inFlight: 8 })).toEqual({ action: 'dispatch', count: 3 });
    expect(decideBatch({ ...base, queued: 2, idleHosts: 2, running: 1, inFlight: 8 })).toEqual({ action: 'wait', ms: 10 });
  });

  test('nothing running: a burst goes at once, spread over the idle hosts', () => {
    expect(decideBatch({ ...base, queued: 2, running: 0, inFlight: 0, idleHosts: 2 })).toEqual({ action: 'dispatch', count: 1 });
    expect(decideBatch({ ...base, queued: 1, running: 0, inFlight: 0, idleHosts: 2 })).toEqual({ action: 'dispatch', count: 1 });
    expect(decideBatch({ ...base, queued: 5, running: 0, inFlight: 0, idleHosts: 1 })).toEqual({ action: 'dispatch', count: 5 });
    expect(decideBatch({ ...base, queued: 30, running: 0, inFlight: 0, idleHosts: 2 })).toEqual({ action: 'dispatch', count: 8 });
    // Three on two idle hosts: two go to the first, and the last one does not wait behind them.
    expect(decideBatch({ ...base, queued: 3, running: 0, inFlight: 0, idleHosts: 2 })).toEqual({ action: 'dispatch', count: 2 });
    expect(decideBatch({ ...base, queued: 1, running: 1, inFlight: 2, idleHosts: 1 })).toEqual({ action: 'dispatch', count: 1 });
  });

  test('nothing goes while every host is busy, or when nothing is queued', () => {
    expect(decideBatch({ ...base, queued: 8, idleHosts: 0 })).toEqual({ action: 'idle' });
    expect(decideBatch({ ...base, queued: 0 })).toEqual({ action: 'idle' });
  });

  test('only models with a free batch dimension batch', () => {
    expect(canBatch([['N', 3], ['batch', 2]])).toBe(true);
    expect(canBatch([[-1, 3]])).toBe(true);
    expect(canBatch([[1, 3]])).toBe(false);
    expect(canBatch([['N', 3], [1, 2]])).toBe(false);
    expect(canBatch([])).toBe(false);
  });
});

describe('rowGroups', () => {
  test('consecutive runs of at most max rows, in order; a bigger request alone', () => {
    expect(rowGroups([3, 3, 3, 3], 8)).toEqual([[0, 1], [2, 3]]);
    expect(rowGroups([1, 1, 1, 1, 1, 1, 1, 1, 1], 8)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [8]]);
    expect(rowGroups([2, 10, 2, 6], 8)).toEqual([[0], [1], [2, 3]]);
    expect(rowGroups([4, 4], Infinity)).toEqual([[0, 1]]);
    expect(rowGroups([], 8)).toEqual([]);
  });
});

describe('stacking and splitting', () => {
  const feed = (rows: number[][]) => ({ x: { type: 'float32' as const, dims: [rows.length, rows[0].length], data: new Float32Array(rows.flat()) } });

  test('stacks along dimension 0 and gives each request its own rows back', () => {
    const stacked = stackFeeds([feed([[1, 2]]), feed([[3, 4], [5, 6]]), feed([[7, 8]])])!;
    expect(stacked.rows).toEqual([1, 2, 1]);
    expect(stacked.feeds.x.dims).toEqual([4, 2]);
    expect(Array.from(stacked.feeds.x.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const parts = splitOutputs({ y: { type: 'float32', dims: [4, 2], data: new Float32Array([10, 20, 30, 40, 50, 60, 70, 80]) } }, stacked.rows)!;
    expect(parts.map((p) => Array.from(p.y.data as Float32Array))).toEqual([[10, 20], [30, 40, 50, 60], [70, 80]]);
    expect(parts[1].y.dims).toEqual([2, 2]);
  });

  test('refuses to stack inputs that differ beyond dimension 0, and outputs that are not batched', () => {
    expect(stackFeeds([feed([[1, 2]]), feed([[1, 2, 3]])])).toBeUndefined();
    expect(splitOutputs({ y: { type: 'float32', dims: [1], data: new Float32Array([1]) } }, [1, 1])).toBeUndefined();
  });
});
