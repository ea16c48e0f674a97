// Which idle models to unload so that a load fits the memory budget: pure functions over plain data.
// LRU is the baseline; GreedyDual-Size-Frequency (GDSF) keeps models that are used often, cheap to
// hold and slow to load, and lets the rest go first.

export type EvictionPolicyName = 'lru' | 'gdsf';

export interface ResidentModel {
  name: string;
  /** Memory its copies take (measured). */
  bytes: number;
  /** How long it took to load: what evicting it costs the next request. */
  loadMs: number;
  /** Requests it answered since it was loaded. */
  hits: number;
  /** When it last answered (any monotonic clock). */
  lastUsed: number;
  /** Requests queued or running, or a load in progress: never evicted. */
  busy: boolean;
}

/** GDSF's clock L: raised to the priority of each model it evicts, so old favourites age out. */
export interface EvictionState {
  inflation: number;
}

export function evictionPriority(m: ResidentModel, policy: EvictionPolicyName, state: EvictionState): number {
  if (policy === 'lru') return m.lastUsed;
  // H = L + frequency × cost / size, with the cost in load milliseconds and the size in MiB.
  return state.inflation + (Math.max(1, m.hits) * Math.max(1, m.loadMs)) / Math.max(1 / 1024, m.bytes / 2 ** 20);
}

export interface EvictionChoice {
  evict: string[];
  freedBytes: number;
  /** GDSF's clock after these evictions. */
  inflation: number;
}

/**
 * The fewest lowest-priority idle models whose memory covers `needBytes`, or undefined when even all
 * idle models together do not.
 */
export function chooseEvictions(models: readonly ResidentModel[], needBytes: number, policy: EvictionPolicyName, state: EvictionState): EvictionChoice | undefined {
  if (needBytes <= 0) return { evict: [], freedBytes: 0, inflation: state.inflation };
  const candidates = models
    .filter((m) => !m.busy)
    .map((m) => ({ m, priority: evictionPriority(m, policy, state) }))
    .sort((a, b) => a.priority - b.priority || a.m.name.localeCompare(b.m.name));
  const evict: string[] = [];
  let freed = 0;
  let inflation = state.inflation;
  for (const { m, priority } of candidates) {
    if (freed >= needBytes) break;
    evict.push(m.name);
    freed += m.bytes;
    if (policy === 'gdsf') inflation = Math.max(inflation, priority);
  }
  return freed >= needBytes ? { evict, freedBytes: freed, inflation } : undefined;
}
