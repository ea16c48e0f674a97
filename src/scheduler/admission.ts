// Request admission: a request counts against its model version's limit (job_queue_size) and the
// server's (max_queued_requests) from the moment it arrives, cold or not, until it is answered.
import { QueueFullError } from '../errors';

export interface AdmissionLimits {
  /** Requests one model version may have queued, waiting for a load, or running. */
  perModel: number;
  /** Requests all models together may have so. */
  global: number;
}

export class RequestAdmission {
  private total = 0;
  private readonly byModel = new Map<string, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Counts a request in, or refuses it at once (503 with Retry-After). `label` names the model in the error. */
  admit(id: string, label: string): void {
    const mine = this.byModel.get(id) ?? 0;
    if (mine >= this.limits.perModel) {
      throw new QueueFullError(`model "${label}" has ${mine} requests queued or running, the limit (job_queue_size)`);
    }
    if (this.total >= this.limits.global) {
      throw new QueueFullError(`the server has ${this.total} requests queued or running, the limit (max_queued_requests)`);
    }
    this.byModel.set(id, mine + 1);
    this.total++;
  }

  release(id: string): void {
    this.total--;
    const left = (this.byModel.get(id) ?? 1) - 1;
    if (left > 0) this.byModel.set(id, left);
    else this.byModel.delete(id);
  }

  count(id: string): number {
    return this.byModel.get(id) ?? 0;
  }

  pending(): number {
    return this.total;
  }
}
