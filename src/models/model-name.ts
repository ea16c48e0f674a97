// Names and relative paths that come from requests are checked here, before they touch the file system.
import * as path from 'node:path';
import { InvalidModelNameError, UnsafePathError } from '../errors';

// MMS's rule. No '/': /predictions/{name}/{version} could not tell a name from a version. SageMaker
// target models are paths ("a/model.tar.gz") and keep theirs (validateRelativePath); names never
// become file paths themselves.
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export function validateModelName(name: unknown): string {
  if (typeof name !== 'string' || !MODEL_NAME.test(name)) {
    throw new InvalidModelNameError(
      `model name ${JSON.stringify(name)} is not valid: use 1-255 letters, digits, '_', '-' or '.', starting with a letter or digit` +
        (typeof name === 'string' && name.includes('/') ? " ('/' would make /predictions/{name}/{version} ambiguous)" : ''),
    );
  }
  return name;
}

/** A path relative to a root, such as SageMaker's TargetModel: no absolute paths, no `..`, no NUL. */
export function validateRelativePath(relative: string, what: string): string {
  const parts = relative.split(/[\\/]+/).filter((p) => p.length > 0);
  if (
    relative.length === 0 ||
    relative.length > 1024 ||
    relative.includes('\0') ||
    path.isAbsolute(relative) ||
    parts.length === 0 ||
    parts.some((p) => p === '..' || p === '.')
  ) {
    throw new UnsafePathError(`${what} ${JSON.stringify(relative)} must be a relative path inside the model store`);
  }
  return parts.join('/');
}

/** Resolves `target` and refuses anything that lands outside `root`. */
export function resolveInside(root: string, target: string, what: string): string {
  const resolvedRoot = path.resolve(root);
  const resolved = path.resolve(resolvedRoot, target);
  const rel = path.relative(resolvedRoot, resolved);
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new UnsafePathError(`${what} ${JSON.stringify(target)} is outside the model store`);
  }
  return resolved;
}
