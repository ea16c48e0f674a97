// Runs the server in a child process and starts it again when it dies. Worker threads share the
// process, so a native crash in one takes the whole server; the restarted server registers the models
// of the last snapshot again, and the endpoint comes back by itself with the same models.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { LogLevel } from '../config/schema';

/** The supervisor's few lines (start, death, stop). */
export type SupervisorLog = (level: 'info' | 'error', msg: string, fields: Record<string, unknown>) => void;

const PINO_LEVELS: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

/**
 * Lines as pino's JSON writes them, without pino: the supervisor only watches, and pino with its
 * dependencies is ~9 MB of its ~52 MB of RSS.
 */
export function jsonLines(level: LogLevel, write: (line: string) => void = (line) => fs.writeSync(1, line)): SupervisorLog {
  const min = PINO_LEVELS[level];
  return (at, msg, fields) => {
    if (PINO_LEVELS[at] < min) return;
    try {
      write(`${JSON.stringify({ level: PINO_LEVELS[at], time: new Date().toISOString(), pid: process.pid, ...fields, msg })}\n`);
    } catch {
      // A full or closed stdout (EAGAIN, EPIPE) drops the line: the supervisor must go on restarting the server.
    }
  };
}

/** Set in the child's environment: `first` on the first start, `restart` after a crash. */
export const SUPERVISED_ENV = 'QUIVER_SUPERVISED';
/** Exit code of a server that refused its configuration: restarting it would not help. */
export const CONFIG_EXIT_CODE = 2;

/**
 * Node flags of the server process:
 * - the main thread's young generation held to 2 MiB semi-spaces. V8 lets it grow to 16 MiB each, which
 *   under a fast stream of small requests showed as tens of MiB of RSS that model churn never got back
 *   (bench:churn). A value the user gave (NODE_OPTIONS, which the server inherits, or this process's own
 *   flag) wins;
 * - `--expose-gc`, so that the scheduler can collect the main thread's garbage after it unloads a copy
 *   (scheduler/garbage-collection.ts).
 */
export function serverNodeArgs(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const own = execArgv.find((a) => a.startsWith('--max-semi-space-size'));
  const semiSpace = nodeOptions.includes('--max-semi-space-size') ? [] : [own ?? '--max-semi-space-size=2'];
  return [...semiSpace, '--expose-gc'];
}

export interface SuperviseOptions {
  script: string;
  log: SupervisorLog;
  args: string[];
  shutdownTimeoutMs: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** A child that lived this long resets the back-off. */
  stableAfterMs?: number;
}

/** Delay before the n-th consecutive restart (1-based): doubling, capped. */
export function restartDelay(consecutive: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, consecutive - 1));
}

export function supervise(o: SuperviseOptions): Promise<number> {
  const first = o.firstDelayMs ?? 250;
  const max = o.maxDelayMs ?? 10_000;
  const stableAfter = o.stableAfterMs ?? 30_000;
  let stopping = false;
  let consecutive = 0;
  let child: ChildProcess | undefined;

  return new Promise((resolve) => {
    const start = (kind: 'first' | 'restart') => {
      const startedAt = Date.now();
      child = spawn(process.execPath, [...serverNodeArgs(), o.script, ...o.args], {
        stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, [SUPERVISED_ENV]: kind },
      });
      o.log('info', 'server process started', { childPid: child.pid, kind });
      child.on('exit', (code, signal) => {
        if (stopping || code === 0 || code === CONFIG_EXIT_CODE) {
          resolve(code ?? 0);
          return;
        }
        consecutive = Date.now() - startedAt > stableAfter ? 1 : consecutive + 1;
        const delay = restartDelay(consecutive, first, max);
        o.log('error', 'server process died; restarting it', { code, signal, restartInMs: delay, consecutive });
        setTimeout(() => (stopping ? resolve(0) : start('restart')), delay);
      });
    };
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      o.log('info', 'stopping the server process', { signal });
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve(0);
      child.kill(signal);
      setTimeout(() => child?.kill('SIGKILL'), o.shutdownTimeoutMs + 5000).unref();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    start('first');
  });
}
