// Output tensors → the JSON answer, in the same form the request used.
import type { TensorRequestFormat } from '../preprocess/tensor-request';
import { TensorData, oipDatatype } from '../preprocess/tensor-types';

type Json = number | boolean | Json[];

function plainValues(t: TensorData): number[] | boolean[] {
  if (t.type === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.type === 'int64' || t.type === 'uint64') return Array.from(t.data as BigInt64Array, (v) => Number(v));
  return Array.from(t.data as Float32Array);
}

export function nest(flat: readonly (number | boolean)[], dims: readonly number[]): Json {
  if (dims.length === 0) return flat[0];
  let offset = 0;
  const build = (depth: number): Json[] => {
    const out: Json[] = new Array(dims[depth]);
    for (let i = 0; i < dims[depth]; i++) out[i] = depth === dims.length - 1 ? flat[offset++] : build(depth + 1);
    return out;
  };
  return build(0);
}

export interface ModelIdentity {
  name: string;
  version: string;
}

export function tensorResponse(outputs: Record<string, TensorData>, format: TensorRequestFormat, model: ModelIdentity, id?: string): unknown {
  if (format === 'oip') {
    return {
      model_name: model.name,
      model_version: model.version,
      ...(id !== undefined ? { id } : {}),
      outputs: Object.entries(outputs).map(([name, t]) => ({
        name, shape: t.dims, datatype: oipDatatype(t.type), data: plainValues(t),
      })),
    };
  }
  const body: Record<string, Json> = {};
  for (const [name, t] of Object.entries(outputs)) body[name] = nest(plainValues(t), t.dims);
  return body;
}
