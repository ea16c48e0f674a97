// Scores → the k most likely classes with their labels: the answer of a classifier.
import { InferenceFailedError } from '../errors';
import type { TensorData } from '../preprocess/tensor-types';

export interface ClassScore {
  index: number;
  label: string;
  probability: number;
}

export function softmax(scores: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  const out = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    out[i] = Math.exp(scores[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

export function topK(probabilities: ArrayLike<number>, k: number, labels?: readonly string[]): ClassScore[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i).sort((a, b) => probabilities[b] - probabilities[a]);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({
    index,
    label: labels?.[index] ?? String(index),
    probability: probabilities[index],
  }));
}

/**
 * How a row's classes are written: Quiver's own (index, label, probability), MMS's image classifiers'
 * ([{"probability","class"}]) or TorchServe's ({"<label>": probability}, most likely first).
 */
export type ClassifierFormat = 'quiver' | 'mms' | 'torchserve';

export type ClassAnswer = ClassScore[] | { probability: number; class: string }[] | Record<string, number>;

export function formatClasses(scores: readonly ClassScore[], format: ClassifierFormat): ClassAnswer {
  switch (format) {
    case 'quiver':
      return [...scores];
    case 'mms':
      return scores.map((s) => ({ probability: s.probability, class: s.label }));
    case 'torchserve':
      // JSON keeps insertion order for non-numeric keys only; labels that are numbers sort numerically.
      return Object.fromEntries(scores.map((s) => [s.label, s.probability]));
  }
}

/** One answer per batch row; a batch of one answers with its row's answer alone. */
export function classify(
  output: TensorData, k: number, applySoftmax: boolean, labels?: readonly string[], format: ClassifierFormat = 'quiver',
): ClassAnswer | ClassAnswer[] {
  if (output.type !== 'float32' && output.type !== 'float64') {
    throw new InferenceFailedError(`classifier output has type ${output.type}; expected float scores`);
  }
  const classes = output.dims[output.dims.length - 1] ?? output.data.length;
  const rows = classes > 0 ? output.data.length / classes : 0;
  const data = output.data as Float32Array;
  const result: ClassAnswer[] = [];
  for (let r = 0; r < rows; r++) {
    const scores = data.subarray(r * classes, (r + 1) * classes);
    result.push(formatClasses(topK(applySoftmax ? softmax(scores) : scores, k, labels), format));
  }
  return rows === 1 ? result[0] : result;
}
