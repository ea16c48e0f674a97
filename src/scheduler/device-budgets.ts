// One memory budget per GPU: the device bytes each CUDA copy measured (its load and first run), the
// prediction for the next load of a file, and room made on one GPU by evicting idle models that hold
// copies there. It sees copies only through DeviceBudgetHost, so it is tested without threads or GPUs.
import type { EvictionPolicyName, ResidentModel } from './eviction';
import { LoadCostModel } from './cost-model';
import { MemoryBudget } from './memory-budget';

export interface GpuCopy {
  gpu: number;
  gpuBytes: number;
}

export interface DeviceBudgetHost {
  /** Every CUDA copy held now (ready, loading, evicting or draining). */
  gpuCopies(): Iterable<GpuCopy>;
  /** Versions other than `exceptId` with copies on `gpu`, valued by their bytes there. */
  residents(gpu: number, exceptId: string): ResidentModel[];
  evict(id: string): Promise<void>;
}

export interface GpuBudgetStatus {
  gpu: number;
  bytes: number;
  usedBytes: number;
}

const mib = (n: number) => Math.round(n / 2 ** 20);

export class DeviceBudgets {
  private readonly budgets = new Map<number, MemoryBudget>();
  /** Device bytes per copy, by model file: measured, or predicted from the file before its first load. */
  readonly costs = new LoadCostModel();

  constructor(gpus: readonly { id: number; bytes: number }[], policy: EvictionPolicyName, private readonly host: DeviceBudgetHost) {
    for (const { id, bytes } of gpus) {
      this.budgets.set(id, new MemoryBudget(
        { bytes, policy, what: `GPU ${id} memory budget (gpu_memory_percent less gpu_memory_reserve)` },
        { usedBytes: () => this.usedBytes(id), residents: (except) => host.residents(id, except), evict: (v) => host.evict(v) },
      ));
    }
  }

  get gpuIds(): number[] {
    return [...this.budgets.keys()];
  }

  usedBytes(gpu: number): number {
    let used = 0;
    for (const c of this.host.gpuCopies()) if (c.gpu === gpu) used += c.gpuBytes;
    return used;
  }

  freeBytes(gpu: number): number {
    return (this.budgets.get(gpu)?.bytes ?? 0) - this.usedBytes(gpu);
  }

  /** The largest GPU budget: a copy predicted above it fits on no GPU. */
  largestBytes(): number {
    return Math.max(0, ...[...this.budgets.values()].map((b) => b.bytes));
  }

  /** Evicts idle models on `gpu` until `keepBytes` more fit there; refuses (InsufficientMemoryError) when they cannot. */
  makeRoom(gpu: number, id: string, keepBytes: number, label: string, waitForBusy = true): Promise<void> {
    const budget = this.budgets.get(gpu);
    if (!budget) return Promise.reject(new Error(`there is no budget for GPU ${gpu}`));
    return budget.makeRoom(id, { keepBytes, label, waitForBusy });
  }

  /** The GPUs whose copies hold more than their budget now (after a first run grew one). */
  overBudget(): GpuBudgetStatus[] {
    return this.status().filter((s) => s.usedBytes > s.bytes);
  }

  status(): GpuBudgetStatus[] {
    return [...this.budgets].map(([gpu, b]) => ({ gpu, bytes: b.bytes, usedBytes: this.usedBytes(gpu) }));
  }

  describeTooBig(label: string, perCopy: number): string {
    return `model "${label}" needs about ${mib(perCopy)} MiB of GPU memory per copy, more than any GPU's budget (the largest: ${mib(this.largestBytes())} MiB; gpu_memory_percent, gpu_memory_reserve): register it with device=cpu, or raise the budget`;
  }
}
