// Triton's logging extension (GET/POST /v2/logging, gRPC LogSettings) over this server's one log level.
// Triton switches verbose, info, warning and error lines on and off one by one; pino's levels nest (info
// includes warnings and errors). So turning a kind on turns on the coarser ones, turning one off turns
// off the finer ones, and an update that asks for both at once is refused rather than reported wrongly.
import { BadRequestError } from '../errors';
import type { LogLevel } from '../config/schema';

export interface LogSettings {
  log_file: string;
  log_info: boolean;
  log_warnings: boolean;
  log_errors: boolean;
  log_verbose_level: number;
  log_format: 'default';
}

/** The server's level, and the verbose level a client set (debug lines have no levels of their own). */
export interface LogState {
  level: LogLevel;
  verbose: number;
}

// Finest first: each on implies those after it.
const KINDS = ['log_verbose_level', 'log_info', 'log_warnings', 'log_errors'] as const;
const LEVEL_OF_FINEST: LogLevel[] = ['debug', 'info', 'warn', 'error'];
const KEYS = ['log_file', 'log_info', 'log_warnings', 'log_errors', 'log_verbose_level', 'log_format'] as const;

function onFlags(level: LogLevel): boolean[] {
  const finest = LEVEL_OF_FINEST.indexOf(level);
  return KINDS.map((_, i) => finest >= 0 && i >= finest);
}

/** What Triton's settings say for a state. */
export function logSettingsOf(state: LogState): LogSettings {
  const on = onFlags(state.level);
  return { log_file: '', log_info: on[1], log_warnings: on[2], log_errors: on[3], log_verbose_level: on[0] ? Math.max(1, state.verbose) : 0, log_format: 'default' };
}

/** The state after `update` (some of Triton's settings); 400 for what cannot be. */
export function applyLogSettings(state: LogState, update: unknown): LogState {
  if (typeof update !== 'object' || update === null || Array.isArray(update)) throw new BadRequestError('the log settings must be a JSON object');
  const given: (boolean | undefined)[] = KINDS.map(() => undefined);
  let verbose = state.verbose;
  for (const [key, value] of Object.entries(update)) {
    if (!(KEYS as readonly string[]).includes(key)) throw new BadRequestError(`unknown log setting "${key}": the settings are ${KEYS.join(', ')}`);
    if (key === 'log_file') {
      if (value !== '') throw new BadRequestError('log_file: this server logs to standard output only; "" is the one value');
    } else if (key === 'log_format') {
      if (value !== 'default') throw new BadRequestError('log_format: "default" is the one format (JSON lines with ISO 8601 times, or pretty, set at start)');
    } else if (key === 'log_verbose_level') {
      if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 2 ** 32 - 1) throw new BadRequestError('log_verbose_level must be a whole number ≥ 0');
      verbose = value as number;
      given[0] = verbose > 0;
    } else {
      if (typeof value !== 'boolean') throw new BadRequestError(`${key} must be true or false`);
      given[KINDS.indexOf(key as (typeof KINDS)[number])] = value;
    }
  }
  const finestOn = given.indexOf(true);
  const coarsestOff = given.lastIndexOf(false);
  if (finestOn >= 0 && coarsestOff > finestOn) {
    throw new BadRequestError(`${KINDS[finestOn]} on needs ${KINDS[coarsestOff]} on: log levels nest here (verbose, info, warnings, errors)`);
  }
  const on = onFlags(state.level).map((was, i) => (finestOn >= 0 && i >= finestOn ? true : coarsestOff >= 0 && i <= coarsestOff ? false : was));
  const finest = on.indexOf(true);
  return { level: finest < 0 ? 'silent' : LEVEL_OF_FINEST[finest], verbose: finest === 0 ? Math.max(1, verbose) : 0 };
}
