// Request bodies move to a worker thread (transferred, not copied) when nothing else uses their memory;
// answers' large output sections move back the same way.
import type { WorkerResult } from './messages';

/**
 * Bodies read into memory of their own at an offset (an aligned tensor): nothing else uses their buffer.
 * The view itself is marked, not its buffer: a part cut from it (a form's field) is still copied.
 */
const ownBuffers = new WeakSet<Uint8Array>();

/** Says `body` is the only user of its buffer, though it does not start at its beginning. */
export function markOwnBuffer(body: Uint8Array): void {
  ownBuffers.add(body);
}

/** The body's memory can move to the worker only when nothing else uses it (not a pooled slice). */
export function transferableBody(body: Uint8Array): { body: Uint8Array; transfer: ArrayBuffer[] } {
  const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
  if ((whole || ownBuffers.has(body)) && body.buffer instanceof ArrayBuffer) {
    return { body, transfer: [body.buffer] };
  }
  const copy = new Uint8Array(body.byteLength);
  copy.set(body);
  return { body: copy, transfer: [copy.buffer] };
}

/** Output sections this large go by transfer, not copy (an 8 MB one took 5 ms to clone, bench:shm). */
const TRANSFER_OUTPUT_BYTES = 64 * 1024;

/**
 * The answer's binary sections that own their whole buffer (onnxruntime-node's output buffers, or one
 * made for several outputs), moved to the main thread instead of copied. A section that is part of
 * another buffer (a batch's rows of one run) is copied.
 */
export function transferableOutputs(result: WorkerResult): ArrayBuffer[] {
  const binaries = result.ok && result.kind === 'infer' ? [result.binary] : result.ok && result.kind === 'inferBatch' ? result.results.map((r) => (r.ok ? r.binary : undefined)) : [];
  const buffers = new Set<ArrayBuffer>();
  for (const b of binaries) {
    if (b && b.byteLength >= TRANSFER_OUTPUT_BYTES && b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.byteLength === b.buffer.byteLength) buffers.add(b.buffer);
  }
  return [...buffers];
}
