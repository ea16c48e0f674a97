// OIP request decoding and response encoding without threads or HTTP: framing, binary sections,
// datatypes, requested outputs; and the float16 conversion they rely on.
import { decodeOipBody, OipModel, splitBytesElements } from '../../src/oip/request';
import { classified, encodeOipResponse } from '../../src/oip/response';
import { halfToNumber, numberToHalf } from '../../src/preprocess/float16';
import { configOverrides, modelMetadata, tritonModelConfig } from '../../src/oip/metadata';
import { modelTarget } from '../../src/http/oip';

const model: OipModel = {
  name: 'm',
  inputs: [{ name: 'x', type: 'float32', shape: ['N', 3] }, { name: 'k', type: 'int64', shape: [1] }],
  outputs: [{ name: 'a', type: 'float32', shape: ['N', 3] }, { name: 'b', type: 'int32', shape: [1] }],
  takesImages: false,
};

function framed(header: object, ...sections: Uint8Array[]): { body: Uint8Array; headerLength: number } {
  const head = Buffer.from(JSON.stringify(header));
  return { body: new Uint8Array(Buffer.concat([head, ...sections])), headerLength: head.length };
}

describe('decodeOipBody', () => {
  test('Triton\'s timeout parameter (µs) is read; a bad one is refused', () => {
    const inputs = [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'k', shape: [1], datatype: 'INT64', data: [1] }];
    const body = (parameters: object) => new Uint8Array(Buffer.from(JSON.stringify({ parameters, inputs })));
    expect(decodeOipBody(body({ timeout: 250000 }), {}, model).timeoutUs).toBe(250000);
    expect(decodeOipBody(body({ timeout: 0 }), {}, model).timeoutUs).toBeUndefined();
    expect(() => decodeOipBody(body({ timeout: -1 }), {}, model)).toThrow(/timeout must be a whole number of microseconds/);
    expect(() => decodeOipBody(body({ timeout: '1s' }), {}, model)).toThrow(/timeout must be/);
  });

  test('a sequence_id (stateful models) is refused with a message; 0 or empty is no sequence', () => {
    const inputs = [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'k', shape: [1], datatype: 'INT64', data: [1] }];
    const body = (parameters: object) => new Uint8Array(Buffer.from(JSON.stringify({ parameters, inputs })));
    expect(() => decodeOipBody(body({ sequence_id: 42, sequence_start: true }), {}, model)).toThrow(/sequence_id 42: model "m" has no sequence batching/);
    expect(() => decodeOipBody(body({ sequence_id: 'user-7' }), {}, model)).toThrow(/sequence_id "user-7"/);
    expect(decodeOipBody(body({ sequence_id: 0 }), {}, model).feeds.x.data).toEqual(new Float32Array([1, 2, 3]));
    expect(decodeOipBody(body({ sequence_id: '' }), {}, model).feeds.x.dims).toEqual([1, 3]);
  });

  test('binary sections at any offset (header lengths that break alignment) read the same values', () => {
    for (const pad of [0, 1, 2, 3, 5]) {
      const x = new Float32Array([1, 2, 3, 4, 5, 6]);
      const k = new BigInt64Array([7n]);
      const { body, headerLength } = framed(
        { id: ' '.repeat(pad), inputs: [
          { name: 'x', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } },
          { name: 'k', shape: [1], datatype: 'INT64', parameters: { binary_data_size: 8 } },
        ] },
        new Uint8Array(x.buffer), new Uint8Array(k.buffer),
      );
      // A plain Uint8Array (what a worker receives) and a Buffer (whose slice() is no copy) alike.
      for (const given of [body, Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) {
        const decoded = decodeOipBody(given, { headerLength }, model);
        expect(Array.from(decoded.feeds.x.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
        expect((decoded.feeds.k.data as BigInt64Array)[0]).toBe(7n);
      }
    }
  });

  test('binary and JSON inputs mix; trailing bytes no input accounts for are refused', () => {
    const ok = framed({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }, { name: 'k', shape: [1], datatype: 'INT64', data: [3] }] }, new Uint8Array(new Float32Array([1, 2, 3]).buffer));
    expect(decodeOipBody(ok.body, { headerLength: ok.headerLength }, model).feeds.k.data).toEqual(new BigInt64Array([3n]));
    const extra = framed({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }, { name: 'k', shape: [1], datatype: 'INT64', data: [3] }] }, new Uint8Array(16));
    expect(() => decodeOipBody(extra.body, { headerLength: extra.headerLength }, model)).toThrow(/4 bytes after the header/);
  });

  test('requested outputs: named ones with their binary flag; binary_data_output is the default', () => {
    const text = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'k', shape: [1], datatype: 'INT64', data: [1] }],
      outputs: [{ name: 'b' }, { name: 'a', parameters: { binary_data: false } }], parameters: { binary_data_output: true },
    }));
    const decoded = decodeOipBody(new Uint8Array(text), {}, model);
    expect(decoded.outputs).toEqual([{ name: 'b', binary: true }, { name: 'a', binary: false }]);
    const twice = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'k', shape: [1], datatype: 'INT64', data: [1] }], outputs: [{ name: 'a' }, { name: 'a' }] }));
    expect(() => decodeOipBody(new Uint8Array(twice), {}, model)).toThrow(/twice/);
  });

  test('a raw body fills the one input; its one variable dimension comes from the byte count', () => {
    const one: OipModel = { ...model, inputs: [{ name: 'x', type: 'float32', shape: ['N', 3] }] };
    const decoded = decodeOipBody(new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer), { headerLength: 0 }, one);
    expect(decoded.feeds.x.dims).toEqual([2, 3]);
    expect(() => decodeOipBody(new Uint8Array(8), { headerLength: 0 }, model)).toThrow(/one input/);
  });

  test('BYTES elements: 4-byte little-endian length, then the bytes; a cut element is refused', () => {
    const section = Buffer.from([2, 0, 0, 0, 0x68, 0x69, 0, 0, 0, 0]);
    expect(splitBytesElements(section, 's').map((e) => Buffer.from(e).toString())).toEqual(['hi', '']);
    expect(() => splitBytesElements(Buffer.from([5, 0, 0, 0, 1]), 's')).toThrow(/5 bytes/);
    expect(() => splitBytesElements(Buffer.from([5, 0]), 's')).toThrow(/4-byte length/);
  });

  test('BYTES for a string tensor must be UTF-8: other bytes would change on their way into a JS string', () => {
    const strings: OipModel = { name: 's', inputs: [{ name: 't', type: 'string', shape: [2] }], outputs: [{ name: 'o', type: 'string', shape: [2] }], takesImages: false };
    const header = { inputs: [{ name: 't', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 13 } }] };
    const ok = framed(header, Buffer.from([2, 0, 0, 0, 0x68, 0x69, 3, 0, 0, 0, 0xe2, 0x82, 0xac]));
    expect(decodeOipBody(ok.body, { headerLength: ok.headerLength }, strings).feeds.t.data).toEqual(['hi', '€']);
    const bad = framed(header, Buffer.from([2, 0, 0, 0, 0x68, 0x69, 3, 0, 0, 0, 0xff, 0xfe, 0x00]));
    expect(() => decodeOipBody(bad.body, { headerLength: bad.headerLength }, strings)).toThrow(/BYTES element 1 is not UTF-8/);
    // A leading U+FEFF is the element's own character, kept.
    const bom = framed({ inputs: [{ name: 't', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 13 } }] }, Buffer.from([4, 0, 0, 0, 0xef, 0xbb, 0xbf, 0x61, 1, 0, 0, 0, 0x62]));
    expect(decodeOipBody(bom.body, { headerLength: bom.headerLength }, strings).feeds.t.data).toEqual(['\ufeffa', 'b']);
  });

  test('a lifted JSON array is checked as any other: count, finiteness, integer range', () => {
    const body = (data: string, type = 'FP32', name = 'x', shape = '[1,3]') => new Uint8Array(Buffer.from(
      `{"inputs":[{"name":"${name}","shape":${shape},"datatype":"${type}","data":${data}},{"name":"${name === 'x' ? 'k' : 'x'}","shape":${name === 'x' ? '[1]' : '[1,3]'},"datatype":"${name === 'x' ? 'INT64' : 'FP32'}","data":${name === 'x' ? '[1]' : '[1,2,3]'}}]}`,
    ));
    expect(Array.from(decodeOipBody(body('[1.5,2,3]'), {}, model).feeds.x.data as Float32Array)).toEqual([1.5, 2, 3]);
    expect(() => decodeOipBody(body('[1,2]'), {}, model)).toThrow(/2 values but shape \[1,3\] needs 3/);
    expect(() => decodeOipBody(body('[1,2,1e999]'), {}, model)).toThrow(/finite/);
    expect(() => decodeOipBody(body('[1.5]', 'INT64', 'k', '[1]'), {}, model)).toThrow(/integer/);
  });
});

