// Request bodies move to a worker thread (transferred, not copied) when nothing else uses their memory.

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
