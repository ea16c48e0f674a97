import { classify, formatClasses, softmax, topK } from '../../src/postprocess/classify';
import { nest, tensorResponse } from '../../src/postprocess/tensor-response';

describe('classify', () => {
  test('softmax gives probabilities that sum to 1, in the order of the scores', () => {
    const p = softmax([1, 3, 2]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[1]).toBeGreaterThan(p[2]);
    expect(p[2]).toBeGreaterThan(p[0]);
    // Large scores do not overflow.
    expect(softmax([0, 1000])[1]).toBeCloseTo(1);
  });

  test('top-k with labels, most likely first', () => {
    expect(topK([0.1, 0.7, 0.2], 2, ['cat', 'dog', 'fox'])).toEqual([
      { index: 1, label: 'dog', probability: 0.7 },
      { index: 2, label: 'fox', probability: 0.2 },
    ]);
  });

  test('one list per batch row; a single row answers with its list', () => {
    const single = classify({ type: 'float32', dims: [1, 3], data: new Float32Array([0, 5, 1]) }, 1, true, ['a', 'b', 'c']);
    expect(single).toEqual([{ index: 1, label: 'b', probability: expect.any(Number) }]);
    const batch = classify({ type: 'float32', dims: [2, 2], data: new Float32Array([0.9, 0.1, 0.2, 0.8]) }, 1, false) as { label: string }[][];
    expect(batch.map((row) => row[0].label)).toEqual(['0', '1']);
  });
});

describe('classifier answer formats', () => {
  const scores = [
    { index: 2, label: 'tabby', probability: 0.6 },
    { index: 0, label: 'lynx', probability: 0.3 },
  ];

  test("MMS's [{probability, class}] and TorchServe's {label: probability}, most likely first", () => {
    expect(formatClasses(scores, 'quiver')).toEqual(scores);
    expect(formatClasses(scores, 'mms')).toEqual([{ probability: 0.6, class: 'tabby' }, { probability: 0.3, class: 'lynx' }]);
    const ts = formatClasses(scores, 'torchserve');
    expect(ts).toEqual({ tabby: 0.6, lynx: 0.3 });
    expect(JSON.stringify(ts)).toBe('{"tabby":0.6,"lynx":0.3}');
  });

  test('a batch of rows gives one answer per row in the chosen format', () => {
    const rows = classify({ type: 'float32', dims: [2, 2], data: new Float32Array([0.9, 0.1, 0.2, 0.8]) }, 1, false, ['a', 'b'], 'torchserve');
    expect(rows).toEqual([{ a: expect.closeTo(0.9, 6) }, { b: expect.closeTo(0.8, 6) }]);
  });
});

describe('tensorResponse', () => {
  const outputs = { y: { type: 'float32' as const, dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) } };

  test('answers the simple form with nested arrays', () => {
    expect(tensorResponse(outputs, 'simple', { name: 'm', version: '1' })).toEqual({ y: [[1, 2], [3, 4]] });
  });

  test('answers the Open Inference Protocol form with flat data, shape and datatype', () => {
    expect(tensorResponse(outputs, 'oip', { name: 'm', version: '1' }, 'req-1')).toEqual({
      model_name: 'm', model_version: '1', id: 'req-1', outputs: [{ name: 'y', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }],
    });
  });

  test('int64 and bool outputs become JSON numbers and booleans', () => {
    expect(tensorResponse({ n: { type: 'int64', dims: [2], data: new BigInt64Array([5n, -1n]) } }, 'simple', { name: 'm', version: '1' })).toEqual({ n: [5, -1] });
    expect(nest([true, false], [2])).toEqual([true, false]);
  });
});
