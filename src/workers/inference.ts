// One inference inside a worker: body → input tensors (image, JSON tensors or the model's handler),
// onnxruntime run, output tensors → the answer (tensors, top-k classes or the handler's).
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { InferenceFailedError, InvalidInputError, RequestTimeoutError, UnsupportedMediaTypeError, toWireError } from '../errors';
import { ImageKernels, ImageMeta, preprocessImage } from '../preprocess/image';
import { TensorRequestFormat, parseTensorRequest } from '../preprocess/tensor-request';
import { TensorData, TensorElementType, TensorInfo, allocateTensorArray } from '../preprocess/tensor-types';
import { classify } from '../postprocess/classify';
import { tensorResponse } from '../postprocess/tensor-response';
import { OipRequest, decodeOipBody } from '../oip/request';
import { encodeOipResponse } from '../oip/response';
import type { HandlerContext } from './handler-api';
import type { FailedResult, InferRequest, InferResult } from './messages';
import type { LoadedModel } from './session-cache';
import { inNative } from './native-gate';
import { rowGroups } from '../scheduler/batching';
import { epochMs } from './clock';

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
  /** Answer in the Open Inference Protocol, with these outputs. */
  oip?: Pick<OipRequest, 'outputs' | 'binaryOutput' | 'id'> & { batched?: boolean };
}

async function imageFeeds(model: LoadedModel, body: Uint8Array, type: string, options: InferenceOptions, reuseScratch: boolean): Promise<Prepared> {
  const imageConfig = model.spec.config.image;
  if (!imageConfig) throw new UnsupportedMediaTypeError(`model "${model.spec.name}" takes tensors, not images (${type}); send application/json`);
  const inputName = imageConfig.input ?? model.inputs[0]?.name;
  const input = model.inputs.find((i) => i.name === inputName);
  if (!input) throw new InferenceFailedError(`model config names image input "${inputName}", which the model does not have`);
  // A batch keeps every request's tensor until the run, so only a lone request reuses the buffer.
  const tensor = await preprocessImage(body, imageConfig, input, { maxPixels: options.maxImagePixels }, reuseScratch ? model.scratch : undefined, options.kernels);
  if (reuseScratch) model.scratch = tensor.data;
  const path = options.kernels ? (`image:${options.kernels.backend}` as const) : 'image:typescript';
  return { feeds: { [input.name]: { type: 'float32', dims: tensor.dims, data: tensor.data } }, format: 'simple', image: tensor.meta, path };
}

/** OIP: an image body or a BYTES input holding one goes through the image preprocessing; tensors are decoded. */
async function prepareOip(model: LoadedModel, request: InferRequest, options: InferenceOptions, reuseScratch: boolean): Promise<Prepared> {
  const type = mediaType(request.contentType);
  if (IMAGE_TYPES.test(type)) {
    return { ...(await imageFeeds(model, request.body, type, options, reuseScratch)), oip: { binaryOutput: false, batched: request.oip!.batched } };
  }
  const decoded = decodeOipBody(request.body, request.oip!, {
    name: model.spec.name, inputs: model.inputs, outputs: model.outputs, takesImages: model.spec.config.image !== undefined,
  }, { allowNonFinite: model.spec.config.allowNonFinite });
  // Triton's timeout is the wait before the run: past it the request is dropped, not run late.
  const waitedMs = Math.round(epochMs() - request.enqueuedAt);
  if (decoded.timeoutUs !== undefined && waitedMs > decoded.timeoutUs / 1000) {
    throw new RequestTimeoutError(`Request timeout expired: the request waited ${waitedMs} ms before its run, past its timeout of ${decoded.timeoutUs / 1000} ms; it was not run`);
  }
  const oip = { outputs: decoded.outputs, binaryOutput: decoded.binaryOutput, id: decoded.id, batched: request.oip!.batched };
  if (decoded.image) return { ...(await imageFeeds(model, decoded.image, 'image', options, reuseScratch)), oip };
  return { feeds: decoded.feeds, format: 'oip', path: 'tensor-oip', oip };
}

