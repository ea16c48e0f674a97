// Which workers host a model, and which worker serves a request: pure functions over plain data.

export interface WorkerLoad {
  id: number;
  /** Models placed on the worker. */
  models: number;
  /** Measured (or predicted) bytes of the models placed on it. */
  bytes: number;
}

const byLoad = (a: WorkerLoad, b: WorkerLoad): number => a.bytes - b.bytes || a.models - b.models || a.id - b.id;

/**
 * Chooses `count` workers for a model, the least loaded first, skipping those that already host it.
 * Every copy costs the model's full weights, so a model is never placed on more workers than asked.
 */
export function placeModel(workers: readonly WorkerLoad[], count: number, alreadyHosting: ReadonlySet<number> = new Set()): number[] {
  return workers
    .filter((w) => !alreadyHosting.has(w.id))
    .sort(byLoad)
    .slice(0, Math.max(0, count))
    .map((w) => w.id);
}

/**
 * Threads to start for a model's `count` copies before placing them: a copy goes on a thread of its own
 * while the pool may grow (as MMS gives each worker a process), so the OS shares the cores between
 * models and a small model never queues behind a big one's runs; past `maxThreads`, copies share.
 */
export function threadsToAdd(workers: readonly WorkerLoad[], count: number, alreadyHosting: ReadonlySet<number>, maxThreads: number): number {
  const emptyFree = workers.filter((w) => w.models === 0 && !alreadyHosting.has(w.id)).length;
  const wanted = Math.max(0, count - emptyFree);
  return Math.max(0, Math.min(wanted, maxThreads - workers.length));
}

/** Chooses `count` of a model's hosts to give it up: the most loaded first. */
export function chooseRemovals(hosts: readonly WorkerLoad[], count: number): number[] {
  return [...hosts].sort((a, b) => byLoad(b, a)).slice(0, Math.max(0, count)).map((w) => w.id);
}

export interface HostState {
  id: number;
  /** Tasks of any model the worker is running or has queued. */
  inFlight: number;
}

/** The host with the fewest tasks; ties go round-robin from `cursor` so equal hosts share the load. */
export function pickWorker(hosts: readonly HostState[], cursor: number): number | undefined {
  if (hosts.length === 0) return undefined;
  let best: HostState | undefined;
  for (let i = 0; i < hosts.length; i++) {
    const host = hosts[(cursor + i) % hosts.length];
    if (!best || host.inFlight < best.inFlight) best = host;
  }
  return best!.id;
}
