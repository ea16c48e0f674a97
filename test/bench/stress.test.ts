// The benchmark tool pointed at a running server that speaks the SageMaker contract (as it would be
// pointed at MMS): it answers, compares with the in-process baseline, and writes the report and chart.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../bench/stress';
import { BUILTIN_MODEL_STORE } from '../../src/config/schema';
import { startServer, tempDir } from '../fixtures/server';

test('quiver bench against a SageMaker-contract URL writes a report, a chart and the RESULT line', async () => {
  const root = tempDir('bench-target');
  fs.cpSync(path.join(BUILTIN_MODEL_STORE, 'ocr-cls'), path.join(root, 'ocr-cls'), { recursive: true });
  const s = await startServer({ mode: 'sagemaker', 'model-store': root, workers: '1' });
  const out = tempDir('bench-out');
  const logs: string[] = [];
  const spy = jest.spyOn(console, 'log').mockImplementation((line: unknown) => void logs.push(String(line)));
  try {
    await main(['--target', s.inference, '--api', 'sagemaker', '--models', 'cls', '--names', 'cls=ocr-cls', '--duration', '0.5',
      '--concurrency', '1,2', '--workers', '1', '--report', path.join(out, 'r.md'), '--chart', path.join(out, 'r.svg')]);
  } finally {
    spy.mockRestore();
    await s.close();
  }
  const report = fs.readFileSync(path.join(out, 'r.md'), 'utf8');
  expect(report).toMatch(/\| one model \| cls \| 1 \| target http:\/\/127\.0\.0\.1:\d+ \| [\d.]+ \|/);
  expect(report).toMatch(/\| all at once \| cls \| 2 \| in-process \|/);
  const svg = fs.readFileSync(path.join(out, 'r.svg'), 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('polyline');
  const result = logs.find((l) => l.startsWith('RESULT bench'))!;
  expect(result).toMatch(/^RESULT bench overhead_c1_ms=-?[\d.]+ det_overhead_pct=NaN stress_throughput_ratio=[\d.]+$/);
}, 120_000);
