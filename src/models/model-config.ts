// The model config (model-config.json beside model.onnx): how a request body becomes input tensors
// and how output tensors become the answer. Validated once when the model is registered.
import { z } from 'zod';
import { InvalidModelArchiveError } from '../errors';

const triple = z.tuple([z.number(), z.number(), z.number()]);
const positiveInt = z.number().int().positive();

export const imageInputSchema = z
  .object({
    /** Which model input the image feeds; defaults to the model's first input. */
    input: z.string().min(1).optional(),
    /** Target size; where absent, taken from the model's fixed input dimensions. */
    width: positiveInt.max(16384).optional(),
    height: positiveInt.max(16384).optional(),
    /**
     * stretch: to width×height. letterbox: keep aspect inside width×height, pad.
     * fit: keep aspect, longest side at most maxSide, sides rounded to `multiple` (detectors).
     * height: scale to `height`, width in proportion up to maxWidth, padded on the right to at least
     *   `width` and to a `multiple` (text recognisers).
     */
    resize: z.enum(['stretch', 'letterbox', 'fit', 'height']).default('stretch'),
    maxSide: positiveInt.max(16384).optional(),
    maxWidth: positiveInt.max(16384).optional(),
    multiple: positiveInt.max(1024).default(1),
    channelOrder: z.enum(['rgb', 'bgr']).default('rgb'),
    /** Multiplies the 0-255 pixel before mean/std. */
    scale: z.number().positive().default(1 / 255),
    /** In the model's channel order (after channelOrder is applied), as model cards give them. */
    mean: triple.default([0, 0, 0]),
    std: triple.refine((s) => s.every((v) => v > 0), 'std values must be > 0').default([1, 1, 1]),
    /** Pixel value (0-255, before normalization) used for padding. */
    padValue: z.number().min(0).max(255).default(0),
  })
  .strict();

export const postprocessSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tensors') }).strict(),
  z
    .object({
      type: z.literal('topk'),
      output: z.string().min(1).optional(),
      k: positiveInt.default(5),
      softmax: z.boolean().default(true),
      labels: z.array(z.string()).optional(),
      /** A file in the model folder with one label a line; read at registration. */
      labelsFile: z.string().min(1).optional(),
      /** The answer's shape (see classifier_format); the server's classifier_format when absent. */
      format: z.enum(['quiver', 'mms', 'torchserve']).optional(),
    })
    .strict(),
]);

export const modelConfigSchema = z
  .object({
    modelFile: z.string().min(1).default('model.onnx'),
    image: imageInputSchema.optional(),
    postprocess: postprocessSchema.default({ type: 'tensors' }),
    /** A JavaScript module in the model folder exporting preprocess and/or postprocess. */
    handler: z.string().min(1).optional(),
    batchSize: positiveInt.default(1),
    maxBatchDelayMs: z.number().int().min(0).default(100),
    /** Let NaN and ±Infinity (1e999 in JSON) into float inputs; a client's mistake (400) otherwise. */
    allowNonFinite: z.boolean().default(false),
    /** Seconds; the server's default_response_timeout when absent. */
    responseTimeoutS: positiveInt.optional(),
    /** Where its sessions run (see default_device); the server's default_device when absent. */
    device: z.enum(['auto', 'cpu', 'cuda']).optional(),
  })
  .strict();

export type ImageInputConfig = z.infer<typeof imageInputSchema>;
export type PostprocessConfig = z.infer<typeof postprocessSchema>;
export type ModelConfig = z.infer<typeof modelConfigSchema>;

export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

export function parseModelConfig(json: unknown, where: string): ModelConfig {
  const result = modelConfigSchema.safeParse(json ?? {});
  if (!result.success) throw new InvalidModelArchiveError(`${where} is not a valid model config: ${formatIssues(result.error)}`);
  return result.data;
}
