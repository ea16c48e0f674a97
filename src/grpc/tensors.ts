// ModelInferRequest/Response (gRPC) ↔ the OIP REST framing that workers decode: a JSON header naming
// each input's binary section, then the sections. Typed `contents` are laid out as binary here, so a
// worker meets one form; answers come back with every output in raw_output_contents, as Triton's do.
import { InvalidInputError } from '../errors';
import { binarySection, lengthPrefixed } from '../oip/response';
import { typeFromOip } from '../preprocess/tensor-types';
import type { TensorData } from '../preprocess/tensor-types';

export interface InferParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameter>;
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameter>;
  inputs: InferInputTensor[];
  outputs: { name: string; parameters?: Record<string, InferParameter> }[];
  raw_input_contents: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Buffer[];
}

/** The one typed field an input's datatype is carried in. */
function typedContents(input: InferInputTensor): TensorData | undefined {
  const c = input.contents;
  if (!c) return undefined;
  const type = typeFromOip(input.datatype);
  const dims = input.shape;
  switch (type) {
    case 'bool': return c.bool_contents?.length ? { type, dims, data: Uint8Array.from(c.bool_contents, (b) => (b ? 1 : 0)) } : undefined;
    case 'int8': return c.int_contents?.length ? { type, dims, data: Int8Array.from(c.int_contents) } : undefined;
    case 'int16': return c.int_contents?.length ? { type, dims, data: Int16Array.from(c.int_contents) } : undefined;
    case 'int32': return c.int_contents?.length ? { type, dims, data: Int32Array.from(c.int_contents) } : undefined;
    case 'uint8': return c.uint_contents?.length ? { type, dims, data: Uint8Array.from(c.uint_contents) } : undefined;
    case 'uint16': return c.uint_contents?.length ? { type, dims, data: Uint16Array.from(c.uint_contents) } : undefined;
    case 'uint32': return c.uint_contents?.length ? { type, dims, data: Uint32Array.from(c.uint_contents) } : undefined;
    case 'int64': return c.int64_contents?.length ? { type, dims, data: BigInt64Array.from(c.int64_contents, (v) => BigInt(v)) } : undefined;
    case 'uint64': return c.uint64_contents?.length ? { type, dims, data: BigUint64Array.from(c.uint64_contents, (v) => BigInt(v)) } : undefined;
    case 'float32': return c.fp32_contents?.length ? { type, dims, data: Float32Array.from(c.fp32_contents) } : undefined;
    case 'float64': return c.fp64_contents?.length ? { type, dims, data: Float64Array.from(c.fp64_contents) } : undefined;
    default: return undefined;
  }
}

/** Triton's classification parameter (an int64_param) as the REST header carries it; the worker checks it. */
function classification(parameters: Record<string, InferParameter> | undefined): { classification?: unknown } {
  const p = parameters?.classification;
  return p?.parameter_choice ? { classification: p[p.parameter_choice] } : {};
}

/** A ModelInferRequest as a body the worker decodes, and its header's length. */
export function inferRequestBody(request: ModelInferRequest): { body: Uint8Array; headerLength: number } {
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw new InvalidInputError(`raw_input_contents has ${raw.length} entries but the request has ${request.inputs.length} inputs: give one per input, in order`);
  }
  const sections: Uint8Array[] = [];
  const inputs = request.inputs.map((input, i) => {
    let section: Uint8Array | undefined = raw.length > 0 ? raw[i] : undefined;
    if (section === undefined) {
      // BYTES keep their bytes: an encoded image must not pass through a string.
      if (input.datatype === 'BYTES' && input.contents?.bytes_contents?.length) section = lengthPrefixed(input.contents.bytes_contents);
      else {
        const typed = typedContents(input);
        if (!typed) throw new InvalidInputError(`input "${input.name}" has no data: put it in raw_input_contents, or in the contents field its datatype ${input.datatype} uses`);
        section = binarySection(typed);
      }
    } else if (input.contents && Object.values(input.contents).some((v) => Array.isArray(v) && v.length > 0)) {
      throw new InvalidInputError(`input "${input.name}" has both contents and raw_input_contents`);
    }
    sections.push(section);
    return { name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: section.byteLength } };
  });
  // The request parameters the worker acts on, as the REST header carries them.
  const carried: Record<string, unknown> = {};
  for (const key of ['sequence_id', 'timeout']) {
    const p = request.parameters?.[key];
    if (p?.parameter_choice) carried[key] = p[p.parameter_choice];
  }
  const text = JSON.stringify({
    ...(request.id ? { id: request.id } : {}),
    inputs,
    ...(request.outputs?.length ? { outputs: request.outputs.map((o) => ({ name: o.name, parameters: { binary_data: true, ...classification(o.parameters) } })) } : {}),
    parameters: { binary_data_output: true, ...carried },
  });
  // Spaces after the JSON bring the first tensor to an 8-byte boundary: the worker reads it in place.
  const json = Buffer.from(text);
  const header = json.length % 8 === 0 ? json : Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  return { body: Buffer.concat([header, ...sections]), headerLength: header.length };
}

interface HeaderOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: { binary_data_size?: number };
}

/** The worker's answer (header + binary sections) as a ModelInferResponse. */
export function inferResponse(header: string, binary: Uint8Array | undefined): ModelInferResponse {
  const parsed = JSON.parse(header) as { model_name: string; model_version: string; id?: string; outputs: HeaderOutput[] };
  const bytes = binary ? Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength) : Buffer.alloc(0);
  let at = 0;
  const raw: Buffer[] = [];
  for (const o of parsed.outputs) {
    const size = o.parameters?.binary_data_size ?? 0;
    raw.push(bytes.subarray(at, at + size));
    at += size;
  }
  return {
    model_name: parsed.model_name,
    model_version: parsed.model_version,
    id: parsed.id ?? '',
    outputs: parsed.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
    raw_output_contents: raw,
  };
}
