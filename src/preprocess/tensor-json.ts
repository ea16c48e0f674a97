// JSON values → typed arrays, checked element by element: what the simple JSON form and the Open
// Inference Protocol's JSON tensors share.
import { InvalidInputError } from '../errors';
import { numberToHalf } from './float16';
import {
  TensorData, TensorElementType, TensorInfo, allocateTensorArray, elementCount, isSupportedType,
} from './tensor-types';

const MAX_RANK = 8;

/** Walks the first element at each depth to find the shape of a nested array. */
export function nestedShape(value: unknown, name: string): number[] {
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
const FLOAT16_MAX = 65504;

type ElementWriter = (out: TensorData['data'], index: number, value: unknown) => void;

/** One checked writer per input, so the per-element work is a few comparisons. */
export function elementWriter(type: TensorElementType, name: string, options: TensorParseOptions): ElementWriter {
  const refuse = (value: unknown, what: string): never => {
    throw new InvalidInputError(`input "${name}" holds ${typeof value === 'number' ? String(value) : JSON.stringify(value)} where ${what} belongs`);
  };
  if (type === 'string') {
    return (out, index, value) => {
      if (typeof value !== 'string') refuse(value, 'a string (BYTES)');
      (out as string[])[index] = value as string;
    };
  }
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
  const limit = type === 'float32' ? FLOAT32_MAX : type === 'float16' ? FLOAT16_MAX : Number.MAX_VALUE;
  const finite = `a finite ${type} (a model config may set allowNonFinite)`;
  const half = type === 'float16';
  return (out, index, value) => {
    if (typeof value !== 'number') refuse(value, 'a number');
    else if (!options.allowNonFinite && !(Math.abs(value) <= limit)) refuse(value, finite);
    if (half) (out as Uint16Array)[index] = numberToHalf(value as number);
    else (out as Float32Array)[index] = value as number;
  };
}

/** Copies a nested array of the given dims into `out`, refusing ragged arrays. */
export function fillNested(value: unknown, dims: number[], out: TensorData['data'], write: ElementWriter, name: string): void {
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

export function checkShape(dims: number[], info: TensorInfo, name: string): void {
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

export function modelInput(inputs: TensorInfo[], name: unknown, modelName: string): TensorInfo {
  const info = inputs.find((i) => i.name === name);
  if (!info) {
    throw new InvalidInputError(`model "${modelName}" has no input named ${JSON.stringify(name)}; its inputs are: ${inputs.map((i) => i.name).join(', ')}`);
  }
  if (!isSupportedType(info.type)) throw new InvalidInputError(`input "${info.name}" has type ${info.type}, which JSON requests cannot carry`);
  return info;
}

export interface BuildContext {
  options: TensorParseOptions;
  /** No tensor can hold more elements than the body has numbers: at most one per two bytes ("1,"). */
  maxElements: number;
}

export function buildTensor(value: unknown, dims: number[], type: TensorElementType, name: string, flat: boolean, ctx: BuildContext): TensorData {
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

/** A flat run of JSON numbers (already read as doubles) as a tensor of `type`, each value checked as elementWriter does. */
export function tensorFromNumbers(values: Float64Array, dims: number[], type: TensorElementType, name: string, options: TensorParseOptions): TensorData {
  const count = elementCount(dims);
  if (values.length !== count) throw new InvalidInputError(`input "${name}" has ${values.length} values but shape [${dims}] needs ${count}`);
  if (type === 'float32' || type === 'float64') {
    if (!options.allowNonFinite) {
      const limit = type === 'float32' ? FLOAT32_MAX : Number.MAX_VALUE;
      for (let i = 0; i < count; i++) {
        if (!(Math.abs(values[i]) <= limit)) throw new InvalidInputError(`input "${name}" holds ${values[i]} where a finite ${type} (a model config may set allowNonFinite) belongs`);
      }
    }
    return { type, dims, data: type === 'float32' ? Float32Array.from(values) : Float64Array.from(values) };
  }
  // Other types are rare in bulk: the per-element writer checks and converts them.
  const data = allocateTensorArray(type, count);
  const write = elementWriter(type, name, options);
  for (let i = 0; i < count; i++) write(data, i, values[i]);
  return { type, dims, data };
}
