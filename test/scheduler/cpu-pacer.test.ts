// The pacer's readings with made-up threads: what it charges each model and which paces it sets.
import { CpuPacer, PACER_INTERVAL_MS, PacedSlot, PacerSources } from '../../src/scheduler/cpu-pacer';
import { PACE_STEP } from '../../src/scheduler/cpu-share';
import type { LaneUsage } from '../../src/workers/pool';

class FakeSlot implements PacedSlot {
  usage = new Map<string, LaneUsage>();
  applied: ReadonlyMap<string, number> = new Map();
  constructor(readonly tid: number) {}
  takeUsage(): Map<string, LaneUsage> {
    const u = this.usage;
    this.usage = new Map();
    return u;
  }
  setPaces(paces: ReadonlyMap<string, number>): void {
    this.applied = paces;
  }
}

/** Threads whose CPU clocks the test moves: `run` adds a window in which each thread used `ms`. */
function machine() {
  const cpu = new Map<number, number>([[1, 0]]);
  let now = 0;
  const sources: PacerSources = { threadCpuMs: (tid) => cpu.get(tid), mainTid: 1, now: () => now };
  return {
    sources,
    advance(used: Record<number, number>) {
      now += PACER_INTERVAL_MS;
      for (const [tid, ms] of Object.entries(used)) cpu.set(Number(tid), (cpu.get(Number(tid)) ?? 0) + ms);
    },
  };
}

const busyLane = (busyMs: number, requests: number, waiting = 2): LaneUsage => ({ busyMs, requests, waiting });

describe('CpuPacer', () => {
  test('paces the model that takes the main thread\'s time besides its own while a busy one gets less', () => {
    const m = machine();
    const [small, big] = [new FakeSlot(10), new FakeSlot(11)];
    const pacer = new CpuPacer(() => [small, big], m.sources);
    for (let i = 0; i < 8; i++) {
      // Each thread gets 150 ms of CPU a reading; the main thread's 60 ms are nearly all the small model's requests.
      small.usage.set('small', busyLane(250, 200));
      big.usage.set('big', busyLane(250, 1));
      m.advance({ 1: 60, 10: 150, 11: 150 });
      pacer.tick();
    }
    // The first reading only sets the clocks; seven readings each add a step.
    expect(pacer.current().get('small')).toBeCloseTo(7 * PACE_STEP);
    expect(pacer.current().get('big')).toBe(0);
    expect(small.applied.get('small')).toBeCloseTo(7 * PACE_STEP);
    expect(big.applied).toBe(small.applied);
  });

  test('a thread\'s time goes to its models by the time each held it', () => {
    const m = machine();
    const shared = new FakeSlot(10);
    const other = new FakeSlot(11);
    const pacer = new CpuPacer(() => [shared, other], m.sources);
    for (let i = 0; i < 4; i++) {
      // a and b share a thread (a held it 60% of the time), c has one: c is over its share, b under.
      shared.usage.set('a', busyLane(150, 10));
      shared.usage.set('b', busyLane(100, 10));
      other.usage.set('c', busyLane(250, 10));
      m.advance({ 1: 0, 10: 250, 11: 250 });
      pacer.tick();
    }
    expect(pacer.current().get('c')).toBeGreaterThan(0);
    expect(pacer.current().get('a')).toBe(0);
    expect(pacer.current().get('b')).toBe(0);
  });

  test('with one busy model nobody is paced, and paces set before are lifted', () => {
    const m = machine();
    const [small, big] = [new FakeSlot(10), new FakeSlot(11)];
    const pacer = new CpuPacer(() => [small, big], m.sources);
    for (let i = 0; i < 4; i++) {
      small.usage.set('small', busyLane(250, 200));
      big.usage.set('big', busyLane(250, 1));
      m.advance({ 1: 60, 10: 150, 11: 150 });
      pacer.tick();
    }
    expect(small.applied.get('small')).toBeGreaterThan(0);
    // The big model's clients are gone: its thread idles, nothing waits.
    small.usage.set('small', busyLane(250, 200));
    m.advance({ 1: 60, 10: 150, 11: 0 });
    pacer.tick();
    expect(small.applied.size).toBe(0);
  });

  test('a run still going counts as busy: a model that finished nothing in the window is not idle', () => {
    const m = machine();
    const [small, big] = [new FakeSlot(10), new FakeSlot(11)];
    const pacer = new CpuPacer(() => [small, big], m.sources);
    for (let i = 0; i < 4; i++) {
      small.usage.set('small', busyLane(250, 200));
      // No task finished and none waits, but the thread was busy the whole window.
      big.usage.set('big', { busyMs: 250, requests: 0, waiting: 0 });
      m.advance({ 1: 60, 10: 150, 11: 150 });
      pacer.tick();
    }
    expect(pacer.current().get('small')).toBeGreaterThan(0);
  });

  test('is not available where thread CPU time cannot be read', () => {
    expect(CpuPacer.available({ threadCpuMs: () => undefined, mainTid: 1, now: () => 0 })).toBe(false);
  });
});
