// One inference inside a worker: body → input tensors (image, JSON tensors or the model's handler),
// onnxruntime run, output tensors → the answer (tensors, top-k classes or the handler's).
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { InferenceFailedError, InvalidInputError, UnsupportedMediaTypeError } from '../errors';
import { ImageKernels, ImageMeta, preprocessImage } from '../preprocess/image';
import { TensorRequestFormat, parseTensorRequest } from '../preprocess/tensor-request';
import { TensorData, TensorElementType, TensorInfo } from '../preprocess/tensor-types';
import { classify } from '../postprocess/classify';
import { tensorResponse } from '../postprocess/tensor-response';
import type { HandlerContext } from './handler-api';
import type { InferRequest, InferResult } from './messages';
import type { LoadedModel } from './session-cache';

export interface InferenceOptions {
  maxImagePixels: number;
  kernels?: ImageKernels;
}

const IMAGE_TYPES = /^image\/(jpeg|jpg|png|webp|gif|tiff)$/;

function mediaType(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

interface Prepared {
  feeds: Record<string, TensorData>;
  format: TensorRequestFormat;
  image?: ImageMeta;
  id?: string;
  path: InferResult['preprocessPath'];
}

async function prepareInputs(model: LoadedModel, request: InferRequest, ctx: HandlerContext, options: InferenceOptions): Promise<Prepared> {
  if (model.handler?.preprocess) {
    let feeds: Record<string, TensorData>;
    try {
      feeds = await model.handler.preprocess(request.body, ctx);
    } catch (err) {
      throw new InvalidInputError(`the handler of model "${model.spec.name}" rejected the request: ${(err as Error).message}`);
    }
    return { feeds, format: 'simple', path: 'handler' };
  }
  const type = mediaType(request.contentType);
  const imageConfig = model.spec.config.image;
  if (IMAGE_TYPES.test(type) || (type === 'application/octet-stream' && imageConfig)) {
    if (!imageConfig) throw new UnsupportedMediaTypeError(`model "${model.spec.name}" takes tensors, not images (${type}); send application/json`);
    const inputName = imageConfig.input ?? model.inputs[0]?.name;
    const input = model.inputs.find((i) => i.name === inputName);
    if (!input) throw new InferenceFailedError(`model config names image input "${inputName}", which the model does not have`);
    const tensor = await preprocessImage(request.body, imageConfig, input, { maxPixels: options.maxImagePixels }, model.scratch, options.kernels);
    model.scratch = tensor.data;
    const path = options.kernels ? (`image:${options.kernels.backend}` as const) : 'image:typescript';
    return { feeds: { [input.name]: { type: 'float32', dims: tensor.dims, data: tensor.data } }, format: 'simple', image: tensor.meta, path };
  }
  if (type === 'application/json' || type.endsWith('+json') || type === '') {
    const text = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString('utf8');
    const parsed = parseTensorRequest(text, model.inputs, model.spec.name);
    return { feeds: parsed.feeds, format: parsed.format, id: parsed.id, path: 'tensor-json' };
  }
  throw new UnsupportedMediaTypeError(`content type ${JSON.stringify(type)} is not supported: send an image (image/jpeg, image/png) or application/json tensors`);
}

function toOrtFeeds(feeds: Record<string, TensorData>, inputs: TensorInfo[]): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    if (!inputs.some((i) => i.name === name)) throw new InvalidInputError(`the model has no input named "${name}"`);
    out[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  return out;
}

function fromOrt(outputs: ort.InferenceSession.ReturnType): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(outputs)) {
    out[name] = { type: t.type as TensorElementType, dims: [...t.dims], data: t.data as TensorData['data'] };
  }
  return out;
}

function answer(model: LoadedModel, outputs: Record<string, TensorData>, prepared: Prepared, ctx: HandlerContext): unknown {
  if (model.handler?.postprocess) return model.handler.postprocess(outputs, ctx);
  const post = model.spec.config.postprocess;
  if (post.type === 'topk') {
    const name = post.output ?? model.outputs[0]?.name;
    const output = outputs[name];
    if (!output) throw new InferenceFailedError(`model config names output "${name}", which the model did not produce`);
    return classify(output, post.k, post.softmax, model.spec.labels);
  }
  return tensorResponse(outputs, prepared.format, model.spec, prepared.id);
}

export async function runInference(model: LoadedModel, request: InferRequest, options: InferenceOptions): Promise<InferResult> {
  const started = Date.now();
  const t0 = performance.now();
  const ctx: HandlerContext = {
    model: { name: model.spec.name, version: model.spec.version, dir: path.dirname(model.spec.modelPath) },
    config: model.spec.config,
    labels: model.spec.labels,
    inputs: model.inputs,
    outputs: model.outputs,
    contentType: request.contentType,
    customAttributes: request.customAttributes,
  };
  const prepared = await prepareInputs(model, request, ctx, options);
  ctx.image = prepared.image;
  const t1 = performance.now();
  let raw: ort.InferenceSession.ReturnType;
  try {
    raw = await model.session.run(toOrtFeeds(prepared.feeds, model.inputs));
  } catch (err) {
    // onnxruntime checks shapes the model declares symbolically; its complaint is about the input.
    throw new InvalidInputError(`model "${model.spec.name}" rejected the input: ${(err as Error).message}`);
  }
  const t2 = performance.now();
  const body = JSON.stringify(await answer(model, fromOrt(raw), prepared, ctx));
  const t3 = performance.now();
  return {
    ok: true,
    kind: 'infer',
    contentType: 'application/json',
    body,
    preprocessPath: prepared.path,
    timings: { queueMs: Math.max(0, started - request.enqueuedAt), preprocessMs: t1 - t0, inferenceMs: t2 - t1, postprocessMs: t3 - t2 },
  };
}
