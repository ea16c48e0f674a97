// The number-array fast path must read exactly what JSON.parse reads, and leave alone what it cannot.
import { liftNumberArrays, liftedArray } from '../../src/oip/json-numbers';

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

function roundTrip(text: string): unknown {
  const lifted = liftNumberArrays(bytes(text));
  const restore = (v: unknown): unknown => {
    const numbers = liftedArray(v, lifted);
    if (numbers) return Array.from(numbers);
    if (Array.isArray(v)) return v.map(restore);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, restore(x)]));
    return v;
  };
  return restore(JSON.parse(lifted.text));
}

describe('liftNumberArrays', () => {
  test('every number reads as JSON.parse reads it (decimals, exponents, long mantissas, zeros)', () => {
    const values: number[] = [0, -0, 1, -1, 0.1, 0.3, 123456789012345, 1234567890123456789, 1e-7, 2.5e10, -3.4028234663852886e38, 5e-324, 0.000123, 9007199254740993];
    let seed = 3;
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const x = (seed / 2 ** 31 - 0.5) * 10 ** ((seed % 17) - 8);
      values.push(x, Math.round(x * 10000) / 10000, Math.fround(x));
    }
    const text = `{"inputs":[{"name":"x","data":[${values.map(String).join(', ')}]}]}`;
    const lifted = liftNumberArrays(bytes(text));
    expect(lifted.arrays).toHaveLength(1);
    const expected = (JSON.parse(text) as { inputs: { data: number[] }[] }).inputs[0].data;
    const got = Array.from(lifted.arrays[0]);
    expect(got.length).toBe(expected.length);
    for (let i = 0; i < got.length; i++) expect(Object.is(got[i], expected[i])).toBe(true);
  });

  test('a "data" inside a string, escaped quotes and brackets in strings are not taken for arrays', () => {
    const text = '{"id":"\\"data\\":[1,2]","inputs":[{"name":"data","shape":[2],"data":[ 3 , 4 ]}],"note":"[5]"}';
    expect(roundTrip(text)).toEqual(JSON.parse(text));
    expect(liftNumberArrays(bytes(text)).arrays).toHaveLength(1);
  });

  test.each([
    ['nested arrays', '{"data":[[1,2],[3,4]]}'],
    ['booleans', '{"data":[true,false]}'],
    ['strings', '{"data":["a","b"]}'],
    ['a mix', '{"data":[1,"a"]}'],
  ])('leaves %s to JSON.parse', (_what, text) => {
    const lifted = liftNumberArrays(bytes(text));
    expect(lifted.arrays).toHaveLength(0);
    expect(JSON.parse(lifted.text)).toEqual(JSON.parse(text));
  });

  test.each(['{"data":[01]}', '{"data":[1.]}', '{"data":[-]}', '{"data":[.5]}', '{"data":[1e]}', '{"data":[1,]}', '{"data":[1 2]}'])(
    'a number JSON does not allow (%s) is left for JSON.parse to refuse',
    (text) => {
      const lifted = liftNumberArrays(bytes(text));
      expect(lifted.arrays).toHaveLength(0);
      expect(() => JSON.parse(lifted.text)).toThrow();
    },
  );

  test('empty arrays and several inputs', () => {
    const text = '{"inputs":[{"data":[]},{"data":[1.5,-2]},{"data":[7]}]}';
    expect(roundTrip(text)).toEqual(JSON.parse(text));
    expect(liftNumberArrays(bytes(text)).arrays.map((a) => a.length)).toEqual([0, 2, 1]);
  });

  test('a client string that looks like a placeholder is just a string', () => {
    const lifted = liftNumberArrays(bytes('{"data":"\\u0000quiver-lifted-x:0"}'));
    expect(liftedArray((JSON.parse(lifted.text) as { data: string }).data, lifted)).toBeUndefined();
  });
});
