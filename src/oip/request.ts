// Decodes an Open Inference Protocol (v2) inference request: the JSON header, tensors as JSON `data`
// (flat or nested) or as binary sections after the header (the binary tensor data extension), or a
// raw body holding the one input. Runs on the worker thread, checked against the model's inputs.
import { InvalidInputError, SharedMemoryDisabledError } from '../errors';
import {
  BuildContext, TensorParseOptions, buildTensor, checkShape, modelInput, nestedShape, tensorFromNumbers,
} from '../preprocess/tensor-json';
import { LiftedJson, liftNumberArrays, liftedArray } from './json-numbers';
import {
  ELEMENT_BYTES, TensorArray, TensorData, TensorElementType, TensorInfo, elementCount, takesOnlyFloat32, typeFromOip,
} from '../preprocess/tensor-types';

export interface RequestedOutput {
  name: string;
  binary: boolean;
  /** Triton's classification extension: the top this-many classes as "value:index[:label]" strings. */
  classes?: number;
}

export interface OipRequest {
  feeds: Record<string, TensorData>;
  id?: string;
  /** The outputs the request named, in its order; undefined: every output. */
  outputs?: RequestedOutput[];
  /** binary_data_output: outputs it did not name (or all, when it named none) go back as binary. */
  binaryOutput: boolean;
  /** A BYTES input holding an encoded image, for a model that takes images. */
  image?: Uint8Array;
  /** Triton's `timeout` parameter: microseconds the request may wait before its run starts (0: no limit). */
  timeoutUs?: number;
}

/** How the body is framed: JSON only, JSON header plus binary sections, or (0) the raw input alone. */
export interface OipFraming {
  headerLength?: number;
  /** Set by the scheduler: the model batches on its first dimension, as its Triton config says. */
  batched?: boolean;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parameter(params: unknown, key: string): unknown {
  return isObject(params) ? params[key] : undefined;
}

/** The bytes of one binary section as the element type, without a copy when they are aligned. */
function typedView(bytes: Uint8Array, type: Exclude<TensorElementType, 'string'>, count: number): TensorArray {
  const size = ELEMENT_BYTES[type];
  // A copy made with the constructor: a Buffer's slice() is a view, as unaligned as the bytes.
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const { buffer, byteOffset } = aligned;
  switch (type) {
    case 'float32': return new Float32Array(buffer, byteOffset, count);
    case 'float64': return new Float64Array(buffer, byteOffset, count);
    case 'int8': return new Int8Array(buffer, byteOffset, count);
    case 'uint8': case 'bool': return new Uint8Array(buffer, byteOffset, count);
    case 'int16': return new Int16Array(buffer, byteOffset, count);
    case 'uint16': case 'float16': return new Uint16Array(buffer, byteOffset, count);
    case 'int32': return new Int32Array(buffer, byteOffset, count);
    case 'uint32': return new Uint32Array(buffer, byteOffset, count);
    case 'int64': return new BigInt64Array(buffer, byteOffset, count);
    case 'uint64': return new BigUint64Array(buffer, byteOffset, count);
  }
}

/** BYTES in binary: each element a 4-byte little-endian length, then that many bytes. */
export function splitBytesElements(bytes: Uint8Array, name: string): Uint8Array[] {
  const elements: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.byteLength) {
    if (at + 4 > bytes.byteLength) throw new InvalidInputError(`input "${name}": BYTES data ends inside an element's 4-byte length`);
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > bytes.byteLength) throw new InvalidInputError(`input "${name}": a BYTES element says ${length} bytes but only ${bytes.byteLength - at} are left`);
    elements.push(bytes.subarray(at, at + length));
    at += length;
  }
  return elements;
}

