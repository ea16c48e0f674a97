import { parseTensorRequest } from '../../src/preprocess/tensor-request';
import { InvalidInputError } from '../../src/errors';

const inputs = [
  { name: 'x', type: 'float32', shape: ['N', 3] },
  { name: 'ids', type: 'int64', shape: [1, 'T'] },
];
const parse = (body: unknown) => parseTensorRequest(JSON.stringify(body), inputs, 'm');

describe('parseTensorRequest', () => {
  test('Open Inference Protocol form, flat and nested data', () => {
    const flat = parse({ id: 'r1', inputs: [
      { name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] },
      { name: 'ids', shape: [1, 2], datatype: 'INT64', data: [7, 8] },
    ] });
    expect(flat.format).toBe('oip');
    expect(flat.id).toBe('r1');
    expect(flat.feeds.x).toEqual({ type: 'float32', dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    expect(flat.feeds.ids.data).toEqual(new BigInt64Array([7n, 8n]));
    const nested = parse({ inputs: [
      { name: 'x', shape: [2, 3], datatype: 'FP32', data: [[1, 2, 3], [4, 5, 6]] },
      { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [[1]] },
    ] });
    expect(nested.feeds.x.data).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
  });

  test('simple form: input name to nested array', () => {
    const request = parse({ x: [[0.5, 1, 2]], ids: [[1, 2, 3]] });
    expect(request.format).toBe('simple');
    expect(request.feeds.x.dims).toEqual([1, 3]);
    expect(request.feeds.ids).toEqual({ type: 'int64', dims: [1, 3], data: new BigInt64Array([1n, 2n, 3n]) });
  });

  test.each([
    ['not JSON', '{x:', /not valid JSON/],
    ['an array', '[1,2]', /must be a JSON object/],
    ['an unknown input', JSON.stringify({ y: [[1, 2, 3]], ids: [[1]] }), /no input named "y"; its inputs are: x, ids/],
    ['a missing input', JSON.stringify({ x: [[1, 2, 3]] }), /needs input\(s\) ids/],
    ['a wrong fixed dimension', JSON.stringify({ x: [[1, 2]], ids: [[1]] }), /dimension 1 = 2 but the model expects 3/],
    ['a wrong rank', JSON.stringify({ x: [1, 2, 3], ids: [[1]] }), /expects rank 2/],
    ['a ragged array', JSON.stringify({ x: [[1, 2, 3], [4, 5]], ids: [[1]] }), /ragged/],
    ['a string where a number belongs', JSON.stringify({ x: [[1, 'a', 3]], ids: [[1]] }), /"a" where a number belongs/],
    ['a fraction in an int64 input', JSON.stringify({ x: [[1, 2, 3]], ids: [[1.5]] }), /integer/],
    ['a wrong datatype', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT32', data: [1, 2, 3] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [1] }] }), /datatype INT32 but the model expects float32/],
    ['data that does not fill the shape', JSON.stringify({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [1] }] }), /3 values but shape \[2,3\] needs 6/],
    ['no shape', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', data: [1, 2, 3] }] }), /needs a "shape"/],
  ])('refuses %s with a message that names it', (_what, text, message) => {
    expect(() => parseTensorRequest(text, inputs, 'm')).toThrow(InvalidInputError);
    expect(() => parseTensorRequest(text, inputs, 'm')).toThrow(message);
  });
});
