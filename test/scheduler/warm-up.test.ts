// The warm-up request: zeros at the size a typical request gives, as an OIP JSON header + binary body.
import { imageInputSchema } from '../../src/models/model-config';
import { warmUpRequest } from '../../src/scheduler/warm-up';

function decoded(w: { body: Uint8Array; headerLength: number }) {
  const header = JSON.parse(Buffer.from(w.body.subarray(0, w.headerLength)).toString('utf8')) as { inputs: { name: string; datatype: string; shape: number[]; parameters: { binary_data_size: number } }[] };
  return { header, binaryBytes: w.body.byteLength - w.headerLength, allZero: w.body.subarray(w.headerLength).every((b) => b === 0) };
}

test('a detector (fit to maxSide, sides a multiple of 32) warms up on a full-size square, NCHW', () => {
  const image = imageInputSchema.parse({ resize: 'fit', maxSide: 970, multiple: 32 });
  const w = warmUpRequest([{ name: 'x', type: 'float32', shape: ['batch', 3, 'h', 'w'] }], image)!;
  const { header, binaryBytes, allZero } = decoded(w);
  expect(header.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [1, 3, 960, 960], parameters: { binary_data_size: 960 * 960 * 3 * 4 } }]);
  expect(binaryBytes).toBe(960 * 960 * 3 * 4);
  expect(allZero).toBe(true);
});

test('a recogniser (to a height, nominal width) warms up at height × width; NHWC is read from where the 3 is', () => {
  const image = imageInputSchema.parse({ resize: 'height', height: 48, width: 320, maxWidth: 3200 });
  expect(decoded(warmUpRequest([{ name: 'x', type: 'float32', shape: [-1, 3, 48, -1] }], image)!).header.inputs[0].shape).toEqual([1, 3, 48, 320]);
  expect(decoded(warmUpRequest([{ name: 'x', type: 'float32', shape: [-1, -1, -1, 3] }], image)!).header.inputs[0].shape).toEqual([1, 48, 320, 3]);
});

test('a tensor model: fixed dims kept, free ones 1, every input; other inputs than the image one untouched', () => {
  const image = imageInputSchema.parse({ input: 'pixels', width: 64, height: 32 });
  const w = warmUpRequest([
    { name: 'pixels', type: 'float32', shape: [1, 3, -1, -1] },
    { name: 'ids', type: 'int64', shape: ['n', 4] },
  ], image)!;
  const { header, binaryBytes } = decoded(w);
  expect(header.inputs.map((i) => [i.name, i.datatype, i.shape])).toEqual([['pixels', 'FP32', [1, 3, 32, 64]], ['ids', 'INT64', [1, 4]]]);
  expect(binaryBytes).toBe(3 * 32 * 64 * 4 + 4 * 8);
});

test('no warm-up where no input can be made: a string input, or a zero-sized dim', () => {
  expect(warmUpRequest([{ name: 's', type: 'string', shape: [1] }], undefined)).toBeUndefined();
  expect(warmUpRequest([{ name: 'x', type: 'float32', shape: [0, 3] }], undefined)).toBeUndefined();
  expect(warmUpRequest([], undefined)).toBeUndefined();
});
