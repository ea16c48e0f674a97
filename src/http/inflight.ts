// The request body bytes held by requests in flight (being read, waiting for a load, queued or
// running), bounded together: max_inflight_bytes. A body reserves its bytes as it arrives, before they
// are read (its Content-Length, or each chunk), and gives them back when its answer is done.
import { QueueFullError } from '../errors';

export class InflightBytes {
  private held = 0;

  constructor(readonly limit: number) {}

  get bytes(): number {
    return this.held;
  }

  /** Throws QueueFullError (503) when `bytes` more would pass the limit. */
  reserve(bytes: number): void {
    if (this.held + bytes > this.limit) {
      throw new QueueFullError(`the server holds ${this.held} bytes of requests in flight; ${bytes} more would pass max_inflight_bytes (${this.limit})`);
    }
    this.held += bytes;
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}
