// The one owner of each model version's load state. A version moves through a fixed set of states;
// each load makes a new generation (its own worker sessions, keyed by generation); a request leases
// the generation it runs on, and eviction, unload and scale act on a generation only when its leases
// allow. The transitions are a pure table, tested without threads.
import { InternalError } from '../errors';
import type { ModelRecord, ModelState } from '../models/registry';
import type { Placement } from './model-description';

export type LifecycleEvent = 'load' | 'loaded' | 'firstLoadFailed' | 'reloadFailed' | 'evict' | 'evicted' | 'unregister' | 'unloaded';

const TRANSITIONS: Record<ModelState, Partial<Record<LifecycleEvent, ModelState>>> = {
  loading: { loaded: 'ready', firstLoadFailed: 'failed', reloadFailed: 'evicted', unregister: 'unloading' },
  ready: { evict: 'evicting', unregister: 'unloading' },
  evicting: { evicted: 'evicted', unregister: 'unloading' },
  evicted: { load: 'loading', unregister: 'unloading' },
  unloading: { unloaded: 'gone' },
  failed: { unregister: 'gone' },
  gone: {},
};

/** The state `event` leads to from `state`; undefined when the table has no such move. */
export function nextState(state: ModelState, event: LifecycleEvent): ModelState | undefined {
  return TRANSITIONS[state][event];
}

/** A request's hold on the generation it runs on; released exactly once. */
export interface Lease {
  readonly placement: Placement;
  release(): void;
}

export interface LifeEntry {
  readonly record: ModelRecord;
  /** The generation of the latest load (0: never loaded). */
  generation: number;
  /** The generation requests may lease: set from `loaded` until `evict` or `unregister`. */
  current?: Placement;
  /** The load, eviction or unload in progress; requests that find the model not ready wait for it. */
  transition?: Promise<unknown>;
  /** Requests waiting for a load: while any wait, the version is busy and no other load may evict it. */
  waiting: number;
}

export class ModelLifecycle {
  private readonly entries = new Map<string, LifeEntry>();
  private readonly idleWaiters = new Map<Placement, (() => void)[]>();

  add(record: ModelRecord): LifeEntry {
    const entry: LifeEntry = { record, generation: 0, waiting: 0 };
    this.entries.set(record.id, entry);
    return entry;
  }

  /** Forgets a version that never became registered (its first open or load failed). */
  remove(entry: LifeEntry): void {
    if (this.entries.get(entry.record.id) === entry) this.entries.delete(entry.record.id);
  }

  entry(record: ModelRecord): LifeEntry | undefined {
    return this.entries.get(record.id);
  }

  all(): LifeEntry[] {
    return [...this.entries.values()];
  }

  /** Makes a move of the table; a move it lacks is a bug in the caller, never a state to be in. */
  move(entry: LifeEntry, event: LifecycleEvent): void {
    const to = nextState(entry.record.state, event);
    if (to === undefined) throw new InternalError(`model "${entry.record.name}": no move "${event}" from ${entry.record.state}`);
    entry.record.state = to;
    if (event === 'evict' || event === 'unregister') entry.current = undefined;
    if (to === 'gone') this.entries.delete(entry.record.id);
  }

  /** Starts a load: the next generation's number. */
  beginLoad(entry: LifeEntry): number {
    if (entry.record.state !== 'loading') this.move(entry, 'load');
    return ++entry.generation;
  }

  /** A load finished: its generation is the one requests lease, unless a newer load or an unregistration came. */
  loaded(entry: LifeEntry, placement: Placement): boolean {
    if (entry.record.state !== 'loading' || placement.generation !== entry.generation) return false;
    this.move(entry, 'loaded');
    entry.current = placement;
    return true;
  }

  /** Takes a lease at once when the version is ready (no turn of the event loop in which it could go). */
  lease(entry: LifeEntry): Lease | undefined {
    const placement = entry.current;
    if (entry.record.state !== 'ready' || !placement) return undefined;
    placement.leases++;
    let released = false;
    return {
      placement,
      release: () => {
        if (released) return;
        released = true;
        placement.leases--;
        if (placement.leases === 0) this.wakeIdle(placement);
      },
    };
  }

  /** Whether an eviction of this generation may begin now: the current one, no leases, nobody waiting. */
  evictable(entry: LifeEntry, placement: Placement): boolean {
    return entry.record.state === 'ready' && entry.current === placement && placement.leases === 0 && entry.waiting === 0;
  }

  /** Resolves once nobody holds a lease on the generation (at once when nobody does). */
  idle(placement: Placement): Promise<void> {
    if (placement.leases === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.idleWaiters.get(placement) ?? [];
      list.push(resolve);
      this.idleWaiters.set(placement, list);
    });
  }

  private wakeIdle(placement: Placement): void {
    const list = this.idleWaiters.get(placement);
    if (!list) return;
    this.idleWaiters.delete(placement);
    for (const wake of list) wake();
  }
}
