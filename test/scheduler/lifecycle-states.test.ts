import { ModelLifecycle, nextState } from '../../src/scheduler/lifecycle';
import { RequestAdmission } from '../../src/scheduler/admission';
import { autoscaleStep, SHRINK_AFTER_MS } from '../../src/scheduler/autoscale';
import { ModelRegistry } from '../../src/models/registry';
import type { Placement } from '../../src/scheduler/model-description';
import { InternalError, QueueFullError } from '../../src/errors';

function generation(n: number): Placement {
  return {
    generation: n, spec: { key: `m#${n}`, name: 'm', version: '1.0', modelPath: '/m.onnx', config: {} as never },
    hosts: new Map(), inputs: [], outputs: [], leases: 0, cursor: 0, hits: 0, lastUsed: 0, predictedBytes: 0, device: { kind: 'cpu' },
  };
}

describe('the lifecycle table', () => {
  test('a load, an eviction, a reload and an unregistration follow the table; other moves are refused', () => {
    expect(nextState('loading', 'loaded')).toBe('ready');
    expect(nextState('ready', 'evict')).toBe('evicting');
    expect(nextState('evicting', 'evicted')).toBe('evicted');
    expect(nextState('evicted', 'load')).toBe('loading');
    expect(nextState('loading', 'reloadFailed')).toBe('evicted');
    expect(nextState('loading', 'firstLoadFailed')).toBe('failed');
    expect(nextState('ready', 'unregister')).toBe('unloading');
    expect(nextState('unloading', 'unloaded')).toBe('gone');
    expect(nextState('ready', 'loaded')).toBeUndefined();
    expect(nextState('gone', 'load')).toBeUndefined();
    expect(nextState('unloading', 'evict')).toBeUndefined();
  });
});

describe('ModelLifecycle', () => {
  const setup = () => {
    const registry = new ModelRegistry();
    const record = registry.reserve('m', 'm.onnx', false, '1.0');
    const lifecycle = new ModelLifecycle();
    return { record, lifecycle, entry: lifecycle.add(record) };
  };

  test('requests lease only the current generation of a ready version', () => {
    const { lifecycle, entry, record } = setup();
    expect(lifecycle.lease(entry)).toBeUndefined();
    const g1 = generation(lifecycle.beginLoad(entry));
    expect(lifecycle.loaded(entry, g1)).toBe(true);
    expect(record.state).toBe('ready');
    const lease = lifecycle.lease(entry)!;
    expect(lease.placement).toBe(g1);
    expect(g1.leases).toBe(1);
    lease.release();
    lease.release();
    expect(g1.leases).toBe(0);
  });

  test('a leased generation, or one that requests wait for, is not evictable; a released one is', () => {
    const { lifecycle, entry } = setup();
    const g1 = generation(lifecycle.beginLoad(entry));
    lifecycle.loaded(entry, g1);
    const lease = lifecycle.lease(entry)!;
    expect(lifecycle.evictable(entry, g1)).toBe(false);
    lease.release();
    entry.waiting = 1;
    expect(lifecycle.evictable(entry, g1)).toBe(false);
    entry.waiting = 0;
    expect(lifecycle.evictable(entry, g1)).toBe(true);
    lifecycle.move(entry, 'evict');
    expect(lifecycle.lease(entry)).toBeUndefined();
    expect(lifecycle.evictable(entry, g1)).toBe(false);
  });

  test('a load that ends after an unregistration, or after a newer load began, does not become current', () => {
    const { lifecycle, entry, record } = setup();
    const g1 = generation(lifecycle.beginLoad(entry));
    lifecycle.move(entry, 'unregister');
    expect(lifecycle.loaded(entry, g1)).toBe(false);
    expect(record.state).toBe('unloading');
    expect(lifecycle.lease(entry)).toBeUndefined();
    expect(() => lifecycle.move(entry, 'load')).toThrow(InternalError);
    lifecycle.move(entry, 'unloaded');
    expect(lifecycle.entry(record)).toBeUndefined();
  });

  test('idle() resolves when the last lease is released', async () => {
    const { lifecycle, entry } = setup();
    const g1 = generation(lifecycle.beginLoad(entry));
    lifecycle.loaded(entry, g1);
    const a = lifecycle.lease(entry)!;
    const b = lifecycle.lease(entry)!;
    let idle = false;
    const waiting = lifecycle.idle(g1).then(() => (idle = true));
    a.release();
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    b.release();
    await waiting;
    expect(idle).toBe(true);
  });
});

describe('RequestAdmission', () => {
  test('counts per version and in total, and refuses past either limit', () => {
    const admission = new RequestAdmission({ perModel: 2, global: 3 });
    admission.admit('a', 'a');
    admission.admit('a', 'a');
    expect(() => admission.admit('a', 'a')).toThrow(QueueFullError);
    admission.admit('b', 'b');
    expect(() => admission.admit('c', 'c')).toThrow(/max_queued_requests/);
    admission.release('a');
    admission.admit('c', 'c');
    expect(admission.count('a')).toBe(1);
    expect(admission.pending()).toBe(3);
  });
});

describe('autoscaleStep', () => {
  const base = { copies: 1, minWorkers: 1, maxWorkers: 3, queued: 0, idleThreads: 2, fitsOneMore: true, idleForMs: 0 };
  test('grows only with queued work, an idle thread and room in the budget, up to max_worker', () => {
    expect(autoscaleStep({ ...base, queued: 4 })).toBe(1);
    expect(autoscaleStep({ ...base, queued: 4, idleThreads: 0 })).toBe(0);
    expect(autoscaleStep({ ...base, queued: 4, fitsOneMore: false })).toBe(0);
    expect(autoscaleStep({ ...base, queued: 4, copies: 3 })).toBe(0);
    expect(autoscaleStep({ ...base, queued: 1 })).toBe(0);
  });
  test('shrinks toward min_worker only after a quiet spell', () => {
    expect(autoscaleStep({ ...base, copies: 3, idleForMs: SHRINK_AFTER_MS })).toBe(-1);
    expect(autoscaleStep({ ...base, copies: 3, idleForMs: SHRINK_AFTER_MS - 1 })).toBe(0);
    expect(autoscaleStep({ ...base, copies: 1, idleForMs: SHRINK_AFTER_MS })).toBe(0);
  });
  test('min_worker=0: the last copy goes after a quiet spell, and a version at zero is not grown by the timer', () => {
    const scaleToZero = { ...base, minWorkers: 0, maxWorkers: 2 };
    expect(autoscaleStep({ ...scaleToZero, copies: 1, idleForMs: SHRINK_AFTER_MS })).toBe(-1);
    expect(autoscaleStep({ ...scaleToZero, copies: 1, idleForMs: SHRINK_AFTER_MS - 1 })).toBe(0);
    // Its first copy comes with a request (the scheduler's growFromZero), not from the timer.
    expect(autoscaleStep({ ...scaleToZero, copies: 0, idleForMs: SHRINK_AFTER_MS })).toBe(0);
  });
  test('a version below min_worker is brought back up when a thread and the budget allow', () => {
    expect(autoscaleStep({ ...base, copies: 0 })).toBe(1);
    expect(autoscaleStep({ ...base, copies: 0, fitsOneMore: false })).toBe(0);
    expect(autoscaleStep({ ...base, copies: 0, idleThreads: 0 })).toBe(0);
    expect(autoscaleStep({ ...base, copies: 3, queued: 1, idleForMs: SHRINK_AFTER_MS })).toBe(0);
  });
});
