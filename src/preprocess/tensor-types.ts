// Element types as onnxruntime names them, as the Open Inference Protocol names them, and their arrays.

export type TensorElementType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string';

/** float16 is held as its bits (Uint16Array), as onnxruntime-node takes it; string as JS strings. */
export type TensorArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[];

/** A tensor as plain data: what crosses into onnxruntime and out to handlers. */
export interface TensorData {
  type: TensorElementType;
  dims: number[];
  data: TensorArray;
}

/** A model input or output as onnxruntime describes it; symbolic dimensions are strings. */
export interface TensorInfo {
  name: string;
  type: string;
  shape: (number | string)[];
}

const OIP_BY_TYPE: Record<TensorElementType, string> = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16',
  int32: 'INT32', uint32: 'UINT32', int64: 'INT64', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES',
};

/** Bytes per element in the binary tensor extension's little-endian layout; BYTES are length-prefixed. */
export const ELEMENT_BYTES: Record<Exclude<TensorElementType, 'string'>, number> = {
  float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1,
};

const TYPE_BY_OIP = new Map<string, TensorElementType>(
  Object.entries(OIP_BY_TYPE).map(([type, oip]) => [oip, type as TensorElementType]),
);

export function oipDatatype(type: TensorElementType): string {
  return OIP_BY_TYPE[type];
}

export function typeFromOip(datatype: string): TensorElementType | undefined {
  return TYPE_BY_OIP.get(datatype.toUpperCase());
}

export function isSupportedType(type: string): type is TensorElementType {
  return type in OIP_BY_TYPE;
}

export function allocateTensorArray(type: TensorElementType, length: number): TensorArray {
  switch (type) {
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'int8': return new Int8Array(length);
    case 'uint8': case 'bool': return new Uint8Array(length);
    case 'int16': return new Int16Array(length);
    case 'uint16': case 'float16': return new Uint16Array(length);
    case 'int32': return new Int32Array(length);
    case 'uint32': return new Uint32Array(length);
    case 'int64': return new BigInt64Array(length);
    case 'uint64': return new BigUint64Array(length);
    case 'string': return new Array<string>(length).fill('');
  }
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Every input float32: any JSON number sent to the model ends as a float32 (other datatypes are refused). */
export function takesOnlyFloat32(inputs: readonly TensorInfo[]): boolean {
  return inputs.length > 0 && inputs.every((i) => i.type === 'float32');
}
