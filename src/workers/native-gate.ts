// A worker thread ended while onnxruntime-node is inside its native code aborts the whole process:
// the binding throws a C++ Napi::Error it cannot hand to an ending thread (`terminate called after
// throwing an instance of 'Napi::Error'`; seen at a test server's close, reproduced by ending a thread
// in a detector run). Ending it then would not stop the native call anyway. So each thread has a gate
// in shared memory: the thread holds it across onnxruntime's calls, and the main thread ends a thread
// only through it, at once when the thread is in JavaScript, else as soon as the call returns.

const FREE = 0;
const NATIVE = 1;
/** The thread is to end: it enters no native call again. */
const CLOSED = 2;
/** The thread is to end once its native call returns. */
const CLOSE_AFTER = 3;
const WAIT_SLICE_MS = 100;

export type NativeGate = Int32Array;

// Atomics.waitAsync is in Node 16+ and in TypeScript's ES2024 lib, past this project's ES2022.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

export function newNativeGate(): NativeGate {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** For a new thread on the same gate (piscina replaced the last one); wakes a close waiting for the old one. */
export function openNativeGate(gate: NativeGate): void {
  Atomics.store(gate, 0, FREE);
  Atomics.notify(gate, 0);
}

let threadGate: NativeGate | undefined;

/** This thread's gate (worker.ts, from its workerData); without one, calls go straight through. */
export function useNativeGate(gate: NativeGate | undefined): void {
  threadGate = gate;
}

/**
 * Runs an onnxruntime call with the gate held. On a closed gate it never starts and never settles:
 * the thread is about to be ended, and its task fails as one on an ended thread does.
 */
export async function inNative<T>(call: () => Promise<T>): Promise<T> {
  const gate = threadGate;
  if (!gate) return call();
  if (Atomics.compareExchange(gate, 0, FREE, NATIVE) !== FREE) return new Promise<T>(() => undefined);
  try {
    return await call();
  } finally {
    if (Atomics.compareExchange(gate, 0, NATIVE, FREE) === CLOSE_AFTER) {
      Atomics.store(gate, 0, CLOSED);
      Atomics.notify(gate, 0);
    }
  }
}

/**
 * Closes the gate: resolves true once the thread is outside onnxruntime and will not enter it again
 * (it may then be ended safely), false when `timeoutMs` passed first or `sameThread()` says the thread
 * it was closed for is gone (a new one must find the gate open).
 */
export async function closeNativeGate(gate: NativeGate, timeoutMs = Infinity, sameThread: () => boolean = () => true): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (!sameThread()) return false;
    const was = Atomics.compareExchange(gate, 0, FREE, CLOSED);
    if (was === FREE || was === CLOSED) return true;
    if (was === NATIVE && Atomics.compareExchange(gate, 0, NATIVE, CLOSE_AFTER) !== NATIVE) continue;
    const left = end - performance.now();
    if (left <= 0) return false;
    // In slices: a thread that dies inside its call never wakes us.
    const wait = waitAsync(gate, 0, CLOSE_AFTER, Math.min(left, WAIT_SLICE_MS));
    if (wait.async) await wait.value;
  }
}
