// What models exist: names, their versions, which version answers the bare name, where each came from
// and how it is to be served. Whether and where a version is loaded is the lifecycle's business.
import { BadRequestError, InvalidModelVersionError, ModelAlreadyExistsError, ModelNotFoundError, ModelVersionNotFoundError } from '../errors';
import type { ModelPackage } from './model-source';
import type { TensorInfo } from '../preprocess/tensor-types';

/**
 * Written by the lifecycle (src/scheduler/lifecycle.ts) alone. evicted: registered, unloaded to make
 * room, its next request loads it again. failed: a lazy registration whose load failed after it was
 * answered; no longer registered.
 */
export type ModelState = 'loading' | 'ready' | 'evicting' | 'evicted' | 'unloading' | 'gone' | 'failed';

export interface ModelSettings {
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  maxBatchDelayMs: number;
  responseTimeoutS: number;
  /** Where it asked to run: `auto`, `cpu` or `cuda` (a GPU when there is one). */
  device: 'auto' | 'cpu' | 'cuda';
  /** What the registration itself said, if anything (the snapshot keeps it; the rest comes from the config). */
  deviceGiven?: 'auto' | 'cpu' | 'cuda';
}

/**
 * Triton's clients and perf_analyzer name versions as whole numbers ("1"); MMS archives and this server's
 * default say "1.0". A whole-number request finds such a version when no version has its exact name.
 */
export function sameWholeVersion(registered: string | undefined, wanted: string): boolean {
  const whole = wholeVersion(registered);
  return whole !== undefined && /^\d+$/.test(wanted) && BigInt(whole) === BigInt(wanted);
}

/** A whole-number version ("1.0", "001") as Triton writes it ("1"); undefined for any other. */
export function wholeVersion(version: string | undefined): string | undefined {
  const m = version === undefined ? null : /^(\d+)(?:\.0+)?$/.exec(version);
  return m ? BigInt(m[1]).toString() : undefined;
}

/** One version of one model. */
export interface ModelRecord {
  name: string;
  /** Known once its package is open (the manifest's modelVersion, or the registration's model_version). */
  version?: string;
  /** Unique among registered versions: the key of the budget, the queues and the worker sessions. */
  readonly id: string;
  url: string;
  state: ModelState;
  registeredAt: Date;
  loadedAtStartup: boolean;
  pkg?: ModelPackage;
  settings?: ModelSettings;
  /** Why its load failed (state failed). */
  error?: string;
  /** Its artifact's cache pin and unpacked folder were given back (at most once). */
  artifactReleased?: boolean;
  /** Inputs and outputs as its session reported them at its last load; kept while evicted. */
  io?: { inputs: TensorInfo[]; outputs: TensorInfo[] };
  /** Placed by an outside cache manager (ModelMesh), which counts it as loaded: never evicted to make room. */
  pinned?: boolean;
}

export interface ModelPage {
  /** The default version of each name. */
  models: ModelRecord[];
  nextPageToken?: string;
}

interface NamedModel {
  /** In registration order; the versions still opening have no version yet. */
  records: ModelRecord[];
  defaultVersion?: string;
}

let idSeq = 0;

export class ModelRegistry {
  private readonly names = new Map<string, NamedModel>();

  /**
   * Claims a name (and a version, when the registration gives one) before the slow open and load, so
   * that a second registration of the same version gets 409 at once.
   */
  reserve(name: string, url: string, loadedAtStartup = false, version?: string): ModelRecord {
    const named = this.names.get(name) ?? { records: [] };
    // Without a version, whether it is a new one is known once the package is open (settleVersion).
    if (version !== undefined && named.records.some((r) => r.version === version)) {
      throw new ModelAlreadyExistsError(`model "${name}" version ${version} is already registered`);
    }
    const record: ModelRecord = { name, version, id: `${name}\u0000${++idSeq}`, url, state: 'loading', registeredAt: new Date(), loadedAtStartup };
    named.records.push(record);
    if (named.defaultVersion === undefined && version !== undefined && named.records.length === 1) named.defaultVersion = version;
    this.names.set(name, named);
    return record;
  }