describe('classification (Triton\'s extension)', () => {
  test('top classes, highest first, ties by index, with labels where the model has them', () => {
    const t = { type: 'float32' as const, dims: [1, 4], data: new Float32Array([1.1, 3.3, 0.5, 2.4]) };
    // A model that does not batch: one ranking over the whole tensor, shape [k] (Triton drops the 1).
    expect(classified(t, 2, undefined, 'y')).toEqual({ type: 'string', dims: [2], data: ['3.300000:1', '2.400000:3'] });
    expect(classified(t, 2, ['a', 'b', 'c', 'd'], 'y').data).toEqual(['3.300000:1:b', '2.400000:3:d']);
    expect(classified(t, 2, undefined, 'y', true)).toEqual({ type: 'string', dims: [1, 2], data: ['3.300000:1', '2.400000:3'] });
    const ints = { type: 'int32' as const, dims: [2, 3], data: new Int32Array([4, 9, 9, 1, 0, 2]) };
    // Batched: one ranking per batch entry; not batched: indexes count into all six elements.
    expect(classified(ints, 2, undefined, 'y', true)).toEqual({ type: 'string', dims: [2, 2], data: ['9:1', '9:2', '2:2', '1:0'] });
    expect(classified(ints, 3, undefined, 'y')).toEqual({ type: 'string', dims: [3], data: ['9:1', '9:2', '4:0'] });
    const cube = { type: 'float32' as const, dims: [2, 2, 2], data: new Float32Array([0, 1, 7, 2, 5, 3, 4, 6]) };
    expect(classified(cube, 1, undefined, 'y', true)).toEqual({ type: 'string', dims: [2, 1], data: ['7.000000:2', '6.000000:3'] });
    // More classes than there are: every one, in order.
    expect(classified({ type: 'float32', dims: [3], data: new Float32Array([0, 2, 1]) }, 5, undefined, 'y')).toEqual({ type: 'string', dims: [3], data: ['2.000000:1', '1.000000:2', '0.000000:0'] });
    expect(() => classified({ type: 'string', dims: [1], data: ['x'] }, 1, undefined, 'words')).toThrow(/"words" is not a tensor of numbers/);
    // NaN ranks last (as a difference it would leave the order to chance); 64-bit values written exactly.
    expect(classified({ type: 'float32', dims: [4], data: new Float32Array([0.1, NaN, 0.9, 0.5]) }, 3, undefined, 'y').data).toEqual(['0.900000:2', '0.500000:3', '0.100000:0']);
    expect(classified({ type: 'int64', dims: [2], data: new BigInt64Array([2n ** 60n + 1n, 3n]) }, 1, undefined, 'y').data).toEqual(['1152921504606846977:0']);
  });
});

