// Makes room in the memory budget before a load: evicts idle models by the eviction policy, waits for busy
// ones, and refuses (InsufficientMemoryError: 507 on SageMaker, 503 on MMS) when nothing can make room.
// It knows models only through BudgetHost, so it is tested without threads or HTTP.
import { InsufficientMemoryError } from '../errors';
import { log } from '../log';
import { chooseEvictions, EvictionPolicyName, EvictionState, ResidentModel } from './eviction';

export interface BudgetHost {
  /** Measured bytes of every placed model copy. */
  usedBytes(): number;
  /** Placed models other than `except`, with whether they are busy (requests running, queued or waiting). */
  residents(except: string): ResidentModel[];
  evict(name: string): Promise<void>;
}

export interface RoomRequest {
  /** Bytes the load keeps. */
  keepBytes: number;
  /**
   * Bytes the load holds for a moment above what it keeps (the parsed file while onnxruntime builds the
   * session). Made room for when idle models can give it; a load that fits only without it still runs.
   */
  peakBytes?: number;
  /** Wait for busy models to become idle (up to waitMs), rather than refuse at once. */
  waitForBusy?: boolean;
  /** The model as errors and logs name it (its id otherwise). */
  label?: string;
}

export interface MemoryBudgetOptions {
  /** 0: no budget. */
  bytes: number;
  policy: EvictionPolicyName;
  /** How long a load waits for busy models to become idle and evictable before it is refused. */
  waitMs?: number;
  /** The budget as errors and logs name it, with the settings that size it. */
  what?: string;
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

export class MemoryBudget {
  private readonly eviction: EvictionState = { inflation: 0 };
  readonly bytes: number;
  readonly policy: EvictionPolicyName;
  private readonly waitMs: number;
  readonly what: string;

  constructor(options: MemoryBudgetOptions, private readonly host: BudgetHost) {
    this.bytes = options.bytes;
    this.policy = options.policy;
    this.waitMs = options.waitMs ?? 10_000;
    this.what = options.what ?? 'memory budget (memory_budget)';
  }

  async makeRoom(id: string, request: RoomRequest): Promise<void> {
    if (this.bytes <= 0) return;
    const forModel = request.label ?? id;
    const deadline = Date.now() + this.waitMs;
    let reserve = request.peakBytes ?? 0;
    for (;;) {
      const overBy = this.host.usedBytes() + request.keepBytes + reserve - this.bytes;
      if (overBy <= 0) return;
      const residents = this.host.residents(id);
      const choice = chooseEvictions(residents, overBy, this.policy, this.eviction);
      if (choice) {
        this.eviction.inflation = choice.inflation;
        for (const name of choice.evict) {
          // The choice was made before the awaits: a victim that got a request meanwhile is kept, and
          // the next turn chooses again.
          const victim = this.host.residents(id).find((m) => m.name === name);
          if (!victim || victim.busy) break;
          await this.host.evict(name);
        }
        continue;
      }
      const couldFree = residents.reduce((a, m) => a + m.bytes, 0);
      const giveUp = Date.now() > deadline || request.waitForBusy === false;
      if (reserve > 0 && (couldFree < overBy || giveUp)) {
        // The reserve gives way first: the part that could never fit, or all of it rather than a refusal.
        reserve = giveUp ? 0 : Math.max(0, reserve - (overBy - couldFree));
        log.info('load goes ahead without room for all of its peak', { model: forModel, reserveBytes: reserve, shortBytes: overBy, busyModelsWaitedFor: giveUp });
        continue;
      }
      if (couldFree < overBy || giveUp) {
        const used = this.host.usedBytes();
        log.warn('load refused by the memory budget', { model: forModel, budget: this.what, needBytes: request.keepBytes, budgetBytes: this.bytes, usedBytes: used, freeableBytes: couldFree });
        if (request.keepBytes > this.bytes) {
          throw new InsufficientMemoryError(
            `model "${forModel}" alone needs about ${mb(request.keepBytes)}, more than the whole ${mb(this.bytes)} ${this.what}: raise it, or give the model fewer workers`,
          );
        }
        throw new InsufficientMemoryError(
          `model "${forModel}" needs about ${mb(request.keepBytes)} but ${mb(Math.max(0, this.bytes - used))} of the ${mb(this.bytes)} ${this.what.replace(/ \(.*\)$/, '')} is free and the models that could make room are in use`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