// ignoreBOM: a leading U+FEFF is the element's own, not a mark to drop.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function binaryTensor(bytes: Uint8Array, type: TensorElementType, dims: number[], name: string): TensorData {
  const count = elementCount(dims);
  if (type === 'string') {
    const elements = splitBytesElements(bytes, name);
    if (elements.length !== count) throw new InvalidInputError(`input "${name}" holds ${elements.length} BYTES elements but shape [${dims}] needs ${count}`);
    // onnxruntime-node holds string tensors as JS strings: bytes that are not UTF-8 would change on the way.
    return {
      type, dims, data: elements.map((e, i) => {
        try {
          return STRICT_UTF8.decode(e);
        } catch {
          throw new InvalidInputError(`input "${name}": BYTES element ${i} is not UTF-8 text, which a string tensor of an ONNX model holds (an encoded image goes to an image model)`);
        }
      }),
    };
  }
  const expected = count * ELEMENT_BYTES[type];
  if (bytes.byteLength !== expected) {
    throw new InvalidInputError(`input "${name}" has ${bytes.byteLength} bytes of binary data but shape [${dims}] of ${type} needs ${expected}`);
  }
  return { type, dims, data: typedView(bytes, type, count) };
}

function outputsOf(raw: unknown, outputs: TensorInfo[], binaryDefault: boolean): RequestedOutput[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) throw new InvalidInputError('"outputs" must be an array');
  const seen = new Set<string>();
  return raw.map((entry) => {
    if (!isObject(entry) || typeof entry.name !== 'string') throw new InvalidInputError('each entry of "outputs" needs a "name"');
    if (!outputs.some((o) => o.name === entry.name)) {
      throw new InvalidInputError(`the model has no output named ${JSON.stringify(entry.name)}; its outputs are: ${outputs.map((o) => o.name).join(', ')}`);
    }
    if (seen.has(entry.name)) throw new InvalidInputError(`output "${entry.name}" is requested twice`);
    seen.add(entry.name);
    // A server that takes client shared memory has taken these off before (http/oip.ts); a region left
    // unwritten would hand the client stale bytes.
    if (parameter(entry.parameters, 'shared_memory_region') !== undefined) {
      throw new SharedMemoryDisabledError(`output "${entry.name}" names shared memory, which this server does not take from clients (allow_client_shm is false)`);
    }
    const binary = parameter(entry.parameters, 'binary_data');
    if (binary !== undefined && typeof binary !== 'boolean') throw new InvalidInputError(`output "${entry.name}": binary_data must be true or false`);
    const classes = parameter(entry.parameters, 'classification');
    if (classes !== undefined && (typeof classes !== 'number' || !Number.isInteger(classes) || classes < 1)) {
      throw new InvalidInputError(`output "${entry.name}": classification must be a whole number of classes ≥ 1`);
    }
    return { name: entry.name, binary: binary ?? binaryDefault, ...(classes !== undefined ? { classes } : {}) };
  });
}

export interface OipModel {
  name: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The model takes images: a BYTES input is taken as an encoded image. */
  takesImages: boolean;
}

