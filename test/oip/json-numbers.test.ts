// The number-array fast path must read exactly what JSON.parse reads, and leave alone what it cannot.
import { LiftOptions, NumberScanner, defaultNumberScanner, liftNumberArrays, liftedArray } from '../../src/oip/json-numbers';

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

/** Row-major values back into nested arrays of the given shape. */
function nest(values: number[], dims: number[]): unknown {
  if (dims.length <= 1) return values;
  const size = values.length / dims[0];
  return Array.from({ length: dims[0] }, (_, i) => nest(values.slice(i * size, (i + 1) * size), dims.slice(1)));
}

function roundTrip(text: string, options: LiftOptions = {}): unknown {
  const lifted = liftNumberArrays(bytes(text), options);
  const restore = (v: unknown): unknown => {
    const numbers = liftedArray(v, lifted);
    if (numbers) return nest(Array.from(numbers.values), numbers.dims);
    if (Array.isArray(v)) return v.map(restore);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, restore(x)]));
    return v;
  };
  return restore(JSON.parse(lifted.text));
}

const SCANNERS: NumberScanner[] = ['native', 'typescript'];

test('the addon is built here, and its scan is the one used', () => {
  expect(defaultNumberScanner()).toBe('native');
});

describe.each(SCANNERS)('liftNumberArrays, %s scan', (scanner) => {
  const lift = (b: Uint8Array, options: LiftOptions = {}) => liftNumberArrays(b, { ...options, scanner });
    test('every number reads as JSON.parse reads it (decimals, exponents, long mantissas, zeros)', () => {
      const values: number[] = [0, -0, 1, -1, 0.1, 0.3, 123456789012345, 1234567890123456789, 1e-7, 2.5e10, -3.4028234663852886e38, 5e-324, 0.000123, 9007199254740993];
      let seed = 3;
      for (let i = 0; i < 5000; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const x = (seed / 2 ** 31 - 0.5) * 10 ** ((seed % 17) - 8);
        values.push(x, Math.round(x * 10000) / 10000, Math.fround(x));
      }
      const text = `{"inputs":[{"name":"x","data":[${values.map(String).join(', ')}]}]}`;
      const lifted = lift(bytes(text));
      expect(lifted.arrays).toHaveLength(1);
      const expected = (JSON.parse(text) as { inputs: { data: number[] }[] }).inputs[0].data;
      expect(lifted.arrays[0].dims).toEqual([values.length]);
      const got = Array.from(lifted.arrays[0].values);
      expect(got.length).toBe(expected.length);
      for (let i = 0; i < got.length; i++) expect(Object.is(got[i], expected[i])).toBe(true);
    });

    test('exponents a double holds exactly are read fast and exactly; others, and 17-digit numbers, as JSON.parse reads them', () => {
      const arrays = [
        [1e-7, 2.5e10, 1500, -3e-22, 4e22, 1.25e-5, 0, -0],
        [7e-23, 1e23, 1.5, 123456789012345680000],
        Array.from(Float32Array.from([0.3, -0.7, 1 / 3, 1e-6, 65504.5]), (x) => x),
      ];
      for (const numbers of arrays) {
        const text = `{"data":[[${numbers.map((x) => (Object.is(x, -0) ? '-0' : String(x))).join(',')}],[${numbers.map((x) => x.toExponential().replace('e+', 'E+')).join(' , ')}]]}`;
        const lifted = lift(bytes(text));
        expect(lifted.arrays).toHaveLength(1);
        expect(lifted.arrays[0].dims).toEqual([2, numbers.length]);
        const expected = (JSON.parse(text) as { data: number[][] }).data.flat();
        const got = Array.from(lifted.arrays[0].values);
        expect(got.length).toBe(expected.length);
        for (let i = 0; i < got.length; i++) expect([i, got[i]]).toEqual([i, expected[i]]);
        for (let i = 0; i < got.length; i++) expect(Object.is(got[i], expected[i])).toBe(true);
      }
    });

    describe('for a float32-only model', () => {
      const asFloat32 = (text: string, options: LiftOptions) => Float32Array.from(lift(bytes(text), options).arrays[0].values);
      const parsedAsFloat32 = (text: string) => Float32Array.from((JSON.parse(text) as { data: number[] }).data);

      test('17-digit numbers (float32 values as Python prints them) become the float32 JSON.parse and a cast give', () => {
        let seed = 11;
        const numbers: number[] = [];
        for (let i = 0; i < 20000; i++) {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          numbers.push(Math.fround((seed / 2 ** 31 - 0.5) * 10 ** ((seed % 13) - 6)));
        }
        const text = `{"data":[${numbers.map(String).join(',')}]}`;
        expect(numbers.filter((x) => String(x).replace(/[-.]|e.*$/g, '').replace(/^0+/, '').length > 15).length).toBeGreaterThan(10000);
        const got = asFloat32(text, { float32: true });
        expect(Array.from(got)).toEqual(Array.from(parsedAsFloat32(text)));
        expect(Array.from(lift(bytes(text), { float32: true }).arrays[0].values)).toEqual(Array.from(got));
      });

      test('a number at the midpoint between two float32s rounds as JSON.parse and a cast round it', () => {
        // Summed in doubles, about one in ten of these would land on the wrong side of the midpoint.
        const texts: string[] = [];
        let seed = 5;
        for (let i = 0; i < 2000; i++) {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          const lower = Math.fround((seed / 2 ** 31) * 10 ** ((seed % 7) - 3));
          const middle = lower + (Math.fround(lower * (1 + 2 ** -23)) - lower) / 2;
          texts.push(middle.toPrecision(17), middle.toPrecision(19), middle.toPrecision(21));
        }
        const text = `{"data":[${texts.join(',')}]}`;
        expect(Array.from(asFloat32(text, { float32: true }))).toEqual(Array.from(parsedAsFloat32(text)));
        for (const one of texts.slice(0, 300)) expect([one, asFloat32(`{"data":[${one}]}`, { float32: true })[0]]).toEqual([one, parsedAsFloat32(`{"data":[${one}]}`)[0]]);
      });

      test('without the option, the same numbers are the exact doubles', () => {
        const text = '{"data":[0.30000001192092897,0.30000001192092896]}';
        expect(Array.from(lift(bytes(text)).arrays[0].values)).toEqual([0.30000001192092897, 0.30000001192092896]);
      });
    });

    test('a "data" inside a string, escaped quotes and brackets in strings are not taken for arrays', () => {
      const text = '{"id":"\\"data\\":[1,2]","inputs":[{"name":"data","shape":[2],"data":[ 3 , 4 ]}],"note":"[5]"}';
      expect(roundTrip(text, { scanner })).toEqual(JSON.parse(text));
      expect(lift(bytes(text)).arrays).toHaveLength(1);
    });

    test('rectangular nested arrays are lifted with their shape', () => {
      const text = '{"data":[[[1, 2, 3],[4,5,6]], [[7,8,9] ,[10,11,12]]]}';
      const lifted = lift(bytes(text));
      expect(lifted.arrays).toHaveLength(1);
      expect(lifted.arrays[0].dims).toEqual([2, 2, 3]);
      expect(Array.from(lifted.arrays[0].values)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(roundTrip(text, { scanner })).toEqual(JSON.parse(text));
    });

    test('the simple form\'s top-level values are lifted when asked, and nothing deeper but "data"', () => {
      const text = '{"x":[[1,2],[3,4]], "shape":[9], "inner":{"y":[5,6]}, "s":"[7]", "inputs":[{"shape":[1],"data":[8]}]}';
      const plain = lift(bytes(text));
      expect(plain.arrays.map((a) => Array.from(a.values))).toEqual([[8]]);
      const top = lift(bytes(text), { topLevelValues: true });
      expect(top.arrays.map((a) => Array.from(a.values))).toEqual([[1, 2, 3, 4], [9], [8]]);
      expect(roundTrip(text, { topLevelValues: true, scanner })).toEqual(JSON.parse(text));
      // A top-level array is not an object: its members are not keys' values.
      expect(lift(bytes('[{"x":[1]}]'), { topLevelValues: true }).arrays).toHaveLength(0);
    });

    test.each([
      ['ragged arrays', '{"data":[[1,2],[3]]}'],
      ['ragged deeper', '{"data":[[[1],[2]],[[3]]]}'],
      ['numbers beside arrays', '{"data":[[1,2],3]}'],
      ['arrays beside numbers', '{"data":[1,[2]]}'],
      ['an empty inner array', '{"data":[[],[]]}'],
      ['arrays deeper than 8', `{"data":${'['.repeat(9)}1${']'.repeat(9)}}`],
      ['booleans', '{"data":[true,false]}'],
      ['strings', '{"data":["a","b"]}'],
      ['a mix', '{"data":[1,"a"]}'],
    ])('leaves %s to JSON.parse', (_what, text) => {
      const lifted = lift(bytes(text));
      expect(lifted.arrays).toHaveLength(0);
      expect(JSON.parse(lifted.text)).toEqual(JSON.parse(text));
    });

    test.each(['{"data":[01]}', '{"data":[1.]}', '{"data":[-]}', '{"data":[.5]}', '{"data":[1e]}', '{"data":[1,]}', '{"data":[1 2]}', '{"data":[[1],]}', '{"data":[[1] [2]]}', '{"data":[[1],[2]}'])(
      'a number JSON does not allow (%s) is left for JSON.parse to refuse',
      (text) => {
        const lifted = lift(bytes(text));
        expect(lifted.arrays).toHaveLength(0);
        expect(() => JSON.parse(lifted.text)).toThrow();
      },
    );

    test('empty arrays and several inputs', () => {
      const text = '{"inputs":[{"data":[]},{"data":[1.5,-2]},{"data":[7]}]}';
      expect(roundTrip(text, { scanner })).toEqual(JSON.parse(text));
      expect(lift(bytes(text)).arrays.map((a) => a.values.length)).toEqual([0, 2, 1]);
    });

    test('a client string that looks like a placeholder is just a string', () => {
      const lifted = lift(bytes('{"data":"\\u0000quiver-lifted-x:0"}'));
      expect(liftedArray((JSON.parse(lifted.text) as { data: string }).data, lifted)).toBeUndefined();
    });
});

/** Both scans' reading of `b`: the text JSON.parse is given (placeholders aside) and every array. */
function reading(b: Uint8Array, scanner: NumberScanner, float32: boolean): unknown {
  const lifted = liftNumberArrays(b, { scanner, float32, topLevelValues: true });
  return { text: lifted.text.replace(/quiver-lifted-[a-z0-9]+:/g, ''), arrays: lifted.arrays.map((a) => ({ dims: a.dims, values: Array.from(a.values, (v) => (Object.is(v, -0) ? '-0' : v)) })) };
}

describe('the native scan reads what the TypeScript scan reads', () => {
  const seeds = ['{"data":[[1.5,-0.25,3e2],[0,-0,1E-3]], "x":[7, 8 ,9], "y":[[1],[2]]}', '{"inputs":[{"data":[0.30000001192092896,1.0000000000000002,123456789012345678,-7e-23]}]}'];

  test('byte for byte, on every cut and every one-byte change of tensors', () => {
    let seed = 17;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = Buffer.from('0123456789-+.eE[] ,"x\n');
    let compared = 0;
    for (const text of seeds) {
      const whole = Buffer.from(text);
      for (let cut = 0; cut <= whole.length; cut++) {
        const b = new Uint8Array(whole.subarray(0, cut));
        for (const float32 of [false, true]) expect(reading(b, 'native', float32)).toEqual(reading(b, 'typescript', float32));
        compared++;
      }
      for (let i = 0; i < 3000; i++) {
        const b = Buffer.from(whole);
        b[random(b.length)] = alphabet[random(alphabet.length)];
        if (random(2) === 0) b[random(b.length)] = alphabet[random(alphabet.length)];
        const float32 = random(2) === 0;
        expect([b.toString(), reading(b, 'native', float32)]).toEqual([b.toString(), reading(b, 'typescript', float32)]);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(6000);
  });

  test('a tensor in the middle of a larger buffer (a slice of a pooled Buffer) is read from its own bytes', () => {
    const pool = Buffer.from('[9,9,9]{"data":[1,2,3]}[8,8]');
    const b = pool.subarray(7, pool.length - 5);
    expect(liftNumberArrays(b, { scanner: 'native' }).arrays.map((a) => Array.from(a.values))).toEqual([[1, 2, 3]]);
  });
});
