// The cmake-js build (npm run build:cuda) compiles and links here, with the CUDA kernels when nvcc is
// on the machine, and the addon it makes loads without a GPU and says so.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeBinding } from '../../native/index';
import { tempDir } from '../fixtures/server';

const ROOT = path.join(__dirname, '..', '..', '..');

function nvccAvailable(): boolean {
  return spawnSync('nvcc', ['--version']).status === 0;
}

test('cmake-js builds the addon, with CUDA when nvcc is present, and it loads without a GPU', () => {
  const out = tempDir('cuda-build');
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'cmake-js'), ['compile', '-d', 'native', '-O', out], { cwd: ROOT, stdio: 'pipe', timeout: 300_000 });
  const file = path.join(out, 'Release', 'quiver_native.node');
  expect(fs.existsSync(file)).toBe(true);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const binding = require(file) as NativeBinding;
  const caps = binding.capabilities();
  expect(caps.cuda.compiled).toBe(nvccAvailable());
  if (!caps.cuda.compiled) return;
  expect(typeof binding.CudaStream).toBe('function');
  if (caps.cuda.deviceCount === 0) {
    // No GPU (or no driver): the runtime's own reason is reported, and asking for a stream is a coded error.
    expect(caps.cuda.error).toEqual(expect.any(String));
    expect(() => new binding.CudaStream!(0)).toThrow(expect.objectContaining({ code: 'ERR_QUIVER_CUDA' }));
  } else {
    const stream = new binding.CudaStream!(0);
    expect(binding.cudaMemoryInfo!(0).total).toBeGreaterThan(0);
    stream.destroy();
  }
}, 300_000);
