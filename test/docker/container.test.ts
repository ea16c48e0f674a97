// No Docker engine runs here, so the image is checked statically and its entrypoint is run as the
// container would run it, with SageMaker's environment.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, tempDir } from '../fixtures/server';

const ROOT = path.join(__dirname, '..', '..', '..');
const ENTRYPOINT = path.join(ROOT, 'docker', 'entrypoint.sh');

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [keyword, ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe('Dockerfile', () => {
  const all = instructions(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const stages = all.reduce<Instruction[][]>((acc, i) => (i.keyword === 'FROM' ? [...acc, [i]] : (acc[acc.length - 1]?.push(i), acc)), []);
  const final = stages[stages.length - 1];
  const finalText = (keyword: string) => final.filter((i) => i.keyword === keyword).map((i) => i.args).join(' ');

  test('is multi-stage: the addon is built with CUDA in a build stage, on a CUDA base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => /AS build$/i.test(s[0].args))!;
    expect(build[0].args).toMatch(/^nvidia\/cuda:.*-devel-/);
    expect(build.some((i) => i.keyword === 'RUN' && /npm run build:cuda/.test(i.args))).toBe(true);
    expect(build.some((i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.args))).toBe(true);
    expect(final[0].args).toMatch(/^nvidia\/cuda:/);
    expect(final[0].args).not.toMatch(/-devel-/);
  });

  test('installs onnxruntime\'s CUDA 12 provider at build time, on CUDA 12 and cuDNN 9 images, with Node 22', () => {
    const build = stages.find((s) => /AS build$/i.test(s[0].args))!;
    const args = Object.fromEntries(all.filter((i) => i.keyword === 'ARG').map((i) => i.args.split('=')));
    expect(args.CUDA_VERSION).toMatch(/^12\./);
    expect(build[0].args).toMatch(/-cudnn-devel-/);
    expect(final[0].args).toMatch(/-cudnn-runtime-/);
    expect(build.some((i) => i.keyword === 'ENV' && /ONNXRUNTIME_NODE_INSTALL=cuda12/.test(i.args))).toBe(true);
    // The build fails rather than ship an image whose sessions could never reach the GPU.
    expect(build.some((i) => i.keyword === 'RUN' && /test -f \S*libonnxruntime_providers_cuda\.so/.test(i.args))).toBe(true);
    const node = stages.find((s) => /AS node$/i.test(s[0].args))!;
    expect(node[0].args).toMatch(/^node:22[-.]/);
  });

  test('carries the SageMaker multi-model labels', () => {
    const labels = finalText('LABEL');
    expect(labels).toMatch(/com\.amazonaws\.sagemaker\.capabilities\.multi-models=true/);
    expect(labels).toMatch(/com\.amazonaws\.sagemaker\.capabilities\.accept-bind-to-port=true/);
  });

  test('runs as a non-root user, exposes 8080, and starts the entrypoint with `serve`', () => {
    const user = finalText('USER');
    expect(user).not.toBe('');
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(finalText('EXPOSE').split(/\s+/)).toContain('8080');
    expect(JSON.parse(finalText('ENTRYPOINT'))).toEqual(['/opt/quiver/docker/entrypoint.sh']);
    expect(JSON.parse(finalText('CMD'))).toEqual(['serve']);
    const copied = final.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copied).toContain('docker/entrypoint.sh docker/entrypoint.sh');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('docker/entrypoint.sh', () => {
  test('`serve` with SageMaker environment serves the multi-model contract on SAGEMAKER_BIND_TO_PORT', async () => {
    const root = tempDir('opt-ml');
    writeModelFolder(path.join(root, 'm', 'model'), addModel([5]));
    const port = await freePort();
    let output = '';
    const child = spawn('sh', [ENTRYPOINT, 'serve', '--workers', '1'], {
      env: { PATH: process.env.PATH, SAGEMAKER_BIND_TO_PORT: String(port), SAGEMAKER_MODEL_ROOT: root },
    });
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const url = `http://127.0.0.1:${port}`;
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        up = await fetch(`${url}/ping`).then((r) => r.status === 200, () => false);
        if (!up) await new Promise((r) => setTimeout(r, 50));
      }
      expect(up).toBe(true);
      // SageMaker's conventions: all interfaces, its port, its model root.
      expect(output).toContain(`"inference":"http://0.0.0.0:${port}"`);
      expect((await postJson(`${url}/models`, { model_name: 'm', url: path.join(root, 'm', 'model') })).status).toBe(200);
      expect(await json(await postJson(`${url}/models/m/invoke`, { x: [[1]] }))).toEqual({ y: [[6]] });
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  test('any other argument runs as a command', () => {
    const result = spawnSync('sh', [ENTRYPOINT, 'echo', 'hello from the container'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe('hello from the container');
  });
});