/** A parsed JSON header (and the binary sections after it) → tensors for the model. */
export function decodeOipHeader(
  header: unknown, binary: Uint8Array | undefined, model: OipModel, options: TensorParseOptions = {}, jsonLength = 0, lifted?: LiftedJson,
): OipRequest {
  if (!isObject(header)) throw new InvalidInputError('the inference request must be a JSON object with "inputs"');
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) throw new InvalidInputError('"inputs" must be a non-empty array');
  const sequenceId = parameter(header.parameters, 'sequence_id');
  if (sequenceId !== undefined && sequenceId !== 0 && sequenceId !== '') {
    throw new InvalidInputError(`sequence_id ${JSON.stringify(sequenceId)}: model "${model.name}" has no sequence batching (its config shows none); send the request without sequence_id`);
  }
  const timeoutUs = parameter(header.parameters, 'timeout');
  if (timeoutUs !== undefined && (typeof timeoutUs !== 'number' || !Number.isInteger(timeoutUs) || timeoutUs < 0)) {
    throw new InvalidInputError('timeout must be a whole number of microseconds ≥ 0');
  }
  const binaryOutput = parameter(header.parameters, 'binary_data_output');
  if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') throw new InvalidInputError('binary_data_output must be true or false');
  const ctx: BuildContext = { options, maxElements: Math.ceil(jsonLength / 2) };
  const feeds: Record<string, TensorData> = {};
  let offset = 0;
  let image: Uint8Array | undefined;
  for (const raw of header.inputs) {
    if (!isObject(raw)) throw new InvalidInputError('each entry of "inputs" must be an object');
    const { name, shape, datatype, data } = raw;
    if (typeof datatype !== 'string') throw new InvalidInputError(`input ${JSON.stringify(name)} needs a "datatype" such as FP32`);
    if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
      throw new InvalidInputError(`input ${JSON.stringify(name)} needs a "shape" array of whole numbers ≥ 0`);
    }
    const dims = shape as number[];
    const size = parameter(raw.parameters, 'binary_data_size');
    let section: Uint8Array | undefined;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw new InvalidInputError(`input ${JSON.stringify(name)}: binary_data_size must be a whole number of bytes`);
      if (!binary || offset + size > binary.byteLength) {
        throw new InvalidInputError(`input ${JSON.stringify(name)} says ${size} bytes of binary data follow the header, but the body has ${binary ? binary.byteLength - offset : 0} left (is Inference-Header-Content-Length set?)`);
      }
      section = binary.subarray(offset, offset + size);
      offset += size;
    }
    if (model.takesImages && datatype.toUpperCase() === 'BYTES' && !model.inputs.some((i) => i.name === name && i.type === 'string')) {
      if (image) throw new InvalidInputError('an image model takes one encoded image per request');
      image = encodedImage(section, data, dims, String(name));
      continue;
    }
    const info = modelInput(model.inputs, name, model.name);
    if (feeds[info.name]) throw new InvalidInputError(`input "${info.name}" is given twice`);
    const type = typeFromOip(datatype);
    if (type === undefined) throw new InvalidInputError(`input "${info.name}": datatype ${datatype} is not one ONNX models take here (BOOL, UINT8-64, INT8-64, FP16, FP32, FP64, BYTES)`);
    if (type !== info.type) throw new InvalidInputError(`input "${info.name}" has datatype ${datatype} but the model expects ${info.type}`);
    checkShape(dims, info, info.name);
    if (section) {
      if (data !== undefined) throw new InvalidInputError(`input "${info.name}" has both "data" and binary_data_size`);
      feeds[info.name] = binaryTensor(section, type, dims, info.name);
      continue;
    }
    const numbers = liftedArray(data, lifted);
    if (numbers) {
      // Nested data only has to hold as many values as "shape" says, as below.
      feeds[info.name] = tensorFromNumbers(numbers.values, dims, type, info.name, options);
      continue;
    }
    if (!Array.isArray(data)) {
      // Only a server that takes client shared memory reads such inputs (before they reach here).
      if (parameter(raw.parameters, 'shared_memory_region') !== undefined) {
        throw new SharedMemoryDisabledError(`input "${info.name}" names shared memory, which this server does not take from clients (allow_client_shm is false)`);
      }
      throw new InvalidInputError(`input "${info.name}" needs a "data" array (or binary_data_size)`);
    }
    const flat = data.length === 0 || !Array.isArray(data[0]);
    if (flat) {
      feeds[info.name] = buildTensor(data, dims, type, info.name, true, ctx);
    } else {
      const nested = nestedShape(data, info.name);
      if (elementCount(nested) !== elementCount(dims)) throw new InvalidInputError(`input "${info.name}" data has shape [${nested}] but "shape" says [${dims}]`);
      feeds[info.name] = { ...buildTensor(data, nested, type, info.name, false, ctx), dims };
    }
  }
  if (binary && offset !== binary.byteLength) {
    throw new InvalidInputError(`the body has ${binary.byteLength - offset} bytes after the header that no input's binary_data_size accounts for`);
  }
  if (!image) {
    const missing = model.inputs.filter((i) => !feeds[i.name]).map((i) => i.name);
    if (missing.length > 0) throw new InvalidInputError(`model "${model.name}" needs input(s) ${missing.join(', ')}`);
  }
  const binaryDefault = binaryOutput === true;
  return {
    feeds,
    id: typeof header.id === 'string' ? header.id : undefined,
    outputs: outputsOf(header.outputs, model.outputs, binaryDefault),
    binaryOutput: binaryDefault,
    ...(image ? { image } : {}),
    ...(timeoutUs ? { timeoutUs } : {}),
  };
}

