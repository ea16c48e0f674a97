// Structured logs through pino: one JSON object a line, or coloured lines for a terminal.
// Request bodies, headers and query strings are never logged (they can carry data and signed URLs).
import pino, { Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './config/schema';

export type { Logger } from 'pino';

export function createLogger(level: LogLevel, format: LogFormat): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'pretty') return pino(options, pretty({ colorize: process.stdout.isTTY, sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

function initialLevel(): LogLevel {
  const configured = process.env.QUIVER_LOG_LEVEL as LogLevel | undefined;
  if (configured) return configured;
  return process.env.JEST_WORKER_ID ? 'silent' : 'info';
}

let current: Logger = createLogger(initialLevel(), 'json');

export function configureLogging(level: LogLevel, format: LogFormat): void {
  current = createLogger(level, format);
}

type Fields = Record<string, unknown>;

export const log = {
  debug: (msg: string, fields: Fields = {}) => current.debug(fields, msg),
  info: (msg: string, fields: Fields = {}) => current.info(fields, msg),
  warn: (msg: string, fields: Fields = {}) => current.warn(fields, msg),
  error: (msg: string, fields: Fields = {}) => current.error(fields, msg),
  child: (bindings: Fields): Logger => current.child(bindings),
};
