// The contract of a custom handler module (a .js file inside a model package), the way MMS handler
// services work: optional preprocess (body → input tensors) and postprocess (output tensors → answer).
import type { ModelConfig } from '../models/model-config';
import type { ImageMeta } from '../preprocess/image';
import type { TensorData, TensorInfo } from '../preprocess/tensor-types';

export interface HandlerContext {
  model: { name: string; version: string; dir: string };
  config: ModelConfig;
  labels?: string[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  contentType: string;
  customAttributes?: string;
  /** Set when the built-in image preprocessing produced the inputs. */
  image?: ImageMeta;
  /** Throws: the request is the client's mistake (400 with this message), not the handler's failure (500). */
  rejectInput(message: string): never;
}

export interface ModelHandler {
  preprocess?(body: Uint8Array, ctx: HandlerContext): Promise<Record<string, TensorData>> | Record<string, TensorData>;
  postprocess?(outputs: Record<string, TensorData>, ctx: HandlerContext): unknown;
}

export function asModelHandler(mod: unknown, file: string): ModelHandler {
  const candidate = (mod as { default?: unknown })?.default ?? mod;
  if (typeof candidate !== 'object' || candidate === null) throw new Error(`handler ${file} exports nothing`);
  const { preprocess, postprocess } = candidate as Record<string, unknown>;
  if (preprocess !== undefined && typeof preprocess !== 'function') throw new Error(`handler ${file}: preprocess is not a function`);
  if (postprocess !== undefined && typeof postprocess !== 'function') throw new Error(`handler ${file}: postprocess is not a function`);
  if (!preprocess && !postprocess) throw new Error(`handler ${file} exports neither preprocess nor postprocess`);
  return candidate as ModelHandler;
}
