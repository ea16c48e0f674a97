// Chooses, once per worker thread, where image tensors are made: a CUDA stream of the worker's own,
// the native CPU kernels, or (without the addon) sharp's resize and the TypeScript loop.
import { InvalidConfigError } from '../errors';
import type { PreprocessBackend } from '../config/schema';
import type { ImageKernels } from './image';
import { loadNative, preprocessNativeSync, preprocessOnStream } from './native';

export interface KernelChoice {
  kernels?: ImageKernels;
  /** What a user sees in GET /models/{name}: which path image requests take, and why. */
  description: string;
  /** Frees what the choice holds (the CUDA stream and its device memory). */
  close(): void;
  deviceBytes(): number;
}

const none = { close: () => undefined, deviceBytes: () => 0 };

export function selectImageKernels(preference: PreprocessBackend): KernelChoice {
  if (preference === 'typescript') return { ...none, description: 'sharp+typescript' };
  const { binding, error } = loadNative();
  if (!binding) {
    if (preference === 'native') throw new InvalidConfigError(`preprocess_backend is "native" but the addon did not load: ${error}`);
    return { ...none, description: `sharp+typescript (native addon not loaded: ${error})` };
  }
  const caps = binding.capabilities();
  if (binding.CudaStream && caps.cuda.deviceCount > 0) {
    try {
      const stream = new binding.CudaStream(0);
      return {
        kernels: { backend: 'native-cuda', run: (job) => preprocessOnStream(stream, job) },
        description: 'native-cuda',
        close: () => stream.destroy(),
        deviceBytes: () => stream.deviceBytes,
      };
    } catch {
      // A GPU that cannot give a stream leaves the CPU kernels, which always work.
    }
  }
  return {
    ...none,
    kernels: { backend: 'native-cpu', run: preprocessNativeSync },
    description: `native-cpu (${caps.cpu.kernels})`,
  };
}
