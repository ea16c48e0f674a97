// CI's short churn: the benchmark's own checks (answers, snapshot, sessions, unpacked folders) must all
// come out clean; the RSS figures need the full run (npm run bench:churn) and are not judged here.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

test('a short churn with a SIGKILL loses, misanswers and leaks nothing', async () => {
  const script = path.join(__dirname, '..', '..', 'bench', 'churn.js');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--seconds', '10', '--cycles', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`churn exited ${code}:\n${text}`))));
  });
  const result = /^RESULT churn (.*)$/m.exec(out);
  expect(result).not.toBeNull();
  const figures = Object.fromEntries(result![1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  expect(figures.requests).toBeGreaterThan(200);
  expect(figures.ops).toBeGreaterThan(5);
  expect({ lost: figures.lost, wrong: figures.wrong, unexpected: figures.unexpected, leaked_sessions: figures.leaked_sessions, orphan_dirs: figures.orphan_dirs, snapshot_mismatch: figures.snapshot_mismatch })
    .toEqual({ lost: 0, wrong: 0, unexpected: 0, leaked_sessions: 0, orphan_dirs: 0, snapshot_mismatch: 0 });
}, 180_000);
