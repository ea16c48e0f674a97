// Chooses, once per worker thread, where image tensors are made: the native CPU kernels, or (without
// the addon) sharp's resize and the TypeScript loop; and, for sessions on the worker's GPU, a CUDA
// stream of its own there. A CPU session never gets the stream: its image would go to the device and back.
import { InvalidConfigError } from '../errors';
import type { PreprocessBackend } from '../config/schema';
import type { ImageKernels } from './image';
import type { NativeCudaStream } from '../../native/index';
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

/** A stream idle this long frees its device and pinned buffers (they grow again on the next job). */
export const STREAM_IDLE_TRIM_MS = 30_000;

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
      return { ...cpu, ...onStream(new binding.CudaStream(gpu), gpu, cpu) };
    } catch {
      // A GPU that cannot give a stream leaves the CPU kernels, which always work.
    }
  }
  return cpu;
}

/** A session's image path: its worker's GPU stream for a CUDA session, the CPU kernels for any other. */
export function kernelsForSession(choice: KernelChoice, device: 'cpu' | 'cuda'): { kernels?: ImageKernels; description: string } {
  return device === 'cuda' && choice.gpu ? choice.gpu : { kernels: choice.kernels, description: choice.description };
}

/**
 * The worker's stream for its GPU sessions' images. A CUDA error (a sticky one leaves the context
 * unusable) moves this worker's images to the CPU kernels for good, and the description says why: one
 * failed stream never becomes a string of 500s. Idle, the stream gives its buffers back.
 */
export function onStream(
  stream: NativeCudaStream, gpu: number, cpu: { kernels: ImageKernels; description: string }, idleTrimMs = STREAM_IDLE_TRIM_MS,
): Pick<KernelChoice, 'gpu' | 'close' | 'deviceBytes'> {
  let failed = false;
  let idle: NodeJS.Timeout | undefined;
  // A batch prepares its images side by side: the idle clock starts when the last of them is done.
  let running = 0;
  const choice = { kernels: undefined as unknown as ImageKernels, description: `native-cuda (GPU ${gpu})` };
  const fail = (err: Error) => {
    failed = true;
    choice.description = `${cpu.description}; the CUDA stream of GPU ${gpu} failed: ${err.message}`;
    try {
      stream.destroy();
    } catch {
      // Already unusable: nothing more to free.
    }
  };
  choice.kernels = {
    get backend() {
      return failed ? 'native-cpu' : 'native-cuda';
    },
    run: async (job) => {
      if (failed) return cpu.kernels.run(job);
      clearTimeout(idle);
      running++;
      try {
        await preprocessOnStream(stream, job);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_QUIVER_CUDA') throw err;
        if (!failed) fail(err as Error);
        return cpu.kernels.run(job);
      } finally {
        running--;
      }
      if (running > 0 || failed) return;
      idle = setTimeout(() => {
        if (failed || running > 0) return;
        try {
          stream.trim();
        } catch (err) {
          fail(err as Error);
        }
      }, idleTrimMs);
      idle.unref();
    },
  };
  return {
    gpu: choice,
    close: () => {
      clearTimeout(idle);
      if (!failed) stream.destroy();
    },
    deviceBytes: () => (failed ? 0 : stream.deviceBytes),
  };
}
