// Decodes JSON tensor bodies — the Open Inference Protocol v2 form {"inputs":[{name,shape,datatype,data}]}
// and the simple {"<input name>": nested array} form — straight into typed arrays, checked against the
// model's inputs so that a wrong name, shape or type is a 400 that says which.
import { InvalidInputError } from '../errors';
import {
  TensorData, TensorElementType, TensorInfo, allocateTensorArray, elementCount, isSupportedType, typeFromOip,
} from './tensor-types';

export type TensorRequestFormat = 'oip' | 'simple';

export interface TensorRequest {
  format: TensorRequestFormat;
  feeds: Record<string, TensorData>;
  id?: string;
}

const MAX_RANK = 8;

/** Walks the first element at each depth to find the shape of a nested array. */
function nestedShape(value: unknown, name: string): number[] {
  const dims: number[] = [];
  let cursor = value;
  while (Array.isArray(cursor)) {
    dims.push(cursor.length);
    if (dims.length > MAX_RANK) throw new InvalidInputError(`input "${name}" is nested deeper than ${MAX_RANK} levels`);
    if (cursor.length === 0) break;
    cursor = cursor[0];
  }
  return dims;
}

export interface TensorParseOptions {
  /** Let NaN and ±Infinity through (JSON spells them 1e999); refused by default. */
  allowNonFinite?: boolean;
}

const INTEGER_RANGE: Partial<Record<TensorElementType, readonly [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
  // JSON numbers are doubles: beyond 2^53 an integer is no longer what the client wrote.
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], uint64: [0, Number.MAX_SAFE_INTEGER],
};
const FLOAT32_MAX = 3.4028234663852886e38;

type ElementWriter = (out: TensorData['data'], index: number, value: unknown) => void;

/** One checked writer per input, so the per-element work is a few comparisons. */
function elementWriter(type: TensorElementType, name: string, options: TensorParseOptions): ElementWriter {
  const refuse = (value: unknown, what: string): never => {
    throw new InvalidInputError(`input "${name}" holds ${typeof value === 'number' ? String(value) : JSON.stringify(value)} where ${what} belongs`);
  };
  if (type === 'bool') {
    return (out, index, value) => {
      if (typeof value !== 'boolean' && value !== 0 && value !== 1) refuse(value, 'a boolean');
      (out as Uint8Array)[index] = value ? 1 : 0;
    };
  }
  const range = INTEGER_RANGE[type];
  if (range) {
    const [min, max] = range;
    const what = `an integer from ${min} to ${max} (${type})`;
    const big = type === 'int64' || type === 'uint64';
    return (out, index, value) => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) refuse(value, what);
      if (big) (out as BigInt64Array)[index] = BigInt(value as number);
      else (out as Int32Array)[index] = value as number;
    };
  }
  const limit = type === 'float32' ? FLOAT32_MAX : Number.MAX_VALUE;
  const finite = `a finite ${type} (a model config may set allowNonFinite)`;
  return (out, index, value) => {
    if (typeof value !== 'number') refuse(value, 'a number');
    else if (!options.allowNonFinite && !(Math.abs(value) <= limit)) refuse(value, finite);
    (out as Float32Array)[index] = value as number;
  };
}

/** Copies a nested array of the given dims into `out`, refusing ragged arrays. */
function fillNested(value: unknown, dims: number[], out: TensorData['data'], write: ElementWriter, name: string): void {
  let index = 0;
  const walk = (node: unknown, depth: number): void => {
    if (depth === dims.length) {
      write(out, index++, node);
      return;
    }
    if (!Array.isArray(node) || node.length !== dims[depth]) {
      throw new InvalidInputError(`input "${name}" is ragged or has the wrong shape at depth ${depth}: expected ${dims[depth]} elements`);
    }
    for (const child of node) walk(child, depth + 1);
  };
  walk(value, 0);
}

function checkShape(dims: number[], info: TensorInfo, name: string): void {
  if (dims.length !== info.shape.length) {
    throw new InvalidInputError(`input "${name}" has shape [${dims}] but the model expects rank ${info.shape.length} ([${info.shape.map((d) => (typeof d === 'number' ? d : '?'))}])`);
  }
  info.shape.forEach((expected, i) => {
    if (typeof expected === 'number' && expected >= 0 && dims[i] !== expected) {
      throw new InvalidInputError(`input "${name}" has dimension ${i} = ${dims[i]} but the model expects ${expected}`);
    }
  });
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new InvalidInputError(`input "${name}" has an invalid shape [${dims}]`);
}

