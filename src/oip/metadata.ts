// What the Open Inference Protocol's metadata and Triton's model configuration say about a model:
// pure functions of its signature, shared by the REST and gRPC front ends.
import { isSupportedType, oipDatatype } from '../preprocess/tensor-types';
import type { TensorInfo } from '../preprocess/tensor-types';
import type { ModelSignature } from '../scheduler/scheduler';

export const PLATFORM = 'onnxruntime_onnx';

/** OIP's name for an onnxruntime element type; one ONNX has and Quiver does not carry keeps its own. */
export function datatypeOf(type: string): string {
  return isSupportedType(type) ? oipDatatype(type) : type === 'bfloat16' ? 'BF16' : type.toUpperCase();
}

/** Symbolic and unknown dimensions are -1, as OIP clients expect. */
export function dimsOf(shape: TensorInfo['shape']): number[] {
  return shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

const tensorMetadata = (t: TensorInfo): TensorMetadata => ({ name: t.name, datatype: datatypeOf(t.type), shape: dimsOf(t.shape) });

export function modelMetadata(s: ModelSignature): ModelMetadata {
  return {
    name: s.name,
    versions: s.versions.length > 0 ? s.versions : s.version ? [s.version] : [],
    platform: PLATFORM,
    inputs: s.inputs.map(tensorMetadata),
    outputs: s.outputs.map(tensorMetadata),
  };
}

/** Triton's DataType enum name for an OIP datatype (BYTES is TYPE_STRING). */
export function tritonDataType(datatype: string): string {
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

export interface TritonModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: { name: string; data_type: string; format: string; dims: number[] }[];
  output: { name: string; data_type: string; dims: number[] }[];
  instance_group: { name: string; kind: string; count: number }[];
  default_model_filename: string;
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number };
}

/**
 * Triton's model configuration (what perf_analyzer and Triton's clients read). With dynamic batching
 * on, max_batch_size is the batch size and dims leave out the batch dimension; otherwise max_batch_size
 * is 0 and dims are the model's whole shape.
 */
export function tritonModelConfig(s: ModelSignature): TritonModelConfig {
  const batched = s.batchSize > 1;
  const dims = (t: TensorInfo) => (batched ? dimsOf(t.shape).slice(1) : dimsOf(t.shape));
  return {
    name: s.name,
    platform: PLATFORM,
    backend: 'onnxruntime',
    max_batch_size: batched ? s.batchSize : 0,
    // Triton takes FORMAT_NCHW with three dims only (batched, the batch one left out).
    input: s.inputs.map((t) => ({ name: t.name, data_type: tritonDataType(datatypeOf(t.type)), format: t.name === s.imageInput && dims(t).length === 3 ? 'FORMAT_NCHW' : 'FORMAT_NONE', dims: dims(t) })),
    output: s.outputs.map((t) => ({ name: t.name, data_type: tritonDataType(datatypeOf(t.type)), dims: dims(t) })),
    instance_group: [{ name: s.name, kind: 'KIND_CPU', count: s.workers }],
    default_model_filename: s.modelFile,
    ...(batched ? { dynamic_batching: { preferred_batch_size: [s.batchSize], max_queue_delay_microseconds: Math.round(s.maxBatchDelayMs * 1000) } } : {}),
  };
}

/** Settings a repository load's `parameters.config` (Triton model config JSON) may give. */
export interface ConfigOverrides {
  batchSize?: number;
  maxBatchDelayMs?: number;
  workers?: number;
}

/** Reads the parts of a Triton model config that Quiver has settings for; the rest is the model's own. */
export function configOverrides(config: unknown): ConfigOverrides {
  if (typeof config !== 'object' || config === null) return {};
  const c = config as Record<string, unknown>;
  const out: ConfigOverrides = {};
  const whole = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new TypeError(`${what} must be a whole number ≥ 0`);
    return v;
  };
  const dynamic = c.dynamic_batching;
  if (dynamic !== undefined && (typeof dynamic !== 'object' || dynamic === null || Array.isArray(dynamic))) throw new TypeError('dynamic_batching must be an object');
  if (c.max_batch_size !== undefined) {
    const max = whole(c.max_batch_size, 'max_batch_size');
    if (dynamic && max === 0) throw new TypeError('dynamic_batching needs max_batch_size > 0');
    out.batchSize = Math.max(1, max);
  }
  if (dynamic || c.max_batch_size !== undefined) {
    // No request waits for a batch unless dynamic_batching asks: Triton's delay is 0 unless given, and
    // without dynamic_batching it forms no batches (here: only requests already waiting run together).
    const delay = (dynamic as Record<string, unknown> | undefined)?.max_queue_delay_microseconds ?? 0;
    out.maxBatchDelayMs = whole(Number(delay), 'dynamic_batching.max_queue_delay_microseconds') / 1000;
  }
  const groups = c.instance_group;
  if (Array.isArray(groups) && groups.length > 0) {
    out.workers = groups.reduce((n: number, g: unknown) => n + whole((g as Record<string, unknown>)?.count ?? 1, 'instance_group.count'), 0);
  }
  return out;
}
