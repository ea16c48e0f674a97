// Query and header values checked at the edge, with errors that name the parameter.
import type { Request } from 'express';
import { BadRequestError } from '../errors';

function single(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequestError(`query parameter ${name} must be given once, as text`);
  return value;
}

export function stringParam(req: Request, name: string): string | undefined {
  return single(req, name);
}

export function intParam(req: Request, name: string, range: { min?: number; max?: number } = {}): number | undefined {
  const raw = single(req, name);
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw)) throw new BadRequestError(`query parameter ${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if ((range.min !== undefined && value < range.min) || (range.max !== undefined && value > range.max)) {
    throw new BadRequestError(`query parameter ${name} must be between ${range.min ?? '-∞'} and ${range.max ?? '∞'}, got ${value}`);
  }
  return value;
}

export function boolParam(req: Request, name: string): boolean | undefined {
  const raw = single(req, name);
  if (raw === undefined || raw === '') return undefined;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new BadRequestError(`query parameter ${name} must be true or false, got ${JSON.stringify(raw)}`);
}
