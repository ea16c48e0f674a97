// How much of the machine each busy model gets when models run on threads of their own. The OS gives
// each busy thread an equal share of the cores (as it gives MMS's process per worker), but the main
// thread's HTTP and hand-over work, about 0.3 ms a request, is done for every model's requests and
// charged to none: a small model with thousands of requests a second takes most of the main thread on
// top of its own thread's share. Each model is charged its threads' time plus the main thread's in
// proportion to its requests, and a model above its share while another busy model is below it is paced:
// its thread waits a little after its runs, and the OS gives that time to the others (Triton's rate
// limiter, done with measured CPU time). Pure functions over plain data.

export interface ModelCpu {
  key: string;
  /** Cores it used lately: its threads' time plus its part of the main thread's. */
  usedCores: number;
  /** Most it can use: one core per thread that hosts it (onnxruntime runs on that thread). */
  maxCores: number;
  /** Whether it had work waiting, so that more CPU would have served it sooner. */
  backlogged: boolean;
}

/**
 * Fair shares of the cores in use: models without a backlog keep what they use, busy models split the rest
 * in proportion to the threads that host them (MMS gives each worker a process, and the OS each process an
 * equal share), none above one core a thread.
 */
export function fairCores(models: readonly ModelCpu[]): Map<string, number> {
  const shares = new Map<string, number>();
  let left = 0;
  for (const m of models) left += m.usedCores;
  for (const m of models) {
    if (!m.backlogged) {
      shares.set(m.key, m.usedCores);
      left -= m.usedCores;
    }
  }
  const open = models.filter((m) => m.backlogged && m.maxCores > 0);
  for (const m of models) if (m.backlogged && m.maxCores <= 0) shares.set(m.key, 0);
  let threads = 0;
  for (const m of open) threads += m.maxCores;
  // Threads are the weights and the caps alike: past one core a thread, every busy model is at its cap.
  const perThread = threads > 0 ? Math.min(1, Math.max(0, left) / threads) : 0;
  for (const m of open) shares.set(m.key, perThread * m.maxCores);
  return shares;
}

/** How far from its share a model may be before it is paced, or its pace eased (5%: noise, not unfairness). */
export const SHARE_TOLERANCE = 0.05;
/** Pace added or taken away per reading: from none to the most in about 20 readings (5 s at 4 a second). */
export const PACE_STEP = 0.025;
/** The most a model is paced: its thread waits half its run time after each run (two thirds of its speed). */
export const MAX_PACE = 0.5;

/**
 * Each model's next pace, the fraction of its run time its thread waits after a run. A busy model above
 * its fair share gains pace only while a busy model below its share could take the freed time; otherwise
 * pace eases off, so that a model alone, or a machine no model can fill, is never held back.
 */
export function nextPaces(models: readonly ModelCpu[], paces: ReadonlyMap<string, number>): Map<string, number> {
  const shares = fairCores(models);
  const starved = models.some((m) => m.backlogged && m.usedCores < (shares.get(m.key) ?? 0) * (1 - SHARE_TOLERANCE) && m.usedCores < m.maxCores * (1 - SHARE_TOLERANCE));
  const next = new Map<string, number>();
  for (const m of models) {
    const pace = paces.get(m.key) ?? 0;
    const over = m.backlogged && m.usedCores > (shares.get(m.key) ?? 0) * (1 + SHARE_TOLERANCE);
    const eased = Math.max(0, pace - PACE_STEP);
    next.set(m.key, starved && over ? Math.min(MAX_PACE, pace + PACE_STEP) : over ? pace : eased);
  }
  return next;
}

/**
 * Splits the main thread's CPU over the models by their requests: its work per request (HTTP, the hand-over)
 * is about the same whatever the model.
 */
export function mainThreadShares(mainMs: number, requests: ReadonlyMap<string, number>): Map<string, number> {
  let total = 0;
  for (const n of requests.values()) total += n;
  const shares = new Map<string, number>();
  for (const [key, n] of requests) shares.set(key, total > 0 ? (mainMs * n) / total : 0);
  return shares;
}
