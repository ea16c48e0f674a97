// Builds the validated QuiverConfig once, at start, and remembers where each value came from.
// Precedence: flags > environment (QUIVER_*, then SageMaker's SAGEMAKER_*) > config file > defaults.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidConfigError } from '../errors';
import { unknownKeyMessage } from './foreign-keys';
import { CONFIG_SCHEMA, ConfigEntry, ConfigKey, QuiverConfig, ServeMode } from './schema';

export type RawFlags = Record<string, string | string[] | boolean | undefined>;

export interface ParsedAddress {
  host: string;
  port: number;
}

export interface LoadedConfig {
  config: QuiverConfig;
  /** Where each value came from: "default", "file config.properties:12", "env QUIVER_WORKERS", "flag --workers". */
  sources: Record<ConfigKey, string>;
  file?: string;
}

export const CONFIG_FILE_FLAG = 'config-file';
export const CONFIG_FILE_ENV = 'QUIVER_CONFIG_FILE';
/** Environment variables that are not configuration keys but are allowed to start with QUIVER_. */
const NON_KEY_ENV = new Set([CONFIG_FILE_ENV, 'QUIVER_SUPERVISED']);

export function parseAddress(value: string, key = 'address'): ParsedAddress {
  const match = /^(?:https?:\/\/)?(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(value.trim());
  if (!match) throw new InvalidConfigError(`${key}: expected host:port, got "${value}"`);
  const port = Number(match[2]);
  if (port > 65535) throw new InvalidConfigError(`${key}: port ${port} is out of range 0-65535`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** Java-style .properties: `key=value` or `key: value`, `#`/`!` comments, `\` continues a line. */
export function parseProperties(text: string, file: string): Map<string, { value: string; line: number }> {
  const entries = new Map<string, { value: string; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1;
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i].trim();
    const match = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (!match) throw new InvalidConfigError(`${file}:${lineNumber}: expected key=value, got "${line}"`);
    entries.set(match[1], { value: match[2], line: lineNumber });
  }
  return entries;
}

function parseValue(entry: ConfigEntry, raw: string | string[], source: string): QuiverConfig[keyof QuiverConfig] {
  const where = `${entry.key} (from ${source})`;
  const text = Array.isArray(raw) ? raw.join(',') : raw.trim();
  switch (entry.type) {
    case 'int': {
      if (!/^\d+$/.test(text)) throw new InvalidConfigError(`${where}: expected a whole number, got "${text}"`);
      const n = Number(text);
      if (entry.min !== undefined && n < entry.min) throw new InvalidConfigError(`${where}: must be at least ${entry.min}, got ${n}`);
      return n;
    }
    case 'list': {
      const items = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(','));
      return items.map((v) => v.trim()).filter((v) => v.length > 0);
    }
    case 'regex-list': {
      const items = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
      for (const item of items) {
        try {
          new RegExp(item);
        } catch (err) {
          throw new InvalidConfigError(`${where}: "${item}" is not a valid regular expression: ${(err as Error).message}`);
        }
      }
      return items;
    }
    case 'choice': {
      const choices = entry.choices ?? [];
      // As Java reads keystore_type and friends: any case.
      const choice = choices.find((c) => c.toLowerCase() === text.toLowerCase());
      if (choice === undefined) throw new InvalidConfigError(`${where}: expected ${choices.map((c) => `"${c}"`).join(' or ')}, got "${text}"`);
      return choice;
    }
    case 'address':
      parseAddress(text, where);
      return text;
    case 'grpc-address':
      if (text === 'off' || /^unix:.+/.test(text)) return text;
      parseAddress(text, where);
      return text;
    case 'string':
      if (text.length === 0) throw new InvalidConfigError(`${where}: must not be empty`);
      return text;
  }
}

function configFile(flags: RawFlags, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const given = flags[CONFIG_FILE_FLAG] ?? env[CONFIG_FILE_ENV];
  if (typeof given === 'string' && given.length > 0) {
    const file = path.resolve(cwd, given);
    if (!fs.existsSync(file)) throw new InvalidConfigError(`config file ${given} does not exist`);
    return file;
  }
  // As TorchServe does: a config.properties in the working folder is read when none is named.
  const implicit = path.join(cwd, 'config.properties');
  return fs.existsSync(implicit) ? implicit : undefined;
}

interface RawValue {
  raw: string | string[];
  source: string;
}

export function loadConfigWithSources(flags: RawFlags = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const byFlag = new Map(CONFIG_SCHEMA.map((e) => [e.flag, e]));
  for (const name of Object.keys(flags)) {
    if (name !== CONFIG_FILE_FLAG && !byFlag.has(name)) throw new InvalidConfigError(`unknown option --${name}`);
  }
  const byEnv = new Set(CONFIG_SCHEMA.map((e) => e.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith('QUIVER_') && !byEnv.has(name) && !NON_KEY_ENV.has(name)) {
      throw new InvalidConfigError(`unknown environment variable ${name}`);
    }
  }
  const file = configFile(flags, env, cwd);
  const fromFile = file ? parseProperties(fs.readFileSync(file, 'utf8'), path.basename(file)) : new Map<string, { value: string; line: number }>();
  const byKey = new Set<string>(CONFIG_SCHEMA.map((e) => e.key));
  for (const [key, { line }] of fromFile) {
    if (!byKey.has(key)) throw new InvalidConfigError(`${path.basename(file!)}:${line}: ${unknownKeyMessage(key)}`);
  }

  const rawValue = (entry: ConfigEntry): RawValue | undefined => {
    const flag = flags[entry.flag];
    if (typeof flag === 'string' || Array.isArray(flag)) return { raw: flag, source: `flag --${entry.flag}` };
    if (env[entry.env] !== undefined) return { raw: env[entry.env]!, source: `env ${entry.env}` };
    const sagemaker = entry.sagemakerEnv?.(env);
    if (sagemaker) return { raw: sagemaker.value, source: `env ${sagemaker.name}` };
    const inFile = fromFile.get(entry.key);
    if (inFile) return { raw: inFile.value, source: `file ${path.basename(file!)}:${inFile.line}` };
    return undefined;
  };

  const config: Partial<Record<ConfigKey, unknown>> = {};
  const sources: Partial<Record<ConfigKey, string>> = {};
  const assign = (entry: ConfigEntry, mode: ServeMode | undefined) => {
    const value = rawValue(entry);
    if (value) {
      config[entry.key] = parseValue(entry, value.raw, value.source);
      sources[entry.key] = value.source;
    } else {
      config[entry.key] = mode === 'sagemaker' && entry.sagemakerDefault ? entry.sagemakerDefault(env) : entry.default(env);
      sources[entry.key] = 'default';
    }
  };
  // The mode decides other keys' defaults, so it comes first.
  assign(CONFIG_SCHEMA.find((e) => e.key === 'mode')!, undefined);
  for (const entry of CONFIG_SCHEMA) if (entry.key !== 'mode') assign(entry, config.mode as ServeMode);
  const loaded = config as QuiverConfig;
  // Node insists, and would say so only once the models are loaded.
  if (loaded.header_read_timeout > loaded.request_read_timeout) {
    throw new InvalidConfigError(`header_read_timeout (${loaded.header_read_timeout}) must not be more than request_read_timeout (${loaded.request_read_timeout})`);
  }
  return { config: loaded, sources: sources as Record<ConfigKey, string>, file };
}

export function loadConfig(flags: RawFlags = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): QuiverConfig {
  return loadConfigWithSources(flags, env, cwd).config;
}

/** `quiver config --print`: every key, its effective value and where it came from. */
export function formatConfig(loaded: LoadedConfig): string {
  const width = Math.max(...CONFIG_SCHEMA.map((e) => e.key.length));
  const lines = CONFIG_SCHEMA.map((e) => {
    const value = loaded.config[e.key];
    const text = e.secret && value !== '' ? '(set)' : Array.isArray(value) ? value.join(',') : String(value);
    return `${e.key.padEnd(width)} = ${text}    # ${loaded.sources[e.key]}`;
  });
  return [`# config file: ${loaded.file ?? '(none)'}`, ...lines].join('\n');
}