describe('encodeOipResponse', () => {
  test('64-bit integers past 2^53 are written exactly in JSON (Number() would round them); others as before', () => {
    const big = { type: 'int64' as const, dims: [3], data: new BigInt64Array([2n ** 60n + 1n, -(2n ** 62n) - 3n, 7n]) };
    const small = { type: 'uint64' as const, dims: [2], data: new BigUint64Array([1n, 2n]) };
    const text = encodeOipResponse({ big, small }, { name: 'm', version: '1' }, { binaryOutput: false }).header;
    expect(text).toContain('"data":[1152921504606846977,-4611686018427387907,7]');
    expect(text).toContain('"data":[1,2]');
    // Still JSON, whose other fields are as they were.
    expect(JSON.parse(text)).toMatchObject({ model_name: 'm', outputs: [{ name: 'big', datatype: 'INT64', shape: [3] }, { name: 'small', datatype: 'UINT64', data: [1, 2] }] });
  });

  test('binary sections follow the header in its order; JSON outputs carry data', () => {
    const outputs = {
      a: { type: 'float32' as const, dims: [1, 2], data: new Float32Array([1, 2]) },
      b: { type: 'int32' as const, dims: [1], data: new Int32Array([9]) },
    };
    const answer = encodeOipResponse(outputs, { name: 'm', version: '2' }, { outputs: [{ name: 'b', binary: true }, { name: 'a', binary: true }], binaryOutput: false, id: 'q' });
    const header = JSON.parse(answer.header);
    expect(header).toEqual({ model_name: 'm', model_version: '2', id: 'q', outputs: [
      { name: 'b', datatype: 'INT32', shape: [1], parameters: { binary_data_size: 4 } },
      { name: 'a', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } },
    ] });
    const bin = Buffer.from(answer.binary!);
    expect(bin.readInt32LE(0)).toBe(9);
    expect([bin.readFloatLE(4), bin.readFloatLE(8)]).toEqual([1, 2]);
    const plain = encodeOipResponse(outputs, { name: 'm', version: '2' }, { binaryOutput: false });
    expect(plain.binary).toBeUndefined();
    expect(JSON.parse(plain.header).outputs[0].data).toEqual([1, 2]);
  });
});

