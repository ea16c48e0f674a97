// The worker's CUDA stream as the JavaScript side uses it, with a stand-in stream (there is no GPU here):
// a CUDA error moves the worker's images to the CPU kernels for good and says why; an idle stream trims.
import type { NativeCudaStream } from '../../native/index';
import { kernelsForSession, onStream } from '../../src/preprocess/kernels';
import type { ImageKernels } from '../../src/preprocess/image';
import type { NativeJob } from '../../src/preprocess/native';

function standIn(fail: Error | undefined) {
  const calls = { preprocess: 0, trim: 0, destroy: 0 };
  const stream: NativeCudaStream = {
    preprocess: async () => {
      calls.preprocess++;
      if (fail) throw fail;
    },
    trim: () => void calls.trim++,
    destroy: () => void calls.destroy++,
    benchmark: () => ({ kernelMs: 0, copyMs: 0, bytesMoved: 0 }),
    deviceBytes: 1024,
    pinnedBytes: 0,
  };
  return { stream, calls };
}

const job: NativeJob = {
  src: new Uint8Array(12), width: 2, height: 2, channels: 3, out: new Float32Array(12),
  plan: { contentWidth: 2, contentHeight: 2, tensorWidth: 2, tensorHeight: 2, padLeft: 0, padTop: 0, scaleX: 1, scaleY: 1 },
  params: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], bgr: false, padValue: 0 },
};

function cpuKernels() {
  const jobs: NativeJob[] = [];
  const kernels: ImageKernels = { backend: 'native-cpu', run: (j) => void jobs.push(j) };
  return { jobs, cpu: { kernels, description: 'native-cpu (avx2)' } };
}

describe('which kernels a session gets', () => {
  test('a CPU session gets the CPU kernels even on a worker with a stream; a CUDA session gets the stream', () => {
    const { stream } = standIn(undefined);
    const { cpu } = cpuKernels();
    const choice = { ...cpu, ...onStream(stream, 0, cpu, 50) };
    expect(kernelsForSession(choice, 'cpu').kernels).toBe(cpu.kernels);
    expect(kernelsForSession(choice, 'cuda').kernels!.backend).toBe('native-cuda');
    expect(kernelsForSession(choice, 'cuda').description).toBe('native-cuda (GPU 0)');
    // A worker without a stream (no CUDA build, a fake GPU): a CUDA session's images go the CPU way.
    expect(kernelsForSession({ ...cpu, close: () => undefined, deviceBytes: () => 0 }, 'cuda').kernels).toBe(cpu.kernels);
    choice.close();
  });
});

describe('the worker CUDA stream', () => {
  test('a CUDA error: that job and every later one run on the CPU kernels, and the description says why', async () => {
    const { stream, calls } = standIn(Object.assign(new Error('upload: an illegal memory access was encountered'), { code: 'ERR_QUIVER_CUDA' }));
    const { jobs, cpu } = cpuKernels();
    const choice = onStream(stream, 1, cpu, 50);
    expect(choice.gpu!.kernels.backend).toBe('native-cuda');
    await choice.gpu!.kernels.run(job);
    await choice.gpu!.kernels.run(job);
    expect(jobs).toHaveLength(2);
    expect(calls.preprocess).toBe(1);
    expect(calls.destroy).toBe(1);
    expect(choice.gpu!.kernels.backend).toBe('native-cpu');
    expect(choice.gpu!.description).toMatch(/^native-cpu \(avx2\); the CUDA stream of GPU 1 failed: upload: an illegal memory access/);
    expect(choice.deviceBytes()).toBe(0);
    choice.close();
    expect(calls.destroy).toBe(1);
  });

  test('an error that is not CUDA\'s (a bad job) fails that job alone and keeps the stream', async () => {
    const { stream, calls } = standIn(Object.assign(new Error('bad geometry'), { code: 'ERR_QUIVER_ARGUMENT' }));
    const { jobs, cpu } = cpuKernels();
    const choice = onStream(stream, 0, cpu, 50);
    await expect(choice.gpu!.kernels.run(job)).rejects.toThrow('bad geometry');
    expect(jobs).toHaveLength(0);
    expect(choice.gpu!.kernels.backend).toBe('native-cuda');
    expect(calls.destroy).toBe(0);
  });

  test('a stream idle past its delay frees its buffers; a job meanwhile puts the trim off', async () => {
    const { stream, calls } = standIn(undefined);
    const { cpu } = cpuKernels();
    const choice = onStream(stream, 0, cpu, 80);
    await choice.gpu!.kernels.run(job);
    await new Promise((r) => setTimeout(r, 40));
    await choice.gpu!.kernels.run(job);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.trim).toBe(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(calls.trim).toBe(1);
    expect(calls.preprocess).toBe(2);
    choice.close();
    expect(calls.destroy).toBe(1);
  });
});
