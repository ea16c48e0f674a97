// Reads, four times a second, the CPU time each worker thread and the main thread used, charges it to
// the models they served and sets each thread's pace for its models (the policy is cpu-share.ts).
import type { LaneUsage } from '../workers/pool';
import { threadCpuMs } from '../workers/thread-cpu';
import { ModelCpu, mainThreadShares, nextPaces } from './cpu-share';

export const PACER_INTERVAL_MS = 250;
/** Weight of the newest reading in each model's CPU figure: about a second of memory. */
const SMOOTHING = 0.3;
/** A model whose threads were busy this much of the time is backlogged even with nothing waiting at the reading. */
const BUSY_FRACTION = 0.9;

/** What the pacer needs of a worker slot. */
export interface PacedSlot {
  readonly tid: number | undefined;
  takeUsage(): Map<string, LaneUsage>;
  setPaces(paces: ReadonlyMap<string, number>): void;
}

export interface PacerSources {
  /** CPU ms a thread has used; undefined when it cannot be read. */
  threadCpuMs(tid: number): number | undefined;
  /** The main thread's id (the process id on Linux). */
  mainTid: number;
  now(): number;
}

const procSources: PacerSources = { threadCpuMs, mainTid: process.pid, now: () => performance.now() };

export class CpuPacer {
  private readonly lastCpu = new Map<number, number>();
  private lastAt: number;
  private readonly cores = new Map<string, number>();
  private paces = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly slots: () => readonly PacedSlot[], private readonly sources: PacerSources = procSources) {
    this.lastAt = sources.now();
  }

  /** Whether this machine lets the pacer read per-thread CPU time. */
  static available(sources: PacerSources = procSources): boolean {
    return sources.threadCpuMs(sources.mainTid) !== undefined;
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), PACER_INTERVAL_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Each model's pace now, for tests and /status. */
  current(): ReadonlyMap<string, number> {
    return this.paces;
  }

  /** One reading: charge the window's CPU to the models, then set the paces. */
  tick(): void {
    const now = this.sources.now();
    const windowMs = now - this.lastAt;
    this.lastAt = now;
    if (windowMs <= 0) return;
    const used = new Map<string, number>();
    const hosts = new Map<string, number>();
    const busy = new Map<string, number>();
    const waiting = new Set<string>();
    const requests = new Map<string, number>();
    const slots = this.slots();
    for (const slot of slots) {
      const usage = slot.takeUsage();
      const cpu = slot.tid === undefined ? undefined : this.cpuDelta(slot.tid);
      let slotBusy = 0;
      for (const u of usage.values()) slotBusy += u.busyMs;
      for (const [key, u] of usage) {
        hosts.set(key, (hosts.get(key) ?? 0) + 1);
        busy.set(key, (busy.get(key) ?? 0) + u.busyMs);
        requests.set(key, (requests.get(key) ?? 0) + u.requests);
        if (u.waiting > 0) waiting.add(key);
        // The thread's CPU goes to its models by the time each held it.
        if (cpu !== undefined && slotBusy > 0) used.set(key, (used.get(key) ?? 0) + (cpu * u.busyMs) / slotBusy);
      }
    }
    const live = new Set([this.sources.mainTid, ...slots.map((s) => s.tid)]);
    for (const tid of this.lastCpu.keys()) if (!live.has(tid)) this.lastCpu.delete(tid);
    const main = this.cpuDelta(this.sources.mainTid);
    if (main !== undefined) for (const [key, ms] of mainThreadShares(main, requests)) used.set(key, (used.get(key) ?? 0) + ms);
    const models: ModelCpu[] = [];
    for (const [key, n] of hosts) {
      const cores = (used.get(key) ?? 0) / windowMs;
      const smoothed = this.cores.has(key) ? this.cores.get(key)! * (1 - SMOOTHING) + cores * SMOOTHING : cores;
      this.cores.set(key, smoothed);
      models.push({ key, usedCores: smoothed, maxCores: n, backlogged: waiting.has(key) || (busy.get(key) ?? 0) >= BUSY_FRACTION * windowMs * n });
    }
    for (const key of this.cores.keys()) if (!hosts.has(key)) this.cores.delete(key);
    // Pacing is between models: with fewer than two busy ones, nobody is held back.
    const contended = models.filter((m) => m.backlogged).length >= 2;
    const paces = contended ? nextPaces(models, this.paces) : new Map([...this.paces].filter(([key]) => hosts.has(key)).map(([key, p]) => [key, p]));
    const applied = contended ? paces : new Map<string, number>();
    this.paces = paces;
    for (const slot of slots) slot.setPaces(applied);
  }

  private cpuDelta(tid: number): number | undefined {
    const ms = this.sources.threadCpuMs(tid);
    if (ms === undefined) return undefined;
    const before = this.lastCpu.get(tid);
    this.lastCpu.set(tid, ms);
    return before === undefined ? undefined : Math.max(0, ms - before);
  }
}