async function prepareInputs(model: LoadedModel, request: InferRequest, ctx: HandlerContext, options: InferenceOptions, reuseScratch: boolean): Promise<Prepared> {
  // OIP speaks tensors both ways: a handler's own request and answer forms do not apply.
  if (request.oip) return prepareOip(model, request, options, reuseScratch);
  if (model.handler?.preprocess) {
    let feeds: Record<string, TensorData>;
    try {
      feeds = await model.handler.preprocess(request.body, ctx);
    } catch (err) {
      if (isInputRejection(err)) throw new InvalidInputError(`the handler of model "${model.spec.name}" rejected the request: ${(err as Error).message}`);
      throw new InferenceFailedError(`the handler of model "${model.spec.name}" failed in preprocess: ${(err as Error)?.message ?? String(err)}`);
    }
    return { feeds, format: 'simple', path: 'handler' };
  }
  const type = mediaType(request.contentType);
  const imageConfig = model.spec.config.image;
  if (IMAGE_TYPES.test(type) || (type === 'application/octet-stream' && imageConfig)) {
    return imageFeeds(model, request.body, type, options, reuseScratch);
  }
  if (type === 'application/json' || type.endsWith('+json') || type === '') {
    const parsed = parseTensorRequest(request.body, model.inputs, model.spec.name, { allowNonFinite: model.spec.config.allowNonFinite });
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
    return classify(output, post.k, post.softmax, model.spec.labels, post.format);
  }
  return tensorResponse(outputs, prepared.format, model.spec, prepared.id);
}

interface PreparedRequest {
  ctx: HandlerContext;
  prepared: Prepared;
  started: number;
  preprocessMs: number;
}

async function prepare(model: LoadedModel, request: InferRequest, options: InferenceOptions, reuseScratch: boolean): Promise<PreparedRequest> {
  const started = epochMs();
  const t0 = performance.now();
  const ctx: HandlerContext = {
    model: { name: model.spec.name, version: model.spec.version, dir: path.dirname(model.spec.modelPath) },
    config: model.spec.config,
    labels: model.spec.labels,
    inputs: model.inputs,
    outputs: model.outputs,
    contentType: request.contentType,
    customAttributes: request.customAttributes,
    rejectInput: (message: string): never => {
      throw new InvalidInputError(message);
    },
  };
  const prepared = await prepareInputs(model, request, ctx, options, reuseScratch);
  ctx.image = prepared.image;
  return { ctx, prepared, started, preprocessMs: performance.now() - t0 };
}

/**
 * A handler says a request is the client's mistake (400) with ctx.rejectInput, or by throwing an error
 * with a 4xx `status`/`statusCode` (http-errors' convention); anything else it throws is its own failure.
 */
function isInputRejection(err: unknown): boolean {
  if (err instanceof InvalidInputError) return true;
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

// onnxruntime's words for inputs that do not fit the model (symbolic dimensions it checks itself);
// everything else it reports (out of memory, a failing kernel) is the server's failure.
const ORT_INPUT_COMPLAINT = /invalid dimensions|invalid rank|unexpected input data type|cannot be reshaped|not broadcastable|invalid input shape/i;

async function run(model: LoadedModel, feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
  const ortFeeds = toOrtFeeds(feeds, model.inputs);
  try {
    return fromOrt(await inNative(() => model.session.run(ortFeeds)));
  } catch (err) {
    const message = (err as Error).message;
    if (ORT_INPUT_COMPLAINT.test(message)) throw new InvalidInputError(`model "${model.spec.name}" rejected the input: ${message}`);
    throw new InferenceFailedError(`model "${model.spec.name}" failed to run: ${message}`);
  }
}

function rowCounts(rows: number | undefined, runRows: number | undefined): { rows?: number; runRows?: number } {
  return rows === undefined ? {} : { rows, runRows: runRows ?? rows };
}

/** A request's rows along dimension 0 of its first input, by name (the dimension stackFeeds batches along). */
function rowsOf(feeds: Record<string, TensorData>): number | undefined {
  const first = Object.keys(feeds).sort()[0];
  return first === undefined ? undefined : feeds[first].dims[0];
}

async function finish(
  model: LoadedModel, request: InferRequest, p: PreparedRequest, outputs: Record<string, TensorData>, inferenceMs: number, batchSize: number, runRows?: number,
): Promise<InferResult> {
  const t0 = performance.now();
  const oip = p.prepared.oip;
  const encoded = oip ? encodeOipResponse(outputs, model.spec, oip) : { header: JSON.stringify(await answer(model, outputs, p.prepared, p.ctx)), binary: undefined };
  return {
    ok: true,
    kind: 'infer',
    contentType: encoded.binary ? 'application/octet-stream' : 'application/json',
    body: encoded.header,
    ...(encoded.binary ? { binary: encoded.binary } : {}),
    preprocessPath: p.prepared.path,
    batchSize,
    ...rowCounts(rowsOf(p.prepared.feeds), runRows),
    timings: { queueMs: Math.max(0, p.started - request.enqueuedAt), preprocessMs: p.preprocessMs, inferenceMs, postprocessMs: performance.now() - t0 },
  };
}

export async function runInference(model: LoadedModel, request: InferRequest, options: InferenceOptions): Promise<InferResult> {
  const p = await prepare(model, request, options, true);
  const t = performance.now();
  const outputs = await run(model, p.prepared.feeds);
  return finish(model, request, p, outputs, performance.now() - t, 1);
}

/** Stacks the requests' inputs along dimension 0 when every input agrees in type and other dimensions. */
export function stackFeeds(all: Record<string, TensorData>[]): { feeds: Record<string, TensorData>; rows: number[] } | undefined {
  const names = Object.keys(all[0]).sort();
  const rows = all.map((f) => f[names[0]]?.dims[0] ?? 0);
  const feeds: Record<string, TensorData> = {};
  for (const name of names) {
    const first = all[0][name];
    if (first.dims.length === 0) return undefined;
    const rowShape = first.dims.slice(1);
    for (const [i, f] of all.entries()) {
      const t = f[name];
      if (!t || t.type !== first.type || t.dims.length !== first.dims.length || t.dims[0] !== rows[i]) return undefined;
      if (t.dims.slice(1).some((d, k) => d !== rowShape[k])) return undefined;
      if (Object.keys(f).length !== names.length) return undefined;
    }
    const total = rows.reduce((a, b) => a + b, 0);
    const data = allocateTensorArray(first.type, all.reduce((n, f) => n + f[name].data.length, 0));
    let offset = 0;
    for (const f of all) {
      const part = f[name].data;
      if (Array.isArray(data)) for (let i = 0; i < part.length; i++) data[offset + i] = (part as string[])[i];
      else (data as Float32Array).set(part as Float32Array, offset);
      offset += part.length;
    }
    feeds[name] = { type: first.type, dims: [total, ...rowShape], data };
  }
  return { feeds, rows };
}

/** Each request's rows of the batch's outputs; undefined when an output is not batched along dimension 0. */
export function splitOutputs(outputs: Record<string, TensorData>, rows: number[]): Record<string, TensorData>[] | undefined {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts: Record<string, TensorData>[] = rows.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== total) return undefined;
    const rowSize = total > 0 ? t.data.length / total : 0;
    let row = 0;
    rows.forEach((n, i) => {
      const data = Array.isArray(t.data) ? t.data.slice(row * rowSize, (row + n) * rowSize) : t.data.subarray(row * rowSize, (row + n) * rowSize);
      parts[i][name] = { type: t.type, dims: [n, ...t.dims.slice(1)], data: data as TensorData['data'] };
      row += n;
    });
  }
  return parts;
}