function modelInput(inputs: TensorInfo[], name: unknown, modelName: string): TensorInfo {
  const info = inputs.find((i) => i.name === name);
  if (!info) {
    throw new InvalidInputError(`model "${modelName}" has no input named ${JSON.stringify(name)}; its inputs are: ${inputs.map((i) => i.name).join(', ')}`);
  }
  if (!isSupportedType(info.type)) throw new InvalidInputError(`input "${info.name}" has type ${info.type}, which JSON requests cannot carry`);
  return info;
}

interface BuildContext {
  options: TensorParseOptions;
  /** No tensor can hold more elements than the body has numbers: at most one per two bytes ("1,"). */
  maxElements: number;
}

function buildTensor(value: unknown, dims: number[], type: TensorElementType, name: string, flat: boolean, ctx: BuildContext): TensorData {
  const count = elementCount(dims);
  // Checked before the buffer is allocated: a declared shape alone must not take memory.
  if (flat && (value as unknown[]).length !== count) {
    throw new InvalidInputError(`input "${name}" has ${(value as unknown[]).length} values but shape [${dims}] needs ${count}`);
  }
  if (count > ctx.maxElements) throw new InvalidInputError(`input "${name}" declares ${count} elements, more than its body holds`);
  const data = allocateTensorArray(type, count);
  const write = elementWriter(type, name, ctx.options);
  if (flat) {
    const arr = value as unknown[];
    for (let i = 0; i < count; i++) write(data, i, arr[i]);
  } else {
    fillNested(value, dims, data, write, name);
  }
  return { type, dims, data };
}

function parseOip(body: { inputs: unknown; id?: unknown }, inputs: TensorInfo[], modelName: string, ctx: BuildContext): TensorRequest {
  if (!Array.isArray(body.inputs) || body.inputs.length === 0) throw new InvalidInputError('"inputs" must be a non-empty array');
  const feeds: Record<string, TensorData> = {};
  for (const raw of body.inputs) {
    if (typeof raw !== 'object' || raw === null) throw new InvalidInputError('each entry of "inputs" must be an object');
    const { name, shape, datatype, data } = raw as Record<string, unknown>;
    const info = modelInput(inputs, name, modelName);
    if (feeds[info.name]) throw new InvalidInputError(`input "${info.name}" is given twice`);
    if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number')) throw new InvalidInputError(`input "${info.name}" needs a "shape" array of numbers`);
    if (typeof datatype !== 'string') throw new InvalidInputError(`input "${info.name}" needs a "datatype" such as FP32`);
    const type = typeFromOip(datatype);
    if (type !== info.type) throw new InvalidInputError(`input "${info.name}" has datatype ${datatype} but the model expects ${info.type}`);
    if (!Array.isArray(data)) throw new InvalidInputError(`input "${info.name}" needs a "data" array`);
    const dims = shape as number[];
    checkShape(dims, info, info.name);
    const flat = data.length === 0 || !Array.isArray(data[0]);
    if (!flat) {
      const nested = nestedShape(data, info.name);
      if (elementCount(nested) !== elementCount(dims)) throw new InvalidInputError(`input "${info.name}" data has shape [${nested}] but "shape" says [${dims}]`);
      feeds[info.name] = { ...buildTensor(data, nested, type, info.name, false, ctx), dims };
    } else {
      feeds[info.name] = buildTensor(data, dims, type, info.name, true, ctx);
    }
  }
  return { format: 'oip', feeds, id: typeof body.id === 'string' ? body.id : undefined };
}

function parseSimple(body: Record<string, unknown>, inputs: TensorInfo[], modelName: string, ctx: BuildContext): TensorRequest {
  const feeds: Record<string, TensorData> = {};
  for (const [name, value] of Object.entries(body)) {
    const info = modelInput(inputs, name, modelName);
    const dims = nestedShape(value, name);
    checkShape(dims, info, name);
    feeds[name] = buildTensor(value, dims, info.type as TensorElementType, name, false, ctx);
  }
  return { format: 'simple', feeds };
}

export function parseTensorRequest(text: string, inputs: TensorInfo[], modelName: string, options: TensorParseOptions = {}): TensorRequest {
  const ctx: BuildContext = { options, maxElements: Math.ceil(text.length / 2) };
  let body: unknown;
  try {
    // A byte order mark is allowed before JSON text (RFC 8259 §8.1), but JSON.parse refuses it.
    body = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new InvalidInputError(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('request body must be a JSON object: {"inputs":[...]} or {"<input name>": [...]}');
  }
  const request = 'inputs' in body && !inputs.some((i) => i.name === 'inputs')
    ? parseOip(body as { inputs: unknown }, inputs, modelName, ctx)
    : parseSimple(body as Record<string, unknown>, inputs, modelName, ctx);
  const missing = inputs.filter((i) => !request.feeds[i.name]).map((i) => i.name);
  if (missing.length > 0) throw new InvalidInputError(`model "${modelName}" needs input(s) ${missing.join(', ')}`);
  return request;
}
