// Triton-style statistics per model version, without threads or HTTP.
import { InferenceStatistics } from '../../src/scheduler/statistics';

const timings = (queueMs: number, preprocessMs: number, inferenceMs: number, postprocessMs: number) => ({ queueMs, preprocessMs, inferenceMs, postprocessMs });

test('successes add to every stage with the same count (perf_analyzer requires it); failures only to fail', () => {
  const s = new InferenceStatistics();
  s.success('a', 10, timings(1, 2, 5, 0.5), { requests: 1 }, 1_000);
  s.success('a', 20, timings(3, 2, 9, 0.5), { requests: 1 }, 2_000);
  s.failure('a', 4);
  const a = s.of('a');
  expect(a.last_inference).toBe(2_000);
  expect(a.inference_count).toBe(2);
  expect(a.execution_count).toBe(2);
  expect(a.inference_stats.success).toEqual({ count: 2, ns: 30e6 });
  expect(a.inference_stats.fail).toEqual({ count: 1, ns: 4e6 });
  expect(a.inference_stats.queue).toEqual({ count: 2, ns: 4e6 });
  expect([a.inference_stats.compute_input, a.inference_stats.compute_infer, a.inference_stats.compute_output]).toEqual([{ count: 2, ns: 4e6 }, { count: 2, ns: 14e6 }, { count: 2, ns: 1e6 }]);
  expect(a.batch_stats).toEqual([{ batch_size: 1, compute_input: { count: 2, ns: 4e6 }, compute_infer: { count: 2, ns: 14e6 }, compute_output: { count: 2, ns: 1e6 } }]);
});

test('requests run together count one execution, in the batch size they ran at', () => {
  const s = new InferenceStatistics();
  // Four requests answered by one run of 8 ms (each reports the batch's run).
  for (let i = 0; i < 4; i++) s.success('b', 12, timings(2, 1, 8, 0), { requests: 4 });
  s.success('b', 6, timings(0, 1, 3, 0), { requests: 1 });
  const b = s.of('b');
  expect(b.inference_count).toBe(5);
  expect(b.execution_count).toBe(2);
  expect(b.inference_stats.compute_infer).toEqual({ count: 5, ns: 35e6 });
  expect(b.batch_stats).toEqual([
    { batch_size: 1, compute_input: { count: 1, ns: 1e6 }, compute_infer: { count: 1, ns: 3e6 }, compute_output: { count: 1, ns: 0 } },
    { batch_size: 4, compute_input: { count: 1, ns: 1e6 }, compute_infer: { count: 1, ns: 8e6 }, compute_output: { count: 1, ns: 0 } },
  ]);
});

test('an unknown or forgotten version has zeros, and asking does not keep anything', () => {
  const s = new InferenceStatistics();
  s.success('c', 1, timings(0, 0, 1, 0), { requests: 1 });
  s.forget('c');
  for (const id of ['c', 'never']) {
    const z = s.of(id);
    expect([z.inference_count, z.execution_count, z.inference_stats.success.count, z.batch_stats.length]).toEqual([0, 0, 0, 0]);
  }
  expect((s as unknown as { tallies: Map<string, unknown> }).tallies.size).toBe(0);
});

test('a batching model counts batch entries as inferences, and a run\'s batch size in entries (Triton\'s statistics extension)', () => {
  const s = new InferenceStatistics();
  // Two requests of 3 and 2 entries in one run, then one of 4 entries alone.
  s.success('d', 10, timings(1, 1, 6, 0), { requests: 2, rows: 3, runRows: 5 });
  s.success('d', 10, timings(1, 1, 6, 0), { requests: 2, rows: 2, runRows: 5 });
  s.success('d', 5, timings(0, 1, 3, 0), { requests: 1, rows: 4, runRows: 4 });
  const d = s.of('d');
  expect(d.inference_count).toBe(9);
  expect(d.execution_count).toBe(2);
  // Requests, not entries, in the per-request figures.
  expect(d.inference_stats.success.count).toBe(3);
  expect(d.batch_stats.map((b) => [b.batch_size, b.compute_infer.count])).toEqual([[4, 1], [5, 1]]);
});
