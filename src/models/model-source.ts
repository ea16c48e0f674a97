// Resolves a model URL (a folder, or a .tar.gz/.mar archive inside the model store, or an s3:// URL
// or http(s) URL fetched through the download cache) into a ModelPackage: where the ONNX file is, its config, handler
// and version. Nothing outside the store (or the cache) is read.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ArtifactNotFoundError, BadRequestError, HandlersRefusedError, InvalidModelArchiveError, UnsafePathError } from '../errors';
import { extractArchive } from './archive';
import { ModelConfig, formatIssues, parseModelConfig } from './model-config';
import { resolveInside } from './model-name';
import { RemoteArtifactSource, isRemoteUrl } from './remote-source';
import { releaseUnpacked, unpackedRoot, useUnpacked } from './unpacked-folders';

export interface ModelPackage {
  /** Name the package gives itself (manifest modelName, else the file or folder name). */
  name: string;
  version: string;
  url: string;
  dir: string;
  modelPath: string;
  modelBytes: number;
  config: ModelConfig;
  labels?: string[];
  handlerPath?: string;
  /** Set for a downloaded artifact: its download-cache entry, pinned until the model goes. */
  cacheKey?: string;
  /** Set for a local archive: the folder it was unpacked into, used by this package until the model goes. */
  unpackedDir?: string;
}

/** What an open package holds until releasePackage gives it back. */
export type PackageHolds = Pick<ModelPackage, 'cacheKey' | 'unpackedDir'>;

export interface ModelSourceOptions {
  modelStore: string;
  /** Folders outside the store that links inside it may lead to (ModelMesh's PVC mounts). */
  linkRoots?: readonly string[];
  workDir: string;
  maxArchiveBytes: number;
  /** false: packages with a JavaScript handler are refused (`--no-handlers`). */
  allowHandlers?: boolean;
  /** Unpacked bytes an archive may have per byte of its own (past 16 MiB). */
  maxArchiveRatio?: number;
  /** Fetches s3:// and http(s):// URLs; without it they are refused. */
  remote?: RemoteArtifactSource;
}

const manifestSchema = z
  .object({
    runtime: z.string().optional(),
    model: z
      .object({
        modelName: z.string().min(1).optional(),
        modelVersion: z.string().min(1).optional(),
        handler: z.string().min(1).optional(),
        serializedFile: z.string().min(1).optional(),
      })
      .passthrough(),
  })
  .passthrough();

export type MarManifest = z.infer<typeof manifestSchema>;

const ARCHIVE_SUFFIX = /(\.tar\.gz|\.tgz|\.tar|\.mar|\.zip)$/i;

async function statOrUndefined(p: string) {
  try {
    return await fsp.stat(p);
  } catch {
    return undefined;
  }
}

async function readJson(file: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidModelArchiveError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Follows links and refuses a real path that leaves `root`. */
async function realInside(root: string, target: string, what: string): Promise<string> {
  const [realRoot, realTarget] = await Promise.all([fsp.realpath(root), fsp.realpath(target)]);
  resolveInside(realRoot, realTarget, what);
  return realTarget;
}

/** A path in the store, links followed: it must stay in the store or lead into one of `linkRoots`. */
async function realInsideStore(opts: ModelSourceOptions, target: string): Promise<string> {
  try {
    return await realInside(opts.modelStore, target, 'model url');
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    const real = await fsp.realpath(target);
    for (const root of opts.linkRoots ?? []) {
      const realRoot = await fsp.realpath(root).catch(() => undefined);
      if (realRoot !== undefined && (real === realRoot || real.startsWith(realRoot + path.sep))) return real;
    }
    throw err;
  }
}

async function fileInPackage(dir: string, relative: string, what: string): Promise<string> {
  const candidate = resolveInside(dir, relative, what);
  const stat = await statOrUndefined(candidate);
  if (!stat?.isFile()) throw new InvalidModelArchiveError(`${what} ${JSON.stringify(relative)} is missing from the model package`);
  return realInside(dir, candidate, what);
}

/** An archive often wraps everything in one top folder; look inside it when the root holds no model. */
async function packageRoot(dir: string): Promise<string> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  const looksLikeModel = entries.some((e) => e.name === 'MAR-INF' || e.name === 'model-config.json' || e.name.endsWith('.onnx'));
  const folders = entries.filter((e) => e.isDirectory());
  // A lone numeric folder is a Triton version folder (<name>/1/model.onnx), not a wrapper.
  if (!looksLikeModel && folders.length === 1 && entries.length === 1 && !/^\d+$/.test(folders[0].name)) return path.join(dir, folders[0].name);
  return dir;
}

/**
 * Where the model file is when nothing names it: model.onnx; else the one .onnx file in the folder
 * (ModelMesh's puller keeps the file's own name); else Triton's layout, `<version>/model.onnx`, the
 * highest version.
 */
