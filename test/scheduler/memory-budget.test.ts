import { InsufficientMemoryError } from '../../src/errors';
import type { ResidentModel } from '../../src/scheduler/eviction';
import { BudgetHost, MemoryBudget } from '../../src/scheduler/memory-budget';

const MiB = 2 ** 20;

/** Placed models as plain data; evicting removes one. */
class FakeHost implements BudgetHost {
  evicted: string[] = [];
  constructor(public models: ResidentModel[]) {}
  usedBytes(): number {
    return this.models.reduce((a, m) => a + m.bytes, 0);
  }
  residents(except: string): ResidentModel[] {
    return this.models.filter((m) => m.name !== except);
  }
  async evict(name: string): Promise<void> {
    this.evicted.push(name);
    this.models = this.models.filter((m) => m.name !== name);
  }
}

const model = (name: string, bytes: number, o: Partial<ResidentModel> = {}): ResidentModel => ({ name, bytes, loadMs: 100, hits: 1, lastUsed: 0, busy: false, ...o });

describe('MemoryBudget.makeRoom', () => {
  test('a victim that gets a request while another is evicted is kept, and the choice is made again', async () => {
    const host = new FakeHost([model('a', 40 * MiB, { lastUsed: 1 }), model('b', 40 * MiB, { lastUsed: 2 }), model('c', 40 * MiB, { lastUsed: 3 })]);
    const evict = host.evict.bind(host);
    // While a goes, b gets a request.
    host.evict = async (name: string) => {
      await evict(name);
      if (name === 'a') host.models = host.models.map((m) => (m.name === 'b' ? { ...m, busy: true } : m));
    };
    await new MemoryBudget({ bytes: 100 * MiB, policy: 'lru' }, host).makeRoom('x', { keepBytes: 60 * MiB });
    // 120 used + 60 = 180: 80 must go. a and b were chosen; b became busy, so c goes instead.
    expect(host.evicted).toEqual(['a', 'c']);
  });

  test('a model larger than the whole budget is told so, not that others are busy', async () => {
    const host = new FakeHost([]);
    await expect(new MemoryBudget({ bytes: 100 * MiB, policy: 'lru' }, host).makeRoom('huge', { keepBytes: 150 * MiB })).rejects.toThrow(/alone needs about 150 MiB, more than the whole 100 MiB memory budget/);
  });

  test('no budget: nothing is evicted', async () => {
    const host = new FakeHost([model('a', 90 * MiB)]);
    await new MemoryBudget({ bytes: 0, policy: 'lru' }, host).makeRoom('new', { keepBytes: 50 * MiB });
    expect(host.evicted).toEqual([]);
  });

  test('evicts idle models by the policy until the load and its peak fit', async () => {
    const host = new FakeHost([model('old', 30 * MiB, { lastUsed: 1 }), model('mid', 30 * MiB, { lastUsed: 2 }), model('new', 30 * MiB, { lastUsed: 3 })]);
    await new MemoryBudget({ bytes: 100 * MiB, policy: 'lru' }, host).makeRoom('x', { keepBytes: 20 * MiB, peakBytes: 25 * MiB });
    // 90 used + 20 kept + 25 peak = 135: two of them must go, least recently used first.
    expect(host.evicted).toEqual(['old', 'mid']);
  });

  test('the peak reserve gives way when only busy models could make room for it; the load still fits', async () => {
    const host = new FakeHost([model('busy', 60 * MiB, { busy: true }), model('idle', 20 * MiB)]);
    await new MemoryBudget({ bytes: 100 * MiB, policy: 'lru', waitMs: 20 }, host).makeRoom('x', { keepBytes: 30 * MiB, peakBytes: 30 * MiB });
    expect(host.evicted).toEqual(['idle']);
  });

  test('waits for a busy model to become idle, then evicts it', async () => {
    const busy = model('busy', 60 * MiB, { busy: true });
    const host = new FakeHost([busy]);
    setTimeout(() => (busy.busy = false), 30);
    await new MemoryBudget({ bytes: 100 * MiB, policy: 'gdsf', waitMs: 5_000 }, host).makeRoom('x', { keepBytes: 50 * MiB });
    expect(host.evicted).toEqual(['busy']);
  });

  test('refuses with InsufficientMemoryError when busy models stay busy, or when even all could not make room', async () => {
    const host = new FakeHost([model('busy', 60 * MiB, { busy: true })]);
    const budget = new MemoryBudget({ bytes: 100 * MiB, policy: 'gdsf', waitMs: 20 }, host);
    await expect(budget.makeRoom('x', { keepBytes: 50 * MiB })).rejects.toBeInstanceOf(InsufficientMemoryError);
    await expect(budget.makeRoom('x', { keepBytes: 50 * MiB, waitForBusy: false })).rejects.toThrow(/budget/);
    await expect(budget.makeRoom('huge', { keepBytes: 200 * MiB })).rejects.toBeInstanceOf(InsufficientMemoryError);
    expect(host.evicted).toEqual([]);
  });
});
