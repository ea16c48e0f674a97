// Structured logs through pino: one JSON object a line, or coloured lines for a terminal.
// Request bodies, headers and query strings are never logged (they can carry data and signed URLs).
import pino, { Logger } from 'pino';
import type { LogFormat, LogLevel } from './config/schema';

export type { Logger } from 'pino';

/** Log bytes held while stdout is not read; more are dropped, not queued without bound. */
export const MAX_BUFFERED_LOG_BYTES = 16 * 2 ** 20;
const LOG_BATCH_BYTES = 4096;
/** The longest a line waits to be written while the log is quiet. */
export const LOG_FLUSH_MS = 200;

export function createLogger(level: LogLevel, format: LogFormat): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'pretty') {
    // Loaded only for this format: pino-pretty and its dependencies are ~5 MB of RSS in every process.
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(options, pretty({ colorize: process.stdout.isTTY, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  }
  // Lines are gathered and written in batches from libuv's pool. A write a line cost the event loop
  // ~0.06 ms an access-log line, synchronous or not (a syscall, or a wake of a pool thread; profile of
  // the classifier at c=4), and a synchronous one blocks it outright while a reader leaves the pipe full.
  // Access-log lines go at LOG_BATCH_BYTES, or after LOG_FLUSH_MS; any other line at once, with them (log
  // below). pino writes what is left at exit. Past
  // MAX_BUFFERED_LOG_BYTES waiting, lines are dropped, not queued without bound.
  return pino(options, pino.destination({
    dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS, maxLength: MAX_BUFFERED_LOG_BYTES,
  }));
}

function initialLevel(): LogLevel {
  const configured = process.env.QUIVER_LOG_LEVEL as LogLevel | undefined;
  if (configured) return configured;
  return process.env.JEST_WORKER_ID ? 'silent' : 'info';
}

let current: Logger = createLogger(initialLevel(), 'json');

export function configureLogging(level: LogLevel, format: LogFormat): void {
  current.flush();
  current = createLogger(level, format);
}

/** The verbose level Triton's logging extension last set (debug lines have no levels of their own). */
let verbose = 0;

export function logState(): { level: LogLevel; verbose: number } {
  const level = current.level as LogLevel;
  return { level, verbose: level === 'debug' ? Math.max(1, verbose) : 0 };
}

/** Changes the level while the server runs (Triton's logging extension). */
export function setLogState(state: { level: LogLevel; verbose: number }): void {
  current.level = state.level;
  verbose = state.verbose;
}

/** The wait for buffered lines at a clean exit; a reader that takes longer gets the rest from pino's exit flush. */
const FLUSH_TIMEOUT_MS = 2_000;

/**
 * Resolves once every line logged so far is written (or after FLUSH_TIMEOUT_MS). Called before a clean
 * exit: pino's own flush at exit writes the buffer beside a write still in flight, so lines could come
 * out of order.
 */
export function flushLog(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
    timer.unref();
    current.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

type Fields = Record<string, unknown>;

/** An event's line goes out at once (with the batch before it, so in order); access-log lines wait for a batch. */
function logged(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Fields): void {
  if (!current.isLevelEnabled(level)) return;
  current[level](fields, msg);
  current.flush();
}

export const log = {
  debug: (msg: string, fields: Fields = {}) => logged('debug', msg, fields),
  info: (msg: string, fields: Fields = {}) => logged('info', msg, fields),
  warn: (msg: string, fields: Fields = {}) => logged('warn', msg, fields),
  error: (msg: string, fields: Fields = {}) => logged('error', msg, fields),
  /** One access-log line: batched with the next ones (createLogger). */
  request: (fields: Fields) => current.info(fields, 'request'),
  child: (bindings: Fields): Logger => current.child(bindings),
};
