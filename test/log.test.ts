// The JSON log is written off the event loop: a full stdout pipe must not stall the server, and lines
// logged just before an exit must still come out.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const LOG_MODULE = path.join(__dirname, '..', 'src', 'log');

/** Runs `body` in a child node with `log` configured as `npm start` has it (info, json). */
function child(body: string) {
  const script = `const { configureLogging, flushLog, log } = require(${JSON.stringify(LOG_MODULE)}); configureLogging('info', 'json'); ${body}`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function lines(text: string): { msg: string; i?: number }[] {
  return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as { msg: string; i?: number });
}

describe('the JSON log', () => {
  test('every line logged right before process.exit is written (pino\'s flush at exit)', async () => {
    const p = child('for (let i = 0; i < 3000; i++) log.request({ i }); process.exit(0);');
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise((resolve) => p.on('close', resolve));
    expect(code).toBe(0);
    const got = lines(out);
    expect(got).toHaveLength(3000);
    // Written beside a write still in flight, the last lines may come out of order: all are there.
    expect(got.map((l) => l.i).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  test('a stdout nobody reads does not stop the event loop; once it is read, every line comes out in order before a clean exit', async () => {
    // 4 MB of lines fill the pipe (64 KB) many times over. A synchronous write would block in write(2)
    // until the reader reads, so the timer below would never fire while nothing reads.
    const p = child(`
      const pad = 'x'.repeat(1000);
      for (let i = 0; i < 4000; i++) log.request({ i, pad });
      setTimeout(() => { require('node:fs').writeSync(2, 'tick\\n'); flushLog().then(() => process.exit(0)); }, 10);
    `);
    p.stdout.pause();
    let err = '';
    // Killed if it never ticks (blocked in write), so that the test fails instead of holding jest open.
    const guard = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await new Promise<void>((resolve, reject) => {
      p.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        if (err.includes('tick')) resolve();
      });
      p.on('close', () => reject(new Error(`the child ended without ticking: ${err}`)));
    });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stdout.resume();
    const code = await new Promise((resolve) => p.on('close', resolve));
    clearTimeout(guard);
    expect(code).toBe(0);
    const got = lines(out).map((l) => l.i!);
    const firstWrong = got.findIndex((v, k) => v !== k);
    expect([got.length, firstWrong, firstWrong < 0 ? [] : got.slice(Math.max(0, firstWrong - 2), firstWrong + 20)]).toEqual([4000, -1, []]);
  });

  test.each([
    ['an event', 'log.info("alone", { i: 1 })'],
    ['an access-log line', 'log.request({ i: 1 })'],
  ])('%s alone is written while the server lives on, not held for a batch', async (_what, write) => {
    const p = child(`${write}; setInterval(() => {}, 1000);`);
    const guard = setTimeout(() => p.kill('SIGKILL'), 15_000);
    let out = '';
    await new Promise<void>((resolve) => {
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.endsWith('\n')) resolve();
      });
      p.on('close', () => resolve());
    });
    clearTimeout(guard);
    const alive = p.exitCode === null && p.signalCode === null;
    p.kill('SIGKILL');
    expect(alive).toBe(true);
    expect(lines(out).map((l) => l.i)).toEqual([1]);
  });

  test('an event after access-log lines still waiting comes out after them', async () => {
    const p = child('for (let i = 0; i < 10; i++) log.request({ i }); log.warn("event", { i: 10 }); setInterval(() => {}, 1000);');
    const guard = setTimeout(() => p.kill('SIGKILL'), 15_000);
    let out = '';
    await new Promise<void>((resolve) => {
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (lines(out).length >= 11) resolve();
      });
      p.on('close', () => resolve());
    });
    clearTimeout(guard);
    p.kill('SIGKILL');
    expect(lines(out).map((l) => l.i)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect(lines(out).map((l) => l.msg)).toEqual([...Array(10).fill('request'), 'event']);
  });
});
