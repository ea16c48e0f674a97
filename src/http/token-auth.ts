// Token authorization the way TorchServe does it: a key file with one key for the inference API and
// one for the management API, sent as `Authorization: Bearer <key>`. On by default for an API bound to
// a non-loopback address, except the SageMaker contract (the platform calls it inside the endpoint's
// own network and sends no token). Keys are never logged.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { QuiverConfig } from '../config/schema';
import { InvalidConfigError, TokenAuthorizationError } from '../errors';
import { parseAddress } from '../config/load';

export interface ApiKeys {
  inference: string;
  management: string;
}

interface KeyFile {
  inference: { key: string };
  management: { key: string };
}

export function isLoopback(address: string): boolean {
  const { host } = parseAddress(address);
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function keyFilePath(config: QuiverConfig): string {
  return config.key_file !== '' ? config.key_file : path.join(config.work_dir, 'key_file.json');
}

/** A gRPC listener others can reach: off and unix sockets are not (a socket's file mode guards it). */
function grpcReachable(address: string): boolean {
  return address !== 'off' && !address.startsWith('unix:') && !isLoopback(address);
}

/**
 * Which APIs need a token: `on` all, `off` none, `auto` those bound beyond loopback (never SageMaker's).
 * `grpc`: the gRPC inference service, where inference calls take the inference key and the repository
 * calls the management key (ModelMesh's runtime port is the pod's own and takes none).
 */
export function tokenAuthFor(config: QuiverConfig): { inference: boolean; management: boolean; grpc: boolean } {
  if (config.token_auth === 'off') return { inference: false, management: false, grpc: false };
  if (config.token_auth === 'on') return { inference: true, management: true, grpc: config.grpc_inference_address !== 'off' };
  if (config.mode === 'sagemaker') return { inference: false, management: false, grpc: false };
  return { inference: !isLoopback(config.inference_address), management: !isLoopback(config.management_address), grpc: grpcReachable(config.grpc_inference_address) };
}

function newKey(): string {
  return randomBytes(24).toString('base64url');
}

/** Keys someone else could have written or can read are no keys: the work dir may sit in a shared /tmp. */
function checkPrivate(file: string): boolean {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const owner = process.getuid?.();
  if (!stat.isFile() || (owner !== undefined && stat.uid !== owner) || (stat.mode & 0o077) !== 0) {
    throw new InvalidConfigError(`key_file ${file} must be a plain file owned by this user and readable by it alone (chmod 600), or absent`);
  }
  return true;
}

function readKeys(file: string): ApiKeys | undefined {
  if (!checkPrivate(file)) return undefined;
  let parsed: KeyFile;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidConfigError(`key_file ${file} is not a key file: ${(err as Error).message}; remove it to make new keys`);
  }
  const inference = parsed?.inference?.key;
  const management = parsed?.management?.key;
  if (typeof inference !== 'string' || typeof management !== 'string' || inference.length < 16 || management.length < 16) {
    throw new InvalidConfigError(`key_file ${file} does not hold an inference and a management key of 16 characters or more`);
  }
  return { inference, management };
}

/** The keys in the key file, made (readable by this user alone) when there is none; kept across restarts. */
export function loadOrCreateKeys(file: string): ApiKeys {
  const existing = readKeys(file);
  if (existing) return existing;
  const keys: ApiKeys = { inference: newKey(), management: newKey() };
  const body: KeyFile = { inference: { key: keys.inference }, management: { key: keys.management } };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  // 'wx': never through a link or a file someone placed there.
  fs.writeFileSync(temp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(temp, file);
  return keys;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether an Authorization header value carries `key` as a Bearer token; undefined when it carries none. */
export function bearerMatches(header: string | undefined, key: string): boolean | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  return timingSafeEqual(digest(match[1]), digest(key));
}

/** Health checks stay open: load balancers, Kubernetes probes and Triton's clients send no token. */
const OPEN_PATHS = new Set(['/ping', '/v2/health/live', '/v2/health/ready']);

/** Triton's model repository extension, on the inference port: loads and unloads, so management's. */
const REPOSITORY_PREFIX = '/v2/repository/';
/** Triton's logging extension: it changes the server's log level, so it takes that key too. */
const LOGGING_PATH = '/v2/logging';
/** Triton's system shared memory: registering a region makes the server open a file, so management's. */
const SHARED_MEMORY_PREFIXES = ['/v2/systemsharedmemory/', '/v2/cudasharedmemory/'];

/**
 * Requests need `Authorization: Bearer <key>`, except health checks; with `repositoryKey`, the /v2
 * repository and logging routes need that one (the management key) instead.
 */
export function requireToken(key: string, api: string, repositoryKey?: string): RequestHandler {
  return (req, res, next) => {
    if (OPEN_PATHS.has(req.path)) return next();
    // Express matches routes whatever their case: so does this.
    const path = req.path.toLowerCase();
    const repository = repositoryKey !== undefined && (path.startsWith(REPOSITORY_PREFIX) || SHARED_MEMORY_PREFIXES.some((p) => path.startsWith(p)) || path === LOGGING_PATH || path === `${LOGGING_PATH}/`);
    const needed = repository ? 'management' : api;
    const match = bearerMatches(req.get('authorization'), repository ? repositoryKey : key);
    if (match) return next();
    res.set('WWW-Authenticate', 'Bearer');
    // The body of a request that may not be made is not read: the connection goes with the answer.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.set('Connection', 'close');
    next(
      new TokenAuthorizationError(
        match === false
          ? `the token is not the ${needed} key`
          : `the ${needed} API needs "Authorization: Bearer <${needed} key>" (the key file of the server holds it)`,
      ),
    );
  };
}
