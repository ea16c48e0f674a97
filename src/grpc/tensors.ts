// ModelInferRequest/Response (gRPC) ↔ the OIP REST framing that workers decode: a JSON header naming
// each input's binary section, then the sections. Typed `contents` are laid out as binary here, so a
// worker meets one form; answers come back with every output in raw_output_contents, as Triton's do.
import { InvalidInputError, PayloadTooLargeError, SharedMemoryDisabledError, SharedMemoryError } from '../errors';
import { binarySection, lengthPrefixed } from '../oip/response';
import { HeldRef, SHM_BYTE_SIZE, SHM_OFFSET, SHM_REGION, Section, SharedMemoryRef, SystemSharedMemory, alignedHeader, assembleBody, sharedMemoryRef, unwritten } from '../oip/shared-memory';
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

/** An InferParameter's value, checked to be of the one kind Triton takes for it. */
function parameterValue(tensor: string, key: string, p: InferParameter | undefined, kinds: InferParameter['parameter_choice'][]): unknown {
  if (!p?.parameter_choice) return undefined;
  if (!kinds.includes(p.parameter_choice)) throw new SharedMemoryError(`tensor "${tensor}": ${key} must be a ${kinds[0]}`);
  return p[p.parameter_choice];
}

/** Where a tensor's data is in shared memory, from its parameters; undefined when it names none. */
function sharedMemoryOf(tensor: { name: string; parameters?: Record<string, InferParameter> }, shm: SystemSharedMemory | undefined): SharedMemoryRef | undefined {
  const p = tensor.parameters;
  if (!p || (!p[SHM_REGION] && !p[SHM_OFFSET] && !p[SHM_BYTE_SIZE])) return undefined;
  if (!shm) throw new SharedMemoryDisabledError(`tensor "${tensor.name}" names shared memory, which this server does not take from clients (allow_client_shm is false)`);
  return sharedMemoryRef(tensor.name,
    parameterValue(tensor.name, SHM_REGION, p[SHM_REGION], ['string_param']),
    parameterValue(tensor.name, SHM_OFFSET, p[SHM_OFFSET], ['int64_param', 'uint64_param']),
    parameterValue(tensor.name, SHM_BYTE_SIZE, p[SHM_BYTE_SIZE], ['int64_param', 'uint64_param']));
}

/**
 * A ModelInferRequest as a body the worker decodes, its header's length, and the outputs that go to shared
 * memory (held: release them once the call is answered).
 */
export function inferRequestBody(request: ModelInferRequest, shm?: SystemSharedMemory, maxSharedBytes = Infinity): { body: Uint8Array; headerLength: number; sharedOutputs?: Map<string, HeldRef> } {
  const raw = request.raw_input_contents ?? [];
  const shared = request.inputs.map((input) => sharedMemoryOf(input, shm));
  // A region may be a sparse object far larger than memory: what a request reads from them is bounded.
  const sharedBytes = shared.reduce((n, ref) => n + (ref?.byteSize ?? 0), 0);
  if (sharedBytes > maxSharedBytes) throw new PayloadTooLargeError(`the request's tensors in shared memory (${sharedBytes} bytes) pass grpc_max_message_size (${maxSharedBytes} bytes)`);
  // As Triton's clients send them: one raw entry per input not in shared memory, in order.
  const rawNeeded = shared.filter((ref) => ref === undefined).length;
  if (raw.length > 0 && raw.length !== rawNeeded) {
    throw new InvalidInputError(`raw_input_contents has ${raw.length} entries but the request has ${rawNeeded} inputs not in shared memory: give one per such input, in order`);
  }
  const sections: Section[] = [];
  let nextRaw = 0;
  const inputs = request.inputs.map((input, i) => {
    const hasContents = input.contents && Object.values(input.contents).some((v) => Array.isArray(v) && v.length > 0);
    const ref = shared[i];
    let section: Uint8Array | undefined;
    if (ref) {
      if (hasContents) throw new SharedMemoryError(`input "${input.name}" names shared memory and also has contents: give one`);
      shm!.check(ref, input.name);
      sections.push({ ref, tensor: input.name });
      return { name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: ref.byteSize } };
    } else {
      section = raw.length > 0 ? raw[nextRaw++] : undefined;
      if (section === undefined) {
        // BYTES keep their bytes: an encoded image must not pass through a string.
        if (input.datatype === 'BYTES' && input.contents?.bytes_contents?.length) section = lengthPrefixed(input.contents.bytes_contents);
        else {
          const typed = typedContents(input);
          if (!typed) throw new InvalidInputError(`input "${input.name}" has no data: put it in raw_input_contents, or in the contents field its datatype ${input.datatype} uses`);
          section = binarySection(typed);
        }
      } else if (hasContents) {
        throw new InvalidInputError(`input "${input.name}" has both contents and raw_input_contents`);
      }
    }
    sections.push(section);
    return { name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: section.byteLength } };
  });
  const sharedOutputs = new Map<string, SharedMemoryRef>();
  for (const o of request.outputs ?? []) {
    const ref = sharedMemoryOf(o, shm);
    if (!ref) continue;
    if (o.parameters?.classification?.parameter_choice) throw new SharedMemoryError(`output "${o.name}" cannot take both ${SHM_REGION} and classification`);
    shm!.check(ref, o.name);
    sharedOutputs.set(o.name, ref);
  }
  // The request parameters the worker acts on, as the REST header carries them.
  const carried: Record<string, unknown> = {};
  for (const key of ['sequence_id', 'timeout']) {
    const p = request.parameters?.[key];
    if (p?.parameter_choice) carried[key] = p[p.parameter_choice];
  }
  const header = alignedHeader({
    ...(request.id ? { id: request.id } : {}),
    inputs,
    ...(request.outputs?.length ? { outputs: request.outputs.map((o) => ({ name: o.name, parameters: { binary_data: true, ...classification(o.parameters) } })) } : {}),
    parameters: { binary_data_output: true, ...carried },
  });
  const body = assembleBody(header, sections, shm);
  return { body, headerLength: header.length, ...(sharedOutputs.size > 0 ? { sharedOutputs: new Map([...sharedOutputs].map(([name, ref]) => [name, shm!.hold(ref, name)])) } : {}) };
}

interface HeaderOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: { binary_data_size?: number };
}

/**
 * The worker's answer (header + binary sections) as a ModelInferResponse. An output that goes to shared
 * memory is written there and keeps an empty raw entry, as Triton's does (clients index them by output).
 */
export function inferResponse(header: string, binary: Uint8Array | undefined, shared?: { outputs: Map<string, SharedMemoryRef>; shm: SystemSharedMemory }): ModelInferResponse {
  const parsed = JSON.parse(header) as { model_name: string; model_version: string; id?: string; outputs: HeaderOutput[] };
  const bytes = binary ? Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength) : Buffer.alloc(0);
  let at = 0;
  const raw: Buffer[] = [];
  const written = new Set<string>();
  for (const o of parsed.outputs) {
    const size = o.parameters?.binary_data_size ?? 0;
    const section = bytes.subarray(at, at + size);
    at += size;
    const ref = shared?.outputs.get(o.name);
    if (ref) {
      shared!.shm.write(ref, section, o.name);
      written.add(o.name);
      raw.push(Buffer.alloc(0));
    } else raw.push(section);
  }
  if (shared) unwritten(shared.outputs, written);
  return {
    model_name: parsed.model_name,
    model_version: parsed.model_version,
    id: parsed.id ?? '',
    outputs: parsed.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
    raw_output_contents: raw,
  };
}
