// Decodes JSON tensor bodies — the Open Inference Protocol v2 form {"inputs":[{name,shape,datatype,data}]}
// and the simple {"<input name>": nested array} form — straight into typed arrays, checked against the
// model's inputs so that a wrong name, shape or type is a 400 that says which.
import { InvalidInputError } from '../errors';
import { LiftedJson, liftNumberArrays, liftedArray } from '../oip/json-numbers';
import { decodeOipHeader } from '../oip/request';
import { BuildContext, TensorParseOptions, buildTensor, checkShape, modelInput, nestedShape, tensorFromNumbers } from './tensor-json';
import { takesOnlyFloat32 } from './tensor-types';
import type { TensorData, TensorElementType, TensorInfo } from './tensor-types';

export type { TensorParseOptions } from './tensor-json';

export type TensorRequestFormat = 'oip' | 'simple';

export interface TensorRequest {
  format: TensorRequestFormat;
  feeds: Record<string, TensorData>;
  id?: string;
}

function parseSimple(body: Record<string, unknown>, inputs: TensorInfo[], modelName: string, ctx: BuildContext, lifted: LiftedJson): TensorRequest {
  const feeds: Record<string, TensorData> = {};
  for (const [name, value] of Object.entries(body)) {
    const info = modelInput(inputs, name, modelName);
    const numbers = liftedArray(value, lifted);
    if (numbers) {
      checkShape(numbers.dims, info, name);
      feeds[name] = tensorFromNumbers(numbers.values, numbers.dims, info.type as TensorElementType, name, ctx.options);
      continue;
    }
    const dims = nestedShape(value, name);
    checkShape(dims, info, name);
    feeds[name] = buildTensor(value, dims, info.type as TensorElementType, name, false, ctx);
  }
  return { format: 'simple', feeds };
}

export function parseTensorRequest(json: Uint8Array | string, inputs: TensorInfo[], modelName: string, options: TensorParseOptions = {}): TensorRequest {
  const bytes = typeof json === 'string' ? Buffer.from(json, 'utf8') : json;
  const ctx: BuildContext = { options, maxElements: Math.ceil(bytes.byteLength / 2) };
  // Number arrays are read straight into doubles; JSON.parse reads the rest.
  const lifted = liftNumberArrays(bytes, { topLevelValues: true, float32: takesOnlyFloat32(inputs) });
  const text = lifted.text;
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
  if ('inputs' in body && !inputs.some((i) => i.name === 'inputs')) {
    // The MMS route answers every output as JSON: requested outputs are an OIP route's business.
    const oip = decodeOipHeader({ ...body, outputs: undefined }, undefined, { name: modelName, inputs, outputs: [], takesImages: false }, options, bytes.byteLength, lifted);
    return { format: 'oip', feeds: oip.feeds, id: oip.id };
  }
  const request = parseSimple(body as Record<string, unknown>, inputs, modelName, ctx, lifted);
  const missing = inputs.filter((i) => !request.feeds[i.name]).map((i) => i.name);
  if (missing.length > 0) throw new InvalidInputError(`model "${modelName}" needs input(s) ${missing.join(', ')}`);
  return request;
}
