import { LoadCostModel, MIN_RATIO_FILE_BYTES } from '../../src/scheduler/cost-model';

const MB = MIN_RATIO_FILE_BYTES;

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
    costs.record('a.onnx', MB, { copyBytes: MB });
    costs.record('b.onnx', MB, { copyBytes: 3 * MB });
    costs.record('c.onnx', MB, { copyBytes: 2 * MB });
    expect(costs.predictCopy('new.onnx', 500)).toBe(1000);
    // Without a readable peak the extra stays the file size.
    expect(costs.predictLoadExtra('a.onnx', 1000)).toBe(1000);
  });

  test('a tiny file teaches no cost per byte: its session\'s fixed cost would make every big model look huge', () => {
    const costs = new LoadCostModel();
    // A 170-byte model whose session took 110 KB: 650 bytes per file byte.
    costs.record('tiny.onnx', 170, { copyBytes: 110_000 });
    expect(costs.predictCopy('tiny.onnx', 170)).toBe(110_000);
    expect(costs.predictCopy('big.onnx', 4 * MB)).toBe(10 * MB);
    costs.record('big.onnx', 4 * MB, { copyBytes: 12 * MB });
    expect(costs.predictCopy('other.onnx', 2 * MB)).toBe(6 * MB);
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
