// The main thread's collection after unloads: at once, then at most once per gap, the last of a burst
// never dropped; nothing without V8's gc extension.
import { GarbageCollector, GcFunction } from '../../src/scheduler/garbage-collection';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function counting(): { gc: GcFunction; calls: unknown[] } {
  const calls: unknown[] = [];
  return { gc: (options) => calls.push(options), calls };
}

test('the first unload collects at once, incrementally', () => {
  const { gc, calls } = counting();
  new GarbageCollector(gc, 5000, () => Date.now()).soon();
  expect(calls).toEqual([{ type: 'major', execution: 'async' }]);
});

test('a burst of unloads collects once now and once when the gap is over', () => {
  const { gc, calls } = counting();
  const collector = new GarbageCollector(gc, 5000, () => Date.now());
  collector.soon();
  for (let i = 0; i < 20; i++) {
    jest.advanceTimersByTime(100);
    collector.soon();
  }
  expect(calls).toHaveLength(1);
  jest.advanceTimersByTime(2999);
  expect(calls).toHaveLength(1);
  jest.advanceTimersByTime(1);
  expect(calls).toHaveLength(2);
  // Quiet after that: nothing more is collected.
  jest.advanceTimersByTime(60_000);
  expect(calls).toHaveLength(2);
  collector.soon();
  expect(calls).toHaveLength(3);
});

test('stop drops a collection still waiting for its gap', () => {
  const { gc, calls } = counting();
  const collector = new GarbageCollector(gc, 5000, () => Date.now());
  collector.soon();
  collector.soon();
  collector.stop();
  jest.advanceTimersByTime(10_000);
  expect(calls).toHaveLength(1);
});

test('without --expose-gc there is nothing to call, and no timer is left', () => {
  const collector = new GarbageCollector(undefined);
  expect(collector.available).toBe(false);
  collector.soon();
  expect(jest.getTimerCount()).toBe(0);
});

test('the gc V8 exposes takes these options and collects', async () => {
  // This test runs without --expose-gc, so the extension is turned on for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('node:v8').setFlagsFromString('--expose-gc');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gc = require('node:vm').runInNewContext('gc') as GcFunction;
  jest.useRealTimers();
  // An incremental collection answers with a promise (of the context gc came from) that it settles.
  const done = gc({ type: 'major', execution: 'async' }) as PromiseLike<void>;
  expect(typeof done.then).toBe('function');
  await done;
});
