import { chooseEvictions, evictionPriority, ResidentModel } from '../../src/scheduler/eviction';

const MiB = 2 ** 20;
const model = (name: string, o: Partial<ResidentModel> = {}): ResidentModel => ({ name, bytes: 10 * MiB, loadMs: 100, hits: 1, lastUsed: 0, busy: false, ...o });

describe('chooseEvictions', () => {
  test('LRU evicts the least recently used first, just enough to fit', () => {
    const models = [model('a', { lastUsed: 30 }), model('b', { lastUsed: 10 }), model('c', { lastUsed: 20 })];
    expect(chooseEvictions(models, 15 * MiB, 'lru', { inflation: 0 })).toMatchObject({ evict: ['b', 'c'], freedBytes: 20 * MiB });
    expect(chooseEvictions(models, 1, 'lru', { inflation: 0 })!.evict).toEqual(['b']);
    expect(chooseEvictions(models, 0, 'lru', { inflation: 0 })!.evict).toEqual([]);
  });

  test('never evicts a busy model; undefined when the idle ones cannot make room', () => {
    const models = [model('a', { busy: true, lastUsed: 0 }), model('b', { lastUsed: 5 })];
    expect(chooseEvictions(models, 5 * MiB, 'lru', { inflation: 0 })!.evict).toEqual(['b']);
    expect(chooseEvictions(models, 15 * MiB, 'lru', { inflation: 0 })).toBeUndefined();
  });

  test('GDSF keeps what is used often, small and slow to load; evicts a big rarely used model first', () => {
    const big = model('big', { bytes: 60 * MiB, hits: 2, loadMs: 300, lastUsed: 100 });
    const hot = model('hot', { bytes: 10 * MiB, hits: 50, loadMs: 100, lastUsed: 1 });
    const slow = model('slow', { bytes: 10 * MiB, hits: 2, loadMs: 2000, lastUsed: 2 });
    // LRU would drop `hot` (used least recently); GDSF drops `big`.
    expect(chooseEvictions([big, hot, slow], 5 * MiB, 'lru', { inflation: 0 })!.evict).toEqual(['hot']);
    const choice = chooseEvictions([big, hot, slow], 5 * MiB, 'gdsf', { inflation: 0 })!;
    expect(choice.evict).toEqual(['big']);
    // The clock rises to the evicted model's priority, so models that stop being used age out.
    expect(choice.inflation).toBeCloseTo(evictionPriority(big, 'gdsf', { inflation: 0 }));
  });
});
