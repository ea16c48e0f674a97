// Models generated for benchmarks: a multilayer perceptron whose cost is matrix products, where
// batching turns matrix-vector work into matrix-matrix work.
import { onnx } from 'onnx-proto';

/** A seeded xorshift generator in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** x [N, width] → `layers` × (MatMul, Add, Relu) → y [N, width]; the bias of the last layer names the model. */
export function mlpModel(width: number, layers: number, seed = 1, outputOffset = 0): Uint8Array {
  const uniform = rng(seed);
  const next = () => (uniform() - 0.5) * 0.1;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let input = 'x';
  for (let l = 0; l < layers; l++) {
    const last = l === layers - 1;
    initializers.push({ name: `W${l}`, dims: [width, width], dataType: FLOAT, floatData: Array.from({ length: width * width }, next) });
    initializers.push({ name: `b${l}`, dims: [width], dataType: FLOAT, floatData: Array.from({ length: width }, () => (last ? outputOffset : 0)) });
    nodes.push({ opType: 'MatMul', input: [input, `W${l}`], output: [`m${l}`] });
    nodes.push({ opType: 'Add', input: [`m${l}`, `b${l}`], output: [last ? 'y' : `a${l}`] });
    if (!last) nodes.push({ opType: 'Relu', input: [`a${l}`], output: [`r${l}`] });
    input = `r${l}`;
  }
  const info = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: width }] } } } });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'quiver-bench',
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'mlp', node: nodes, initializer: initializers, input: [info('x')], output: [info('y')] },
    }),
  ).finish();
}

/** y = x + 1, x [N, 1]: a model whose handler can inject faults. */
export function addOneModel(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }] } } } });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'add-one',
        node: [{ opType: 'Add', input: ['x', 'one'], output: ['y'] }],
        initializer: [{ name: 'one', dims: [1], dataType: FLOAT, floatData: [1] }],
        input: [info('x')],
        output: [info('y')],
      },
    }),
  ).finish();
}
