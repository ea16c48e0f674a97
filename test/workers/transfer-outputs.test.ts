// Which output sections an answer moves to the main thread rather than copies.
import { transferableOutputs } from '../../src/workers/transfer';
import type { InferResult, WorkerResult } from '../../src/workers/messages';

const infer = (binary?: Uint8Array): InferResult => ({
  ok: true, kind: 'infer', contentType: 'application/octet-stream', body: '{}', binary, preprocessPath: 'tensor-oip', batchSize: 1,
  timings: { queueMs: 0, preprocessMs: 0, inferenceMs: 0, postprocessMs: 0 },
});

test('a large section owning its whole buffer moves; small ones, parts of a buffer and failures are copied', () => {
  const whole = new Uint8Array(1 << 20);
  expect(transferableOutputs(infer(whole))).toEqual([whole.buffer]);
  expect(transferableOutputs(infer(new Uint8Array(1024)))).toEqual([]);
  expect(transferableOutputs(infer())).toEqual([]);
  // A batch's rows of one run share its buffer: none of them may take it away from the others.
  const run = new Uint8Array(2 << 20);
  const batch: WorkerResult = { ok: true, kind: 'inferBatch', runs: [2], results: [infer(run.subarray(0, 1 << 20)), infer(run.subarray(1 << 20)), infer(whole), { ok: false, error: { kind: 'InferenceFailed', message: 'x' } }] };
  expect(transferableOutputs(batch)).toEqual([whole.buffer]);
  // The same buffer twice is listed once (postMessage refuses duplicates).
  expect(transferableOutputs({ ...batch, results: [infer(whole), infer(whole)] } as WorkerResult)).toEqual([whole.buffer]);
  expect(transferableOutputs({ ok: false, error: { kind: 'Internal', message: 'x' } })).toEqual([]);
});
