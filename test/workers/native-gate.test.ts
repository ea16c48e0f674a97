// Ending a worker thread while onnxruntime-node is in its native code aborts the whole process, so a
// thread is ended only through its gate (native-gate.ts): the gate's protocol on one thread, then a real
// detector run on a real thread ended mid-run (without the gate jest's own process aborts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUILTIN_MODEL_STORE } from '../../src/config/schema';
import { QuiverError } from '../../src/errors';
import { parseModelConfig } from '../../src/models/model-config';
import { CancelSignal } from '../../src/workers/cancel-signal';
import type { ModelSpec } from '../../src/workers/messages';
import { closeNativeGate, inNative, newNativeGate, openNativeGate, useNativeGate } from '../../src/workers/native-gate';
import { WorkerPool } from '../../src/workers/pool';
import { transferableBody } from '../../src/workers/transfer';

describe('the gate', () => {
  afterEach(() => useNativeGate(undefined));

  test('closes at once on a thread outside native code; no call starts after', async () => {
    const gate = newNativeGate();
    useNativeGate(gate);
    expect(await inNative(async () => 1)).toBe(1);
    expect(await closeNativeGate(gate)).toBe(true);
    let started = false;
    const never = inNative(async () => (started = true));
    const settled = await Promise.race([never.then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 50))]);
    expect(settled).toBe('pending');
    expect(started).toBe(false);
    openNativeGate(gate);
    expect(await inNative(async () => 2)).toBe(2);
  });

  test('waits for the call in progress to return', async () => {
    const gate = newNativeGate();
    useNativeGate(gate);
    let finish!: () => void;
    const call = inNative(() => new Promise<string>((r) => (finish = () => r('done'))));
    let closed = false;
    const closing = closeNativeGate(gate).then((ok) => (closed = ok));
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    finish();
    expect(await call).toBe('done');
    await closing;
    expect(closed).toBe(true);
  });

  test('gives up after its timeout, or when the thread it waits for is gone', async () => {
    const gate = newNativeGate();
    useNativeGate(gate);
    let finish!: () => void;
    const call = inNative(() => new Promise<void>((r) => (finish = r)));
    expect(await closeNativeGate(gate, 30)).toBe(false);
    expect(await closeNativeGate(gate, Infinity, () => false)).toBe(false);
    finish();
    await call;
  });
});

describe('a thread ended in the middle of a run', () => {
  const dir = path.join(BUILTIN_MODEL_STORE, 'ocr-det');
  const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(dir, 'model-config.json'), 'utf8')), 'model-config.json');
  const spec: ModelSpec = { key: 'gate-det', name: 'ocr-det', version: '1.0', modelPath: path.join(dir, 'model.onnx'), config };
  const pool = new WorkerPool(1, { intraOpThreads: 1, interOpThreads: 1, maxImagePixels: 1e8, preprocessBackend: 'auto', heapLimitMb: 0 });
  afterAll(() => pool.close());

  /** A binary OIP request of a [1,3,side,side] tensor: the detector's run grows with its area. */
  function request(side: number) {
    const raw = new Float32Array(3 * side * side).fill(0.5);
    let head = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3, side, side], datatype: 'FP32', parameters: { binary_data_size: raw.byteLength } }] });
    while (head.length % 8) head += ' ';
    const body = Buffer.concat([Buffer.from(head), Buffer.from(raw.buffer)]);
    return { ...transferableBody(body), headerLength: head.length };
  }
  const infer = (side: number, signal?: CancelSignal) => {
    const { body, transfer, headerLength } = request(side);
    return pool.slot(0).run({ kind: 'infer', model: spec, request: { body, contentType: 'application/octet-stream', requestId: 'g', enqueuedAt: Date.now(), oip: { headerLength } } }, transfer, signal);
  };

  test('ends once onnxruntime returns; the process lives and the next thread serves', async () => {
    await pool.slot(0).run({ kind: 'load', model: spec });
    const t0 = performance.now();
    await infer(1280);
    const runMs = performance.now() - t0;
    const signal = new CancelSignal();
    const stuck = infer(1280, signal);
    // Abort well inside the run: the thread is in onnxruntime's native code.
    setTimeout(() => signal.abort(new Error('stuck')), Math.min(150, runMs / 3));
    const err = await stuck.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(QuiverError);
    expect((err as QuiverError).kind).toBe('InferenceTimeout');
    const answer = await infer(64);
    expect(answer.ok).toBe(true);
  }, 60_000);
});