function encodedImage(section: Uint8Array | undefined, data: unknown, dims: number[], name: string): Uint8Array {
  if (elementCount(dims) !== 1) throw new InvalidInputError(`input "${name}" must hold one encoded image (shape [1]), not shape [${dims}]`);
  if (section) {
    const [element] = splitBytesElements(section, name);
    if (!element) throw new InvalidInputError(`input "${name}" holds no image`);
    return element;
  }
  const value = Array.isArray(data) ? data.flat(8)[0] : undefined;
  if (typeof value !== 'string') throw new InvalidInputError(`input "${name}" needs the image as binary data, or as a base64 string in "data"`);
  return Buffer.from(value, 'base64');
}

/** Inference-Header-Content-Length: 0: the whole body is the binary data of the model's one input. */
function decodeRaw(body: Uint8Array, model: OipModel): OipRequest {
  if (model.inputs.length !== 1) {
    throw new InvalidInputError(`a raw binary request (Inference-Header-Content-Length: 0) needs a model with one input; model "${model.name}" has ${model.inputs.length}`);
  }
  const info = model.inputs[0];
  const type = info.type as TensorElementType;
  if (type === 'string' || !(type in ELEMENT_BYTES)) throw new InvalidInputError(`input "${info.name}" has type ${info.type}, which a raw binary request cannot carry`);
  const fixed = info.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : undefined));
  const free = fixed.filter((d) => d === undefined).length;
  if (free > 1) throw new InvalidInputError(`input "${info.name}" has ${free} variable dimensions, so its shape cannot be read from a raw body; send a JSON header`);
  const known = fixed.reduce<number>((n, d) => n * (d ?? 1), 1) * ELEMENT_BYTES[type];
  if (known === 0 || body.byteLength % known !== 0) throw new InvalidInputError(`a raw body of ${body.byteLength} bytes is not a whole number of ${info.name}'s elements`);
  const dims = fixed.map((d) => d ?? body.byteLength / known);
  // A raw request has no header to ask for JSON: its outputs come back binary (Triton's binary extension).
  return { feeds: { [info.name]: binaryTensor(body, type, dims, info.name) }, binaryOutput: true };
}

/** The request body as the framing says: JSON, JSON header + binary, or a raw input. */
export function decodeOipBody(body: Uint8Array, framing: OipFraming, model: OipModel, options: TensorParseOptions = {}): OipRequest {
  const headerLength = framing.headerLength;
  if (headerLength === 0) return decodeRaw(body, model);
  if (headerLength !== undefined && headerLength > body.byteLength) {
    throw new InvalidInputError(`Inference-Header-Content-Length is ${headerLength} but the body has only ${body.byteLength} bytes`);
  }
  const jsonBytes = headerLength === undefined ? body : body.subarray(0, headerLength);
  // Number arrays are read straight into doubles; JSON.parse reads the rest.
  // Only float32 inputs: any number may be read as the float32 it becomes (others are refused by type).
  const lifted = liftNumberArrays(jsonBytes, { float32: takesOnlyFloat32(model.inputs) });
  const text = lifted.text;
  let header: unknown;
  try {
    header = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new InvalidInputError(`the inference request header is not valid JSON: ${(err as Error).message}`);
  }
  const binary = headerLength === undefined ? undefined : body.subarray(headerLength);
  return decodeOipHeader(header, binary, model, options, text.length, lifted);
}
