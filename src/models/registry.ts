// What models exist: names, versions, where they came from and how they are to be served.
// Where each one is placed is the scheduler's business, not the registry's.
import { BadRequestError, ModelAlreadyExistsError, ModelNotFoundError } from '../errors';
import type { ModelPackage } from './model-source';
import type { TensorInfo } from '../preprocess/tensor-types';

/** evicted: registered, but unloaded to make room; its next request loads it again. */
/** failed: a lazy registration whose load failed after it was answered; no longer registered. */
export type ModelState = 'loading' | 'ready' | 'unloading' | 'evicted' | 'failed';

export interface ModelSettings {
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  maxBatchDelayMs: number;
  responseTimeoutS: number;
}

export interface ModelRecord {
  name: string;
  url: string;
  state: ModelState;
  registeredAt: Date;
  loadedAtStartup: boolean;
  pkg?: ModelPackage;
  settings?: ModelSettings;
  /** Why its load failed (state failed). */
  error?: string;
  /** Its artifact's cache pin was given back (at most once). */
  artifactReleased?: boolean;
  /** Inputs and outputs as its session reported them at its last load; kept while evicted. */
  io?: { inputs: TensorInfo[]; outputs: TensorInfo[] };
}

export interface ModelPage {
  models: ModelRecord[];
  nextPageToken?: string;
}

export class ModelRegistry {
  private readonly records = new Map<string, ModelRecord>();

  /** Claims a name before the (slow) load starts, so a second registration gets 409 at once. */
  reserve(name: string, url: string, loadedAtStartup = false): ModelRecord {
    if (this.records.has(name)) throw new ModelAlreadyExistsError(`model "${name}" is already registered`);
    const record: ModelRecord = { name, url, state: 'loading', registeredAt: new Date(), loadedAtStartup };
    this.records.set(name, record);
    return record;
  }

  has(name: string): boolean {
    return this.records.has(name);
  }

  find(name: string): ModelRecord | undefined {
    return this.records.get(name);
  }

  get(name: string): ModelRecord {
    const record = this.records.get(name);
    if (!record) throw new ModelNotFoundError(`model "${name}" is not registered`);
    return record;
  }

  remove(name: string): void {
    this.records.delete(name);
  }

  size(): number {
    return this.records.size;
  }

  all(): ModelRecord[] {
    return [...this.records.values()];
  }

  /** Pages in name order; the token is the offset of the next page. */
  page(limit: number, pageToken?: string): ModelPage {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadRequestError(`limit must be a whole number from 1 to 1000, got ${limit}`);
    const start = pageToken === undefined || pageToken === '' ? 0 : Number(pageToken);
    if (!Number.isInteger(start) || start < 0) throw new BadRequestError(`next_page_token ${JSON.stringify(pageToken)} is not valid`);
    const sorted = this.all().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const models = sorted.slice(start, start + limit);
    const next = start + limit;
    return { models, nextPageToken: next < sorted.length ? String(next) : undefined };
  }
}
