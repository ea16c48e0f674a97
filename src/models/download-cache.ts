// A disk cache of downloaded model artifacts with its own byte budget. Entries are filled in a temporary
// folder and renamed into place only when complete, so a partial or failed download is never used.
// Entries in use by a registered model are pinned; idle ones go least recently used first.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DownloadCacheFullError } from '../errors';
import { log } from '../log';

export interface CacheEntryState {
  key: string;
  bytes: number;
  lastUsedMs: number;
  pins: number;
}

/**
 * Pure policy: the idle entries to remove, least recently used first, so that `incomingBytes` more fit
 * in `budgetBytes` next to `reservedBytes` (downloads in progress). Undefined when even removing every
 * idle entry would not make room.
 */
export function chooseCacheEvictions(
  entries: readonly CacheEntryState[],
  incomingBytes: number,
  reservedBytes: number,
  budgetBytes: number,
): string[] | undefined {
  let used = reservedBytes + entries.reduce((sum, e) => sum + e.bytes, 0);
  if (used + incomingBytes <= budgetBytes) return [];
  const idle = entries.filter((e) => e.pins === 0).sort((a, b) => a.lastUsedMs - b.lastUsedMs);
  const chosen: string[] = [];
  for (const entry of idle) {
    if (used + incomingBytes <= budgetBytes) break;
    chosen.push(entry.key);
    used -= entry.bytes;
  }
  return used + incomingBytes <= budgetBytes ? chosen : undefined;
}

export interface CacheStatus {
  root: string;
  budgetBytes: number;
  usedBytes: number;
  entries: number;
}

interface Meta {
  key: string;
  label: string;
  bytes: number;
}

const ENTRY_PREFIX = 'entry-';
const TEMP_PREFIX = 'tmp-';
const META_FILE = 'meta.json';
// The artifact sits beside the meta file, so the model folder holds nothing of the cache's.
const ARTIFACT = 'artifact';

async function sizeOnDisk(target: string): Promise<number> {
  const stat = await fsp.lstat(target);
  if (!stat.isDirectory()) return stat.size;
  let total = 0;
  for (const name of await fsp.readdir(target)) total += await sizeOnDisk(path.join(target, name));
  return total;
}

export class DownloadCache {
  private readonly entries = new Map<string, CacheEntryState & { dir: string }>();
  private readonly filling = new Map<string, Promise<void>>();
  /** Entries whose folder is being deleted: a fill of the same key waits, as it renames into that path. */
  private readonly removing = new Map<string, Promise<void>>();
  private reservedBytes = 0;
  private opened: Promise<void> | undefined;

  constructor(
    readonly root: string,
    readonly budgetBytes: number,
  ) {}

  /** Reads what an earlier run left: complete entries are kept, temporary folders removed. */
  open(): Promise<void> {
    this.opened ??= this.scan();
    return this.opened;
  }

  private async scan(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    for (const name of await fsp.readdir(this.root)) {
      const full = path.join(this.root, name);
      if (!name.startsWith(ENTRY_PREFIX)) {
        if (name.startsWith(TEMP_PREFIX)) await fsp.rm(full, { recursive: true, force: true });
        continue;
      }
      try {
        const meta = JSON.parse(await fsp.readFile(path.join(full, META_FILE), 'utf8')) as Meta;
        const stat = await fsp.stat(path.join(full, META_FILE));
        if (`${ENTRY_PREFIX}${meta.key}` !== name || !Number.isFinite(meta.bytes)) throw new Error('meta does not match');
        await fsp.access(path.join(full, ARTIFACT));
        this.entries.set(meta.key, { key: meta.key, bytes: meta.bytes, lastUsedMs: stat.mtimeMs, pins: 0, dir: full });
      } catch {
        // Written before the meta file, so an entry without a readable one is not complete.
        await fsp.rm(full, { recursive: true, force: true });
      }
    }
  }

