// A warm-up request: zeros at a model's nominal input size, as an OIP body (JSON header + binary
// sections). onnxruntime's arena grows on a session's first run, often by more than the load took (the
// PP-OCR detector: ~8 MiB loaded, ~150 MiB after one page), so a size asked for before any request
// (ModelMesh's loadModel) is only true after such a run.
import type { ImageInputConfig } from '../models/model-config';
import { ELEMENT_BYTES, TensorInfo, elementCount, isSupportedType, oipDatatype } from '../preprocess/tensor-types';

export interface WarmUpBody {
  body: Uint8Array;
  headerLength: number;
}

/** Height and width the image preprocessing gives a typical image, where the config says. */
function imageSize(image: ImageInputConfig): [number, number] | undefined {
  if (image.resize === 'fit') {
    if (!image.maxSide) return undefined;
    const side = Math.max(image.multiple, Math.floor(image.maxSide / image.multiple) * image.multiple);
    return [side, side];
  }
  if (!image.height || !image.width) return undefined;
  return [image.height, image.width];
}

/** The input's dims: fixed ones kept, an image input's height and width from its config, any other free one 1. */
function concreteDims(input: TensorInfo, size: [number, number] | undefined): number[] | undefined {
  const dims = input.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  if (size && dims.length === 4) {
    // NCHW (channels at 1) or NHWC (channels at 3), as the image preprocessing lays them out.
    const [h, w] = dims[1] === 3 || dims[3] !== 3 ? [2, 3] : [1, 2];
    if (dims[h] === -1) dims[h] = size[0];
    if (dims[w] === -1) dims[w] = size[1];
    if (dims[1] === -1 && dims[3] !== -1) dims[1] = 3;
  }
  const concrete = dims.map((d) => (d === -1 ? 1 : d));
  return elementCount(concrete) > 0 ? concrete : undefined;
}

/** The warm-up body for a model's inputs, or undefined when one cannot be made (string inputs, no size). */
export function warmUpRequest(inputs: readonly TensorInfo[], image: ImageInputConfig | undefined): WarmUpBody | undefined {
  const imageInput = image ? (image.input ?? inputs[0]?.name) : undefined;
  const size = image ? imageSize(image) : undefined;
  const header: { inputs: unknown[] } = { inputs: [] };
  let binaryBytes = 0;
  for (const input of inputs) {
    if (!isSupportedType(input.type) || input.type === 'string') return undefined;
    const dims = concreteDims(input, input.name === imageInput ? size : undefined);
    if (!dims) return undefined;
    const bytes = elementCount(dims) * ELEMENT_BYTES[input.type];
    header.inputs.push({ name: input.name, datatype: oipDatatype(input.type), shape: dims, parameters: { binary_data_size: bytes } });
    binaryBytes += bytes;
  }
  if (header.inputs.length === 0) return undefined;
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const body = new Uint8Array(head.length + binaryBytes);
  body.set(head, 0);
  return { body, headerLength: head.length };
}