export async function defaultModelFile(root: string): Promise<{ file: string; version?: string }> {
  if (await statOrUndefined(path.join(root, 'model.onnx'))) return { file: 'model.onnx' };
  const entries = await fsp.readdir(root, { withFileTypes: true });
  const onnx = entries.filter((e) => e.isFile() && e.name.endsWith('.onnx'));
  if (onnx.length === 1) return { file: onnx[0].name };
  const versions = entries.filter((e) => e.isDirectory() && /^\d+$/.test(e.name)).map((e) => Number(e.name)).sort((a, b) => b - a);
  for (const v of versions) {
    if (await statOrUndefined(path.join(root, String(v), 'model.onnx'))) return { file: `${v}/model.onnx`, version: String(v) };
  }
  return { file: 'model.onnx' };
}

export async function readModelPackage(dir: string, url: string, defaultName: string, givenModelFile?: string): Promise<ModelPackage> {
  const root = await packageRoot(dir);
  const manifestPath = path.join(root, 'MAR-INF', 'MANIFEST.json');
  let manifest: MarManifest | undefined;
  if (await statOrUndefined(manifestPath)) {
    const parsed = manifestSchema.safeParse(await readJson(manifestPath, 'MAR-INF/MANIFEST.json'));
    if (!parsed.success) throw new InvalidModelArchiveError(`MAR-INF/MANIFEST.json is not a valid manifest: ${formatIssues(parsed.error)}`);
    manifest = parsed.data;
  }
  const configPath = path.join(root, 'model-config.json');
  const rawConfig = (await statOrUndefined(configPath)) ? await readJson(configPath, 'model-config.json') : {};
  const config = parseModelConfig(rawConfig, 'model-config.json');
  const found = manifest || (rawConfig as { modelFile?: unknown } | null)?.modelFile !== undefined || givenModelFile ? undefined : await defaultModelFile(root);
  const modelFile = givenModelFile ?? manifest?.model.serializedFile ?? found?.file ?? config.modelFile;
  // A file given by its path was named .onnx or read as ONNX already (isBareOnnx).
  if (givenModelFile === undefined && !modelFile.endsWith('.onnx')) throw new InvalidModelArchiveError(`model file ${JSON.stringify(modelFile)} is not an .onnx file`);
  const modelPath = await fileInPackage(root, modelFile, 'model file');

  const handler = config.handler ?? manifest?.model.handler;
  let handlerPath: string | undefined;
  if (handler !== undefined) {
    if (!/\.c?js$/.test(handler)) {
      throw new InvalidModelArchiveError(`handler ${JSON.stringify(handler)} is not a JavaScript module (.js) in the model package`);
    }
    handlerPath = await fileInPackage(root, handler, 'handler');
  }

  let labels: string[] | undefined;
  if (config.postprocess.type === 'topk') {
    labels = config.postprocess.labels;
    if (config.postprocess.labelsFile) {
      const text = await fsp.readFile(await fileInPackage(root, config.postprocess.labelsFile, 'labels file'), 'utf8');
      labels = text.split(/\r?\n/).filter((l) => l.length > 0);
    }
  }

  return {
    name: manifest?.model.modelName ?? defaultName,
    version: manifest?.model.modelVersion ?? found?.version ?? '1.0',
    url,
    dir: root,
    modelPath,
    modelBytes: (await fsp.stat(modelPath)).size,
    config,
    labels,
    handlerPath,
  };
}

/**
 * The folder `file` is unpacked into, with one use of it taken (see releasePackage). Registrations of
 * one archive share the folder; the unpack runs in the folder's turn, so it never meets a removal.
 */
async function unpackOnce(file: string, opts: ModelSourceOptions, size: number, mtimeMs: number): Promise<string> {
  // Keyed by path, size and mtime so a replaced archive is unpacked again.
  const key = createHash('sha256').update(`${file}\0${size}\0${mtimeMs}`).digest('hex').slice(0, 16);
  const dest = path.join(unpackedRoot(opts.workDir), `${path.basename(file).replace(ARCHIVE_SUFFIX, '')}-${key}`);
  await useUnpacked(dest, async () => {
    if (await statOrUndefined(dest)) return;
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await extractArchive(file, dest, { maxBytes: opts.maxArchiveBytes, maxRatio: opts.maxArchiveRatio });
  });
  return dest;
}

/**
 * Gives back what an open package holds: its download-cache pin and its use of an unpacked folder.
 * Resolves once a folder no package uses any more is removed; it never rejects.
 */
export async function releasePackage(pkg: PackageHolds, opts: ModelSourceOptions): Promise<void> {
  if (pkg.cacheKey !== undefined) opts.remote?.release(pkg.cacheKey);
  if (pkg.unpackedDir !== undefined) await releaseUnpacked(pkg.unpackedDir);
}

/** Reads the package in `dir`, which `holds` keep on disk; they are given back when it cannot be read. */
async function readHeldPackage(dir: string, url: string, defaultName: string, holds: PackageHolds, opts: ModelSourceOptions): Promise<ModelPackage> {
  try {
    return { ...(await readModelPackage(dir, url, defaultName)), ...holds };
  } catch (err) {
    await releasePackage(holds, opts);
    throw err;
  }
}