/**
 * A batch of requests for one model: each is prepared on its own (a bad one fails alone), the rest run
 * in runs of up to `maxRows` rows when their inputs stack, and each caller gets its own rows of the outputs.
 */
export async function runBatch(
  model: LoadedModel, requests: InferRequest[], options: InferenceOptions, maxRows = Infinity,
): Promise<{ results: (InferResult | FailedResult)[]; runs: number[] }> {
  const results: (InferResult | FailedResult)[] = new Array(requests.length);
  const ready: { index: number; p: PreparedRequest }[] = [];
  // Prepared side by side: image decoding runs on libuv's threads while this thread does the rest.
  const prepared = await Promise.allSettled(requests.map((request) => prepare(model, request, options, false)));
  prepared.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') ready.push({ index, p: outcome.value });
    else results[index] = { ok: false, error: toWireError(outcome.reason, 'InferenceFailed') };
  });
  const runs: number[] = [];
  for (const group of rowGroups(ready.map((r) => rowsOf(r.p.prepared.feeds) ?? 1), maxRows)) {
    runs.push(...await runStacked(model, requests, group.map((k) => ready[k]), results));
  }
  return { results, runs };
}

/**
 * Requests run as one onnxruntime run when their inputs stack, else one by one (so one bad input fails
 * alone); says how many requests each run held.
 */
async function runStacked(model: LoadedModel, requests: InferRequest[], ready: { index: number; p: PreparedRequest }[], results: (InferResult | FailedResult)[]): Promise<number[]> {
  const stacked = ready.length > 1 ? stackFeeds(ready.map((r) => r.p.prepared.feeds)) : undefined;
  if (stacked) {
    const t = performance.now();
    try {
      const parts = splitOutputs(await run(model, stacked.feeds), stacked.rows);
      const inferenceMs = performance.now() - t;
      if (parts) {
        for (const [k, { index, p }] of ready.entries()) {
          results[index] = await finish(model, requests[index], p, parts[k], inferenceMs, ready.length, stacked.rows.reduce((a, b) => a + b, 0)).catch((err) => ({ ok: false as const, error: toWireError(err, 'InferenceFailed') }));
        }
        return [ready.length];
      }
    } catch {
      // Run them one by one below, so that one bad input fails alone.
    }
  }
  for (const { index, p } of ready) {
    try {
      const t = performance.now();
      const outputs = await run(model, p.prepared.feeds);
      results[index] = await finish(model, requests[index], p, outputs, performance.now() - t, 1);
    } catch (err) {
      results[index] = { ok: false, error: toWireError(err, 'InferenceFailed') };
    }
  }
  return ready.map(() => 1);
}
