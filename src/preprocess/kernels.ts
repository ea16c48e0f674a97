// Chooses, once per worker thread, where image tensors are made: the native CPU kernels, or (without
// the addon) sharp's resize and the TypeScript loop; and, for sessions on the worker's GPU, a CUDA
// stream of its own there. A CPU session never gets the stream: its image would go to the device and back.
import { InvalidConfigError } from '../errors';
import type { PreprocessBackend } from '../config/schema';
import type { ImageKernels } from './image';
import { loadNative, preprocessNativeSync, preprocessOnStream } from './native';

export interface KernelChoice {
  /** For CPU sessions; absent: sharp and the TypeScript loop. */
  kernels?: ImageKernels;
  /** What a user sees in GET /models/{name}: which path image requests take, and why. */
  description: string;
  /** For sessions on this worker's GPU: its CUDA stream (absent without the CUDA build or a GPU). */
  gpu?: { kernels: ImageKernels; description: string };
  /** Frees what the choice holds (the CUDA stream and its device memory). */
  close(): void;
  deviceBytes(): number;
}

const none = { close: () => undefined, deviceBytes: () => 0 };

export function selectImageKernels(preference: PreprocessBackend, gpu?: number): KernelChoice {
  if (preference === 'typescript') return { ...none, description: 'sharp+typescript' };
  const { binding, error } = loadNative();
  if (!binding) {
    if (preference === 'native') throw new InvalidConfigError(`preprocess_backend is "native" but the addon did not load: ${error}`);
    return { ...none, description: `sharp+typescript (native addon not loaded: ${error})` };
  }
  const caps = binding.capabilities();
  const cpu = { ...none, kernels: { backend: 'native-cpu' as const, run: preprocessNativeSync }, description: `native-cpu (${caps.cpu.kernels})` };
  if (binding.CudaStream && gpu !== undefined && gpu < caps.cuda.deviceCount) {
    try {
      const stream = new binding.CudaStream(gpu);
      return {
        ...cpu,
        gpu: { kernels: { backend: 'native-cuda', run: (job) => preprocessOnStream(stream, job) }, description: `native-cuda (GPU ${gpu})` },
        close: () => stream.destroy(),
        deviceBytes: () => stream.deviceBytes,
      };
    } catch {
      // A GPU that cannot give a stream leaves the CPU kernels, which always work.
    }
  }
  return cpu;
}