describe('float16', () => {
  test('every finite half survives number → half → number; rounding is to nearest even', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToNumber(h);
      if (Number.isNaN(v)) continue;
      expect(numberToHalf(v)).toBe(h === 0x8000 ? 0x8000 : h);
    }
    expect(numberToHalf(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and the next half: even (1)
    expect(numberToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToHalf(1e6)).toBe(0x7c00);
    expect(numberToHalf(2 ** -26)).toBe(0);
  });
});

describe('metadata and Triton config', () => {
  const signature = {
    name: 'm', version: '1', versions: ['1'], inputs: [{ name: 'x', type: 'float32', shape: ['N', 3, 'H', 8] as (string | number)[] }],
    outputs: [{ name: 'y', type: 'string', shape: ['N'] as (string | number)[] }], batchSize: 1, maxBatchDelayMs: 5, workers: 2, modelFile: 'model.onnx',
  };
  test('metadata: -1 for variable dimensions, OIP datatypes', () => {
    expect(modelMetadata(signature)).toEqual({
      name: 'm', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, 8] }], outputs: [{ name: 'y', datatype: 'BYTES', shape: [-1] }],
    });
  });
  test('config: unbatched keeps the batch dimension; batched drops it and says how it batches', () => {
    expect(tritonModelConfig(signature)).toMatchObject({ max_batch_size: 0, input: [{ dims: [-1, 3, -1, 8], data_type: 'TYPE_FP32' }], output: [{ data_type: 'TYPE_STRING' }], instance_group: [{ count: 2, kind: 'KIND_CPU' }] });
    expect(tritonModelConfig({ ...signature, batchSize: 8 })).toMatchObject({ max_batch_size: 8, input: [{ dims: [3, -1, 8] }], dynamic_batching: { max_queue_delay_microseconds: 5000 } });
  });
  test('config: an image model\'s input is FORMAT_NCHW where Triton allows it (three dims: batched), FORMAT_NONE otherwise', () => {
    const image = { ...signature, inputs: [{ name: 'x', type: 'float32', shape: ['N', 3, 'H', 'W'] as (string | number)[] }], imageInput: 'x' };
    expect(tritonModelConfig({ ...image, batchSize: 8 }).input[0]).toMatchObject({ format: 'FORMAT_NCHW', dims: [3, -1, -1] });
    expect(tritonModelConfig(image).input[0]).toMatchObject({ format: 'FORMAT_NONE', dims: [-1, 3, -1, -1] });
    expect(tritonModelConfig({ ...signature, batchSize: 8 }).input[0].format).toBe('FORMAT_NONE');
  });
  test('config overrides from a repository load', () => {
    expect(configOverrides({ max_batch_size: 16, dynamic_batching: { max_queue_delay_microseconds: 500 }, instance_group: [{ count: 2 }, { count: 1 }] })).toEqual({ batchSize: 16, maxBatchDelayMs: 0.5, workers: 3 });
    expect(configOverrides({ max_batch_size: 0 })).toEqual({ batchSize: 1, maxBatchDelayMs: 0 });
    expect(() => configOverrides({ max_batch_size: -1 })).toThrow(/max_batch_size/);
    // As Triton: no request waits for a batch without dynamic_batching, whose delay defaults to 0.
    expect(configOverrides({ max_batch_size: 8 })).toEqual({ batchSize: 8, maxBatchDelayMs: 0 });
    expect(configOverrides({ max_batch_size: 8, dynamic_batching: {} })).toEqual({ batchSize: 8, maxBatchDelayMs: 0 });
    expect(() => configOverrides({ max_batch_size: 0, dynamic_batching: {} })).toThrow(/needs max_batch_size > 0/);
    expect(() => configOverrides({ dynamic_batching: 'yes' })).toThrow(/dynamic_batching must be an object/);
  });
  test('route targets: names with /, versions, actions', () => {
    expect(modelTarget(['m'])).toEqual({ name: 'm', version: undefined, action: undefined });
    expect(modelTarget(['m', 'versions', '2', 'infer'])).toEqual({ name: 'm', version: '2', action: 'infer' });
    expect(modelTarget(['a', 'b', 'ready'])).toEqual({ name: 'a/b', version: undefined, action: 'ready' });
    expect(modelTarget(['m', 'config', ''])).toEqual({ name: 'm', version: undefined, action: 'config' });
  });
});