  status(): CacheStatus {
    let usedBytes = this.reservedBytes;
    for (const e of this.entries.values()) usedBytes += e.bytes;
    return { root: this.root, budgetBytes: this.budgetBytes, usedBytes, entries: this.entries.size };
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * The folder for `key`, filled by `fill` (which must create the folder it is given) unless a complete
   * entry exists. The entry is pinned until `release(key)`. Concurrent calls for one key share one fill.
   */
  async acquire(key: string, expectedBytes: number, label: string, fill: (dir: string) => Promise<void>): Promise<string> {
    await this.open();
    for (;;) {
      const entry = this.entries.get(key);
      if (entry) {
        entry.pins += 1;
        entry.lastUsedMs = Date.now();
        await fsp.utimes(path.join(entry.dir, META_FILE), new Date(), new Date()).catch(() => undefined);
        return path.join(entry.dir, ARTIFACT);
      }
      const removal = this.removing.get(key);
      if (removal) {
        await removal;
        continue;
      }
      const pending = this.filling.get(key);
      if (!pending) break;
      await pending;
    }
    const filled = this.fill(key, expectedBytes, label, fill);
    this.filling.set(key, filled);
    try {
      await filled;
    } finally {
      this.filling.delete(key);
    }
    return this.acquire(key, expectedBytes, label, fill);
  }

  release(key: string): void {
    const entry = this.entries.get(key);
    if (entry && entry.pins > 0) entry.pins -= 1;
  }

  /** Best effort, for an entry that turned out larger than announced; `keep` is never chosen. */
  private async evictIdle(keep: string, ownReservation: number): Promise<void> {
    const others = [...this.entries.values()].filter((e) => e.key !== keep);
    const kept = this.entries.get(keep)!;
    const evict = chooseCacheEvictions(others, kept.bytes, this.reservedBytes - ownReservation, this.budgetBytes);
    if (!evict) log.warn('download cache over budget: artifacts of registered models fill it', { budgetBytes: this.budgetBytes });
    await this.remove(evict ?? []);
  }

  /**
   * Removes the entries just chosen, one at a time. Each is checked again right before it goes: while an
   * earlier one was deleted it may have been pinned, or removed and filled anew by another caller.
   */
  private async remove(keys: readonly string[]): Promise<void> {
    // Read before the first await, so these are the entries the choice saw.
    const chosen = keys.map((key) => this.entries.get(key));
    for (const entry of chosen) {
      if (!entry || this.entries.get(entry.key) !== entry || entry.pins > 0) continue;
      this.entries.delete(entry.key);
      log.info('download cache entry removed', { key: entry.key, bytes: entry.bytes });
      const removal = fsp.rm(entry.dir, { recursive: true, force: true });
      const settled = removal.then(() => undefined, () => undefined);
      this.removing.set(entry.key, settled);
      try {
        await removal;
      } finally {
        if (this.removing.get(entry.key) === settled) this.removing.delete(entry.key);
      }
    }
  }

  private async makeRoom(bytes: number, label: string): Promise<void> {
    // Chosen again after each round: a victim pinned meanwhile was kept, so the room may still be short.
    for (;;) {
      const evict = chooseCacheEvictions([...this.entries.values()], bytes, this.reservedBytes, this.budgetBytes);
      if (!evict) {
        const { usedBytes } = this.status();
        throw new DownloadCacheFullError(
          `${label} needs ${bytes} bytes but the download cache holds ${usedBytes} of ${this.budgetBytes} in artifacts of registered models (raise download_cache_bytes)`,
        );
      }
      if (evict.length === 0) return;
      await this.remove(evict);
    }
  }

  private async fill(key: string, expectedBytes: number, label: string, fill: (dir: string) => Promise<void>): Promise<void> {
    await this.makeRoom(expectedBytes, label);
    this.reservedBytes += expectedBytes;
    const temp = path.join(this.root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await fsp.mkdir(temp);
      await fill(path.join(temp, ARTIFACT));
      const bytes = await sizeOnDisk(temp);
      const meta: Meta = { key, label, bytes };
      await fsp.writeFile(path.join(temp, META_FILE), JSON.stringify(meta));
      const dir = path.join(this.root, `${ENTRY_PREFIX}${key}`);
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rename(temp, dir);
      this.entries.set(key, { key, bytes, lastUsedMs: Date.now(), pins: 0, dir });
      // An archive unpacks to more than it downloads: settle the budget again with the real size.
      if (bytes > expectedBytes) await this.evictIdle(key, expectedBytes);
    } catch (err) {
      await fsp.rm(temp, { recursive: true, force: true });
      throw err;
    } finally {
      this.reservedBytes -= expectedBytes;
    }
  }
}
