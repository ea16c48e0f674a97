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

  test('simple form from the body\'s bytes: a nested tensor is read straight into its typed array', () => {
    const image = [{ name: 'img', type: 'float32', shape: [1, 3, 'H', 'W'] }];
    const values = Array.from({ length: 3 * 4 * 5 }, (_, i) => (i % 7) / 8 - 0.25);
    const nested = [[0, 1, 2].map((c) => [0, 1, 2, 3].map((y) => [0, 1, 2, 3, 4].map((x) => values[c * 20 + y * 5 + x])))];
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ img: nested }))]);
    const request = parseTensorRequest(new Uint8Array(body), image, 'm');
    expect(request.feeds.img).toEqual({ type: 'float32', dims: [1, 3, 4, 5], data: Float32Array.from(values) });
  });

  test('17-digit numbers for a float32 model give the tensor JSON.parse and a cast give, in both forms', () => {
    const image = [{ name: 'img', type: 'float32', shape: [1, 'N'] }];
    const values = Array.from({ length: 500 }, (_, i) => Math.fround(Math.sin(i + 1) * 10 ** ((i % 9) - 4)));
    const expected = Float32Array.from(values);
    expect(parseTensorRequest(JSON.stringify({ img: [values] }), image, 'm').feeds.img.data).toEqual(expected);
    const oip = { inputs: [{ name: 'img', shape: [1, values.length], datatype: 'FP32', data: values.map((x) => x.toPrecision(17)).map(Number) }] };
    expect(parseTensorRequest(JSON.stringify(oip), image, 'm').feeds.img.data).toEqual(expected);
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
    ['an infinity (1e999 in JSON)', '{"x": [[1, 1e999, 3]], "ids": [[1]]}', /holds Infinity where a finite float32 \(a model config may set allowNonFinite\) belongs/],
    ['a number past float32', '{"x": [[1, -1e39, 3]], "ids": [[1]]}', /holds -1e\+39 where a finite float32/],
    ['an int64 past 2^53', '{"x": [[1, 2, 3]], "ids": [[9007199254740993]]}', /where an integer from -9007199254740991 to 9007199254740991 \(int64\) belongs/],
    ['a declared shape the data does not fill, before anything is allocated', JSON.stringify({ inputs: [{ name: 'x', shape: [100_000_000, 3], datatype: 'FP32', data: [1] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [1] }] }), /1 values but shape \[100000000,3\] needs 300000000/],
  ])('refuses %s with a message that names it', (_what, text, message) => {
    expect(() => parseTensorRequest(text, inputs, 'm')).toThrow(InvalidInputError);
    expect(() => parseTensorRequest(text, inputs, 'm')).toThrow(message);
  });
});

describe('numbers that do not fit', () => {
  const small = [
    { name: 'b', type: 'uint8', shape: [2] },
    { name: 'i', type: 'int8', shape: [2] },
  ];

  test.each([
    [{ b: [0, 256], i: [0, 0] }, /"b" holds 256 where an integer from 0 to 255 \(uint8\) belongs/],
    [{ b: [-1, 0], i: [0, 0] }, /"b" holds -1 where an integer from 0 to 255/],
    [{ b: [0, 0], i: [-129, 0] }, /"i" holds -129 where an integer from -128 to 127 \(int8\) belongs/],
  ])('integers are checked against their type: %j', (body, message) => {
    expect(() => parseTensorRequest(JSON.stringify(body), small, 'm')).toThrow(message);
  });

  test('a model config that allows non-finite numbers gets them', () => {
    const parsed = parseTensorRequest('{"x": [[1e999, -1e999, 0]], "ids": [[1]]}', inputs, 'm', { allowNonFinite: true });
    expect([...(parsed.feeds.x.data as Float32Array)]).toEqual([Infinity, -Infinity, 0]);
  });
});
