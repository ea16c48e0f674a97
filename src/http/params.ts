// Query and header values checked at the edge, with errors that name the parameter.
import type { Request } from 'express';
import { BadRequestError } from '../errors';

function single(req: Request, name: string): string | undefined {
  return singleOf(req.query, name);
}

function singleOf(source: Request['query'], name: string): string | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequestError(`parameter ${name} must be given once, as text`);
  return value;
}

export function stringParam(req: Request, name: string): string | undefined {
  return single(req, name);
}

function parseWhole(name: string, raw: string | undefined, range: { min?: number; max?: number }): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw)) throw new BadRequestError(`parameter ${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if ((range.min !== undefined && value < range.min) || (range.max !== undefined && value > range.max)) {
    throw new BadRequestError(`parameter ${name} must be between ${range.min ?? '-∞'} and ${range.max ?? '∞'}, got ${value}`);
  }
  return value;
}

function parseBool(name: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new BadRequestError(`parameter ${name} must be true or false, got ${JSON.stringify(raw)}`);
}

export function intParam(req: Request, name: string, range: { min?: number; max?: number } = {}): number | undefined {
  return parseWhole(name, single(req, name), range);
}

export function boolParam(req: Request, name: string): boolean | undefined {
  return parseBool(name, single(req, name));
}

function parseChoice<T extends string>(name: string, raw: string | undefined, choices: readonly T[]): T | undefined {
  if (raw === undefined || raw === '') return undefined;
  const value = raw.toLowerCase();
  if (!(choices as readonly string[]).includes(value)) throw new BadRequestError(`parameter ${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return value as T;
}

export interface Params {
  string(name: string): string | undefined;
  int(name: string, range?: { min?: number; max?: number }): number | undefined;
  bool(name: string): boolean | undefined;
  choice<T extends string>(name: string, choices: readonly T[]): T | undefined;
}

/** A registration's parameters: the query, or a JSON object body (MMS takes either); values as text. */
export function registrationParams(req: Request): Params {
  let source: Request['query'] = req.query;
  if (req.body !== undefined && req.body !== null && Object.keys(req.body as object).length > 0) {
    if (typeof req.body !== 'object' || Array.isArray(req.body)) throw new BadRequestError('registration body must be a JSON object');
    source = Object.fromEntries(
      Object.entries(req.body as Record<string, unknown>).map(([k, v]) => {
        if (typeof v === 'object' && v !== null) throw new BadRequestError(`parameter ${k} must be text, a number or a boolean`);
        return [k, String(v)];
      }),
    );
  }
  return {
    string: (name) => singleOf(source, name),
    int: (name, range = {}) => parseWhole(name, singleOf(source, name), range),
    bool: (name) => parseBool(name, singleOf(source, name)),
    choice: (name, choices) => parseChoice(name, singleOf(source, name), choices),
  };
}
