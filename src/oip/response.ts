// Encodes an Open Inference Protocol (v2) inference response: outputs as JSON `data`, or as binary
// sections after the JSON header (binary tensor data extension) where the request asked for them.
import { InvalidInputError } from '../errors';
import { halfToNumber } from '../preprocess/float16';
import { TensorData, oipDatatype } from '../preprocess/tensor-types';
import type { RequestedOutput } from './request';

export interface OipAnswer {
  /** The JSON response, or the JSON header that describes the binary sections. */
  header: string;
  /** The binary sections, in the header's order, when any output is binary. */
  binary?: Uint8Array;
}

export interface OipResponseOptions {
  outputs?: RequestedOutput[];
  binaryOutput: boolean;
  id?: string;
  /** The model batches on its first dimension (its Triton config has max_batch_size > 0). */
  batched?: boolean;
}

/** Stands in for an exact integer array in the text JSON.stringify writes; the nonce keeps an output string from meaning one. */
const EXACT_PREFIX = `\u0000quiver-exact-${Math.random().toString(36).slice(2)}:`;

/** 64-bit integers past 2^53, which a JSON number from Number() would round: their exact text. */
function exactIntegers(data: BigInt64Array | BigUint64Array): string | undefined {
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (data.every((v) => v <= limit && v >= -limit)) return undefined;
  return `[${Array.from(data, (v) => v.toString()).join(',')}]`;
}

function jsonValues(t: TensorData): (number | boolean | string)[] {
  switch (t.type) {
    case 'bool': return Array.from(t.data as Uint8Array, (v) => v !== 0);
    case 'int64': case 'uint64': return Array.from(t.data as BigInt64Array, (v) => Number(v));
    case 'float16': return Array.from(t.data as Uint16Array, halfToNumber);
    case 'string': return t.data as string[];
    default: return Array.from(t.data as Float32Array);
  }
}

/**
 * Triton's classification extension: the `classes` highest values (ties by index) as
 * "value:index[:label]", a BYTES tensor. As Triton ranks them: a model that batches on its first dimension
 * gets one ranking per batch entry over all its other elements (shape [batch, k]); any other model one
 * ranking over the whole tensor (shape [k]); indexes count into those flattened elements. Floats are
 * written as Triton writes them (six decimals), integers whole.
 */
export function classified(t: TensorData, classes: number, labels: readonly string[] | undefined, name: string, batched = false): TensorData {
  if (t.type === 'string') throw new InvalidInputError(`output "${name}" is not a tensor of numbers: it cannot be classified`);
  const byEntry = batched && t.dims.length > 0;
  const rows = byEntry ? t.dims[0] : 1;
  const width = (byEntry ? t.dims.slice(1) : t.dims).reduce((a, b) => a * b, 1);
  const k = Math.min(classes, width);
  const values: number[] = t.type === 'float16' ? Array.from(t.data as Uint16Array, halfToNumber) : Array.from(t.data as Float32Array, Number);
  const float = t.type === 'float16' || t.type === 'float32' || t.type === 'float64';
  const big = t.type === 'int64' || t.type === 'uint64';
  // NaN ranks last: as a difference it would compare equal to everything and break the order.
  const rank = (i: number) => (Number.isNaN(values[i]) ? -Infinity : values[i]);
  const text = (i: number) => (float ? values[i].toFixed(6) : big ? (t.data as BigInt64Array)[i].toString() : String(values[i]));
  const out: string[] = [];
  for (let row = 0; row < rows; row++) {
    const base = row * width;
    const order = Array.from({ length: width }, (_, i) => i).sort((a, b) => rank(base + b) - rank(base + a) || a - b);
    for (const index of order.slice(0, k)) {
      const label = labels?.[index];
      out.push(`${text(base + index)}:${index}${label !== undefined ? `:${label}` : ''}`);
    }
  }
  return { type: 'string', dims: byEntry ? [rows, k] : [k], data: out };
}

/** BYTES in binary: each element a 4-byte little-endian length, then its bytes. */
export function lengthPrefixed(parts: readonly Uint8Array[]): Uint8Array {
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.byteLength, at);
    out.set(p, at + 4);
    at += 4 + p.byteLength;
  }
  return out;
}

/** A tensor's binary section: its elements little-endian as they lie; BYTES length-prefixed. */
export function binarySection(t: TensorData): Uint8Array {
  if (t.type === 'string') return lengthPrefixed((t.data as string[]).map((s) => Buffer.from(s, 'utf8')));
  const data = t.data as Float32Array;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function encodeOipResponse(
  outputs: Record<string, TensorData>, model: { name: string; version: string; labels?: string[] }, options: OipResponseOptions,
): OipAnswer {
  const chosen: RequestedOutput[] = options.outputs ?? Object.keys(outputs).map((name) => ({ name, binary: options.binaryOutput }));
  const sections: Uint8Array[] = [];
  const exact: string[] = [];
  const described = chosen.map(({ name, binary, classes }) => {
    const produced = outputs[name];
    if (!produced) throw new InvalidInputError(`the model did not produce output "${name}"`);
    const t = classes !== undefined ? classified(produced, classes, model.labels, name, options.batched) : produced;
    const head = { name, datatype: oipDatatype(t.type), shape: t.dims };
    if (!binary) {
      const text = t.type === 'int64' || t.type === 'uint64' ? exactIntegers(t.data as BigInt64Array) : undefined;
      if (text === undefined) return { ...head, data: jsonValues(t) };
      exact.push(text);
      return { ...head, data: `${EXACT_PREFIX}${exact.length - 1}` };
    }
    const section = binarySection(t);
    sections.push(section);
    return { ...head, parameters: { binary_data_size: section.byteLength } };
  });
  let header = JSON.stringify({
    model_name: model.name,
    model_version: model.version,
    ...(options.id !== undefined ? { id: options.id } : {}),
    outputs: described,
  });
  exact.forEach((text, i) => (header = header.replace(JSON.stringify(`${EXACT_PREFIX}${i}`), text)));
  if (sections.length === 0) return { header };
  if (sections.length === 1) return { header, binary: sections[0] };
  const binary = new Uint8Array(sections.reduce((n, s) => n + s.byteLength, 0));
  let at = 0;
  for (const s of sections) {
    binary.set(s, at);
    at += s.byteLength;
  }
  return { header, binary };
}
