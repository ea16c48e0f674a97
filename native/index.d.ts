// Declarations of every export of the quiver_native addon (built from native/src by binding.gyp,
// or by cmake-js with CUDA). Arguments are validated by src/preprocess/native.ts before they cross.

export type CpuKernels = 'avx512vbmi' | 'avx2' | 'baseline';

export interface NativeCapabilities {
  /** Built with libjpeg-turbo (decodeJpeg is there). */
  jpeg: boolean;
  /** kernels: the best vector path of the CPU kernel on this CPU. */
  cpu: { avx2: boolean; kernels: CpuKernels };
  cuda: { compiled: boolean; deviceCount: number; error?: string };
}

/**
 * geometry (Int32Array, 15): width, height, channels, cropX, cropY, cropWidth, cropHeight,
 *   tensorWidth, tensorHeight, contentWidth, contentHeight, padLeft, padTop, bgr (0/1),
 *   cpuKernels (the best CPU path the job may take: 0 baseline, 1 avx2, 2 avx512vbmi).
 * affine (Float32Array, 9): a[3], b[3], pad[3]; output = pixel * a[c] + b[c], padding = pad[c].
 * out: Float32Array (float32) or Uint16Array (float16 bits); offset: first element written.
 */
export type PreprocessArgs = [src: Uint8Array, geometry: Int32Array, affine: Float32Array, out: Float32Array | Uint16Array, offset: number];

export interface NativeCudaStream {
  preprocess(...args: PreprocessArgs): Promise<void>;
  destroy(): void;
  /** Frees the stream's device and pinned buffers; they grow again on the next job. */
  trim(): void;
  /** Kernel time on resident device buffers against a device-to-device copy of the same bytes (bench/gpu.sh). */
  benchmark(...args: [...PreprocessArgs, iterations: number]): { kernelMs: number; copyMs: number; bytesMoved: number };
  readonly deviceBytes: number;
  readonly pinnedBytes: number;
}

export interface NativeBinding {
  capabilities(): NativeCapabilities;
  /** glibc: trims this thread's arena top, then malloc_trim(0) returns freed pages of every arena. */
  releaseFreeMemory(): boolean;
  preprocessSync(...args: PreprocessArgs): void;
  preprocess(...args: PreprocessArgs): Promise<void>;
  /**
   * The JSON array of numbers whose '[' is at `at`, as src/oip/json-numbers.ts scans one: null when it is
   * not a rectangular array of numbers at most maxRank deep; no values when one number was off the fast path.
   */
  scanNumberArray(src: Uint8Array, at: number, float32: boolean, maxRank: number): { values?: Float64Array; dims: number[]; end: number } | null;
  /** Only where libjpeg's headers were found at build time. scaleDenom: 1, 2, 4 or 8. */
  decodeJpeg?(src: Uint8Array, scaleDenom: number, maxPixels: number): { data: Uint8Array; width: number; height: number; channels: number };
  /** Only in the CUDA build. */
  CudaStream?: new (device?: number) => NativeCudaStream;
  cudaMemoryInfo?(device?: number): { free: number; total: number };
}