/**
 * Resolves `url` (relative to the model store, or absolute inside it, or a remote URL that allowed_urls
 * lists) into a ModelPackage. Its handler, if any, is never loaded here: only once the whole package
 * has been checked, and not at all when handlers are off.
 */
export async function openModelPackage(url: string, opts: ModelSourceOptions): Promise<ModelPackage> {
  const pkg = await openPackage(url, opts);
  if (pkg.handlerPath !== undefined && opts.allowHandlers === false) {
    await releasePackage(pkg, opts);
    throw new HandlersRefusedError(
      `model ${JSON.stringify(pkg.name)} has a JavaScript handler (${path.basename(pkg.handlerPath)}) and this server runs none (allow_handlers=false): use a model config instead`,
    );
  }
  return pkg;
}

async function openPackage(url: string, opts: ModelSourceOptions): Promise<ModelPackage> {
  if (typeof url !== 'string' || url.length === 0) throw new BadRequestError('a model url is required');
  if (isRemoteUrl(url) && opts.remote) {
    const folder = await opts.remote.open(url);
    return readHeldPackage(folder.dir, url, folder.defaultName, { cacheKey: folder.cacheKey }, opts);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new BadRequestError(`model url ${JSON.stringify(url)}: only s3://, http(s):// URLs and paths inside the model store are supported`);
  }
  if (url.includes('\0')) throw new UnsafePathError('model url contains a NUL byte');
  const target = resolveInside(opts.modelStore, url, 'model url');
  const stat = await statOrUndefined(target);
  if (!stat) throw new ArtifactNotFoundError(`model artifact ${JSON.stringify(url)} was not found in the model store`);
  const real = await realInsideStore(opts, target);
  const defaultName = path.basename(real).replace(ARCHIVE_SUFFIX, '');
  if (stat.isDirectory()) return readModelPackage(real, url, defaultName);
  if (!stat.isFile()) throw new InvalidModelArchiveError(`model url ${JSON.stringify(url)} is neither a folder nor an archive`);
  // A bare model file (ModelMesh's modelPath may name one): its folder is the package.
  if (real.endsWith('.onnx') || (!ARCHIVE_SUFFIX.test(real) && await isBareOnnx(real))) {
    return readModelPackage(path.dirname(real), url, path.basename(real, '.onnx'), path.basename(real));
  }
  const dir = await unpackOnce(real, opts, stat.size, stat.mtimeMs);
  return readHeldPackage(dir, url, defaultName, { unpackedDir: dir }, opts);
}

/**
 * An ONNX file whatever its name (ModelMesh's puller keeps the remote file's name: `mnist`, say): a
 * ModelProto opens with ir_version, field 1 as a varint (0x08); gzip, zip and tar open otherwise.
 */
async function isBareOnnx(file: string): Promise<boolean> {
  // Non-blocking, and checked on the handle: a FIFO put there after the stat must not hang the open.
  const handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) return false;
    const head = Buffer.alloc(262);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < 2 || (head[0] === 0x1f && head[1] === 0x8b) || (head[0] === 0x50 && head[1] === 0x4b)) return false;
    if (bytesRead === head.length && head.toString('latin1', 257, 262) === 'ustar') return false;
    return head[0] === 0x08;
  } finally {
    await handle.close();
  }
}

const STORE_SUFFIXES = ['', '.tar.gz', '.tgz', '.tar', '.mar', '.zip'];

/** A model named as Triton's repository names them: its folder, or its archive, in the model store. */
export async function storeUrlFor(modelStore: string, name: string): Promise<string> {
  for (const suffix of STORE_SUFFIXES) {
    const candidate = name + suffix;
    if (await statOrUndefined(resolveInside(modelStore, candidate, 'model name'))) return candidate;
  }
  return name;
}

/**
 * The model file a local model URL names, found by stats alone (no unpack, no download): a .onnx file,
 * or a folder's model file as readModelPackage would pick it when no manifest or config names another.
 * Undefined for archives, remote URLs and folders whose config names the file.
 */
export async function localModelFile(url: string, modelStore: string): Promise<string | undefined> {
  if (isRemoteUrl(url) || /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || url.includes('\0')) return undefined;
  const target = resolveInside(modelStore, url, 'model url');
  const stat = await statOrUndefined(target);
  if (stat?.isFile()) return target.endsWith('.onnx') || (!ARCHIVE_SUFFIX.test(target) && await isBareOnnx(target)) ? target : undefined;
  if (!stat?.isDirectory()) return undefined;
  const root = await packageRoot(target);
  if (await statOrUndefined(path.join(root, 'MAR-INF')) || await statOrUndefined(path.join(root, 'model-config.json'))) return undefined;
  const found = path.join(root, (await defaultModelFile(root)).file);
  return (await statOrUndefined(found))?.isFile() ? fsp.realpath(found) : undefined;
}
