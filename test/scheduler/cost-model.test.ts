import { LoadCostModel } from '../../src/scheduler/cost-model';

describe('LoadCostModel', () => {
  test('before any load: the file size times 2.5; a load\'s extra is the file size', () => {
    const costs = new LoadCostModel();
    expect(costs.predictCopy('a.onnx', 1000)).toBe(2500);
    expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(1000);
  });

  test('a measured load predicts the next load of the same file, and its peak the extra', () => {
    const costs = new LoadCostModel();
    costs.record('a.onnx', 1000, { copyBytes: 1200, peakBytes: 2300 });
    expect(costs.predictCopy('a.onnx', 1000)).toBe(1200);
    expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(1100);
  });

  test('an unseen file is predicted from the median measured bytes per file byte', () => {
    const costs = new LoadCostModel();
    costs.record('a.onnx', 1000, { copyBytes: 1000 });
    costs.record('b.onnx', 1000, { copyBytes: 3000 });
    costs.record('c.onnx', 1000, { copyBytes: 2000 });
    expect(costs.predictCopy('new.onnx', 500)).toBe(1000);
    // Without a readable peak the extra stays the file size.
    expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(1000);
  });

  test('a peak below the settled cost means no extra, never a negative one', () => {
    const costs = new LoadCostModel();
    costs.record('a.onnx', 1000, { copyBytes: 1500, peakBytes: 1400 });
    expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(0);
  });
});

test('what a copy kept at its first run is added to the next prediction of that file', () => {
  const costs = new LoadCostModel();
  costs.record('a.onnx', 1000, { copyBytes: 1200 });
  costs.recordFirstRun('a.onnx', 300);
  expect(costs.predictCopy('a.onnx', 1000)).toBe(1500);
  costs.record('a.onnx', 1000, { copyBytes: 1100 });
  expect(costs.predictCopy('a.onnx', 1000)).toBe(1500);
});

test('a reload that grows RSS less (memory the allocator kept) does not lower what a copy is known to take', () => {
  const costs = new LoadCostModel();
  costs.record('a.onnx', 1000, { copyBytes: 5000, peakBytes: 9000 });
  costs.recordFirstRun('a.onnx', 2000);
  costs.record('a.onnx', 1000, { copyBytes: 200, peakBytes: 300 });
  costs.recordFirstRun('a.onnx', 0);
  expect(costs.known('a.onnx')).toEqual({ copyBytes: 5000, firstRunBytes: 2000 });
  expect(costs.predictCopy('a.onnx', 1000)).toBe(7000);
  expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(4000);
});