  /** Gives a reserved record the version its package declares; 409 when that version is taken meanwhile. */
  settleVersion(record: ModelRecord, version: string): void {
    const named = this.names.get(record.name);
    if (!named?.records.includes(record)) throw new ModelNotFoundError(`model "${record.name}" was unregistered while it was opened`);
    if (record.version === version) return;
    if (named.records.some((r) => r !== record && r.version === version)) {
      throw new ModelAlreadyExistsError(`model "${record.name}" version ${version} is already registered`);
    }
    record.version = version;
    named.defaultVersion ??= version;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** `version` undefined or empty: the default version. */
  find(name: string, version?: string): ModelRecord | undefined {
    const named = this.names.get(name);
    if (!named) return undefined;
    const wanted = version === undefined || version === '' ? named.defaultVersion : version;
    // Before any version is known, the first registration answers for the name (as isDefault says).
    if (wanted === undefined) return named.records[0];
    return named.records.find((r) => r.version === wanted) ?? named.records.find((r) => sameWholeVersion(r.version, wanted));
  }

  /**
   * Each version of `name` as an integer, as Triton numbers versions (perf_analyzer parses statistics'
   * versions as integers and looks the figures up under them): a whole-number version ("1.0") is its
   * number, unless an earlier one has it; any other (1.5, v2, one not known yet) the next integers above
   * all of those, in registration order (statistics only: find() does not take those, so that an MMS
   * client asking for version 2 never gets 1.5).
   */
  tritonVersions(name: string): Map<ModelRecord, string> {
    const records = this.names.get(name)?.records ?? [];
    const out = new Map<ModelRecord, string>();
    const taken = new Set<string>();
    for (const r of records) {
      // An exact whole number ("1") before one written otherwise ("1.0"), as find() prefers it.
      const whole = wholeVersion(r.version);
      if (whole !== undefined && r.version === whole && !taken.has(whole)) {
        out.set(r, whole);
        taken.add(whole);
      }
    }
    for (const r of records) {
      const whole = wholeVersion(r.version);
      if (!out.has(r) && whole !== undefined && !taken.has(whole)) {
        out.set(r, whole);
        taken.add(whole);
      }
    }
    let next = [...taken].reduce((max, v) => (BigInt(v) > max ? BigInt(v) : max), 0n);
    for (const r of records) {
      if (out.has(r)) continue;
      next += 1n;
      out.set(r, next.toString());
    }
    return out;
  }

  get(name: string, version?: string): ModelRecord {
    const record = this.find(name, version);
    if (record) return record;
    if (!this.names.has(name)) throw new ModelNotFoundError(`model "${name}" is not registered`);
    throw new ModelVersionNotFoundError(`model "${name}" has no version "${version}" (registered: ${this.versionsOf(name).join(', ')})`);
  }

  /** Every version of a name, in registration order; 404 when none is registered. */
  versions(name: string): ModelRecord[] {
    const named = this.names.get(name);
    if (!named) throw new ModelNotFoundError(`model "${name}" is not registered`);
    return [...named.records];
  }

  defaultVersion(name: string): string | undefined {
    return this.names.get(name)?.defaultVersion;
  }

  isDefault(record: ModelRecord): boolean {
    const named = this.names.get(record.name);
    return named !== undefined && (named.defaultVersion === undefined ? named.records[0] === record : named.defaultVersion === record.version);
  }

  setDefault(name: string, version: string): void {
    const record = this.get(name, version);
    this.names.get(name)!.defaultVersion = record.version;
  }

  /**
   * The record a removal of (name, version) takes: the default one when no version is given. As
   * TorchServe, the default version cannot go while other versions are registered.
   */
  removable(name: string, version?: string): ModelRecord {
    const record = this.get(name, version);
    const named = this.names.get(name)!;
    if (named.records.length > 1 && this.isDefault(record)) {
      throw new InvalidModelVersionError(`model "${name}" version ${record.version} is the default version: set another version as default first (PUT /models/${name}/{version}/set-default)`);
    }
    return record;
  }

  remove(record: ModelRecord): void {
    const named = this.names.get(record.name);
    if (!named) return;
    const left = named.records.filter((r) => r !== record);
    if (left.length === named.records.length) return;
    if (left.length === 0) {
      this.names.delete(record.name);
      return;
    }
    named.records = left;
    if (named.defaultVersion === record.version) named.defaultVersion = left.find((r) => r.version !== undefined)?.version;
  }

  includes(record: ModelRecord): boolean {
    return this.names.get(record.name)?.records.includes(record) ?? false;
  }

  /** Registered names. */
  size(): number {
    return this.names.size;
  }

  /** Every registered version of every name. */
  all(): ModelRecord[] {
    return [...this.names.values()].flatMap((n) => n.records);
  }

  /** Pages over names in name order, each as its default version; the token is the offset of the next page. */
  page(limit: number, pageToken?: string): ModelPage {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadRequestError(`limit must be a whole number from 1 to 1000, got ${limit}`);
    const start = pageToken === undefined || pageToken === '' ? 0 : Number(pageToken);
    if (!Number.isInteger(start) || start < 0) throw new BadRequestError(`next_page_token ${JSON.stringify(pageToken)} is not valid`);
    const sorted = [...this.names.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const models = sorted.slice(start, start + limit).map((name) => this.find(name) ?? this.names.get(name)!.records[0]);
    const next = start + limit;
    return { models, nextPageToken: next < sorted.length ? String(next) : undefined };
  }

  private versionsOf(name: string): string[] {
    return (this.names.get(name)?.records ?? []).flatMap((r) => (r.version === undefined ? [] : [r.version]));
  }
}
