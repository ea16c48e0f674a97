// Turns flags and environment variables into a validated QuiverConfig, once, at start.
// Precedence: flags over QUIVER_* environment variables over defaults.
import { InvalidConfigError } from '../errors';
import { CONFIG_SCHEMA, ConfigEntry, QuiverConfig, ServeMode } from './schema';

export type RawFlags = Record<string, string | string[] | boolean | undefined>;

export interface ParsedAddress {
  host: string;
  port: number;
}

export function parseAddress(value: string, key = 'address'): ParsedAddress {
  const match = /^(?:https?:\/\/)?(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(value.trim());
  if (!match) throw new InvalidConfigError(`${key}: expected host:port, got "${value}"`);
  const port = Number(match[2]);
  if (port > 65535) throw new InvalidConfigError(`${key}: port ${port} is out of range 0-65535`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function parseValue(entry: ConfigEntry, raw: string | string[], source: string): QuiverConfig[keyof QuiverConfig] {
  const where = `${entry.key} (from ${source})`;
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  switch (entry.type) {
    case 'int': {
      if (!/^\d+$/.test(text.trim())) throw new InvalidConfigError(`${where}: expected a whole number, got "${text}"`);
      const n = Number(text);
      if (entry.min !== undefined && n < entry.min) {
        throw new InvalidConfigError(`${where}: must be at least ${entry.min}, got ${n}`);
      }
      return n;
    }
    case 'list': {
      const items = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(','));
      return items.map((v) => v.trim()).filter((v) => v.length > 0);
    }
    case 'choice': {
      const choices = entry.choices ?? [];
      if (!choices.includes(text)) {
        throw new InvalidConfigError(`${where}: expected ${choices.map((c) => `"${c}"`).join(' or ')}, got "${text}"`);
      }
      return text;
    }
    case 'address':
      parseAddress(text, where);
      return text;
    case 'string':
      if (text.length === 0) throw new InvalidConfigError(`${where}: must not be empty`);
      return text;
  }
}

function rawValue(entry: ConfigEntry, flags: RawFlags, env: NodeJS.ProcessEnv): [string | string[], string] | undefined {
  const flag = flags[entry.flag];
  if (typeof flag === 'string' || Array.isArray(flag)) return [flag, `--${entry.flag}`];
  const fromEnv = env[entry.env];
  if (fromEnv !== undefined) return [fromEnv, entry.env];
  return undefined;
}

export function loadConfig(flags: RawFlags = {}, env: NodeJS.ProcessEnv = process.env): QuiverConfig {
  const known = new Set(CONFIG_SCHEMA.map((e) => e.flag));
  for (const name of Object.keys(flags)) {
    if (!known.has(name)) throw new InvalidConfigError(`unknown option --${name}`);
  }
  const modeEntry = CONFIG_SCHEMA.find((e) => e.key === 'mode')!;
  const modeRaw = rawValue(modeEntry, flags, env);
  const mode = (modeRaw ? parseValue(modeEntry, ...modeRaw) : modeEntry.default(env)) as ServeMode;

  const config: Partial<Record<keyof QuiverConfig, unknown>> = { mode };
  for (const entry of CONFIG_SCHEMA) {
    if (entry.key === 'mode') continue;
    const raw = rawValue(entry, flags, env);
    if (raw) config[entry.key] = parseValue(entry, ...raw);
    else config[entry.key] = mode === 'sagemaker' && entry.sagemakerDefault ? entry.sagemakerDefault(env) : entry.default(env);
  }
  return config as QuiverConfig;
}
