// Unpacks model archives (.tar.gz, and .mar/.zip as MMS writes them) without trusting them:
// every entry is checked as it arrives, limits hold while inflating, and a failed unpack leaves nothing
// behind (it is unpacked into a temporary folder that is renamed into place only when whole).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as tar from 'tar';
import * as yauzl from 'yauzl';
import { InternalError, InvalidModelArchiveError, QuiverError } from '../errors';

export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

export interface ExtractLimits {
  maxBytes: number;
  maxEntries?: number;
  /** Unpacked bytes per archive byte, past 16 MiB (default 200; model weights compress about 1.1×). */
  maxRatio?: number;
}

export async function detectArchiveFormat(file: string): Promise<ArchiveFormat | undefined> {
  const handle = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Rejects names that would land outside the destination. */
function checkEntryName(name: string, archive: string): string {
  const normalized = name.replace(/\\/g, '/');
  const parts = normalized.split('/').filter((p) => p.length > 0 && p !== '.');
  if (normalized.startsWith('/') || /^[A-Za-z]:/.test(normalized) || normalized.includes('\0') || parts.includes('..')) {
    throw new InvalidModelArchiveError(`archive ${archive} holds an entry outside its root: ${JSON.stringify(name)}`);
  }
  return parts.join('/');
}

interface EntryBudget {
  bytes: number;
  entries: number;
}

function charge(budget: EntryBudget, size: number, limits: ExtractLimits, archive: string): void {
  budget.bytes += size;
  budget.entries += 1;
  if (budget.bytes > limits.maxBytes) {
    throw new InvalidModelArchiveError(`archive ${archive} unpacks to more than ${limits.maxBytes} bytes`);
  }
  if (budget.entries > (limits.maxEntries ?? 100_000)) {
    throw new InvalidModelArchiveError(`archive ${archive} holds more than ${limits.maxEntries ?? 100_000} entries`);
  }
}

const TAR_ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory']);

/**
 * Bytes an archive may inflate to: its unpacked limit (plus tar's headers and padding), and no more than
 * `maxRatio` times its own size, so that a small bomb is stopped after a few megabytes, not gigabytes.
 */
function inflateLimit(archiveBytes: number, limits: ExtractLimits): number {
  const framing = 1024 * ((limits.maxEntries ?? 100_000) + 2);
  const byRatio = Math.max((limits.maxRatio ?? 200) * archiveBytes, RATIO_FLOOR_BYTES);
  return Math.min(limits.maxBytes + framing, byRatio);
}

const RATIO_FLOOR_BYTES = 16 * 1024 * 1024;

/**
 * Streams a tar(.gz) into `sink` (a checking parser, or the unpacker): zlib inflates on libuv's threads,
 * every entry is checked (name, type, size, count) as its header arrives, and the first byte past a limit
 * stops it all. Nothing is read whole into memory and the event loop is never held for long.
 */
// Bytes a tar may carry after its end marker (tar pads to 10 KiB records); node-tar copies each chunk
// past it onto the last, so a long tail costs quadratic time.
const MAX_TAIL_BYTES = 20 * 1024;
const NESTED_COMPRESSION = [[0x1f, 0x8b], [0x28, 0xb5, 0x2f, 0xfd]];

type TarSink = NodeJS.WritableStream & { on(event: 'eof', listener: () => void): unknown };

async function streamTar(handle: fsp.FileHandle, limits: ExtractLimits, name: string, gzipped: boolean, sink: (check: (entry: tar.ReadEntry) => boolean) => TarSink): Promise<void> {
  const archiveBytes = (await handle.stat()).size;
  const maxInflated = inflateLimit(archiveBytes, limits);
  const budget: EntryBudget = { bytes: 0, entries: 0 };
  // Both passes read the one open file, so the archive unpacked is the one checked.
  const source = handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 256 * 1024 });
  let problem: Error | undefined;
  let inflated = 0;
  let endAt: number | undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      // node-tar would inflate a compressed stream inside the stream itself, on the event loop.
      if (inflated === 0 && NESTED_COMPRESSION.some((magic) => magic.every((b, i) => chunk[i] === b))) {
        return done(new InvalidModelArchiveError(`archive ${name} holds a compressed stream inside its compression; not a tar`));
      }
      inflated += chunk.length;
      if (endAt !== undefined && inflated - endAt > MAX_TAIL_BYTES) {
        return done(new InvalidModelArchiveError(`archive ${name} carries more than ${MAX_TAIL_BYTES} bytes after the end of its tar`));
      }
      if (inflated <= maxInflated) return done(null, chunk);
      done(new InvalidModelArchiveError(
        maxInflated < limits.maxBytes
          ? `archive ${name} inflates to more than ${maxInflated} bytes, over ${limits.maxRatio ?? 200} times its size (a compression bomb?)`
          : `archive ${name} unpacks to more than ${limits.maxBytes} bytes`,
      ));
    },
  });
  const check = (entry: tar.ReadEntry): boolean => {
    if (problem) return false;
    try {
      checkEntryName(entry.path, name);
      if (!TAR_ALLOWED_TYPES.has(entry.type)) {
        throw new InvalidModelArchiveError(`archive ${name} holds a ${entry.type} entry (${JSON.stringify(entry.path)}); only files and folders are allowed`);
      }
      charge(budget, entry.size ?? 0, limits, name);
      // No set-id, sticky or world-writable bits from an archive: plain modes only.
      entry.mode = entry.type === 'Directory' || ((entry.mode ?? 0) & 0o111) !== 0 ? 0o755 : 0o644;
      return true;
    } catch (err) {
      problem = err as Error;
      source.destroy(problem);
      return false;
    }
  };
  const target = sink(check);
  target.on('eof', () => (endAt ??= inflated));
  try {
    if (gzipped) await pipeline(source, zlib.createGunzip(), counter, target);
    else await pipeline(source, counter, target);
  } catch (err) {
    throw problem ?? err;
  }
  if (problem) throw problem;
}

// No sniffing for zstd or brotli inside: the stream handed over is the tar itself.
const TAR_STREAM = { strict: true, zstd: false, brotli: false } as const;

/** Checked whole first, writing nothing, then unpacked: a refused archive costs no disk and no file creations. */
async function extractTar(file: string, dest: string, limits: ExtractLimits, name: string, gzipped: boolean): Promise<void> {
  const handle = await fsp.open(file, 'r');
  try {
    await streamTar(handle, limits, name, gzipped, (check) => {
      const parser = new tar.Parser(TAR_STREAM);
      parser.on('entry', (entry: tar.ReadEntry) => {
        check(entry);
        entry.resume();
      });
      return parser;
    });
    await streamTar(handle, limits, name, gzipped, (check) =>
      new tar.Unpack({ ...TAR_STREAM, cwd: dest, preservePaths: false, preserveOwner: false, filter: (_path, entry) => 'type' in entry && check(entry) }),
    );
  } finally {
    await handle.close();
  }
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    );
  });
}

function readZipEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', reject);
    zip.readEntry();
  });
}

function openZipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

async function extractZip(file: string, dest: string, limits: ExtractLimits, name: string): Promise<void> {
  const zip = await openZip(file);
  try {
    // The central directory says how many entries there are: refuse before reading any.
    if (zip.entryCount > (limits.maxEntries ?? 100_000)) {
      throw new InvalidModelArchiveError(`archive ${name} holds more than ${limits.maxEntries ?? 100_000} entries`);
    }
    const entries = await readZipEntries(zip);
    const budget: EntryBudget = { bytes: 0, entries: 0 };
    const planned = entries.map((entry) => {
      const relative = checkEntryName(entry.fileName, name);
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const isDir = entry.fileName.endsWith('/');
      if (mode !== 0 && mode !== S_IFREG && mode !== S_IFDIR) {
        throw new InvalidModelArchiveError(`archive ${name} holds a link or special file (${JSON.stringify(entry.fileName)}); only files and folders are allowed`);
      }
      charge(budget, entry.uncompressedSize, limits, name);
      return { entry, relative, isDir };
    });
    const maxInflated = inflateLimit((await fsp.stat(file)).size, limits);
    if (budget.bytes > maxInflated) {
      throw new InvalidModelArchiveError(`archive ${name} inflates to ${budget.bytes} bytes, over ${limits.maxRatio ?? 200} times its size (a compression bomb?)`);
    }
    for (const { entry, relative, isDir } of planned) {
      const target = path.join(dest, relative);
      if (isDir || relative === '') {
        await fsp.mkdir(target, { recursive: true });
        continue;
      }
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await pipeline(await openZipEntry(zip, entry), fs.createWriteStream(target, { flags: 'wx' }));
    }
  } finally {
    zip.close();
  }
}

/**
 * Unpacks `file` into `dest` (which must not exist yet). The archive is checked entry by entry first;
 * on any failure the partial output is removed and an InvalidModelArchiveError names the problem.
 */
export async function extractArchive(file: string, dest: string, limits: ExtractLimits): Promise<void> {
  const name = path.basename(file);
  const format = await detectArchiveFormat(file);
  if (!format) throw new InvalidModelArchiveError(`${name} is not a .tar.gz, .tar, .mar or .zip archive`);
  const partial = `${dest}.partial-${randomBytes(6).toString('hex')}`;
  await fsp.mkdir(partial, { recursive: true });
  try {
    if (format === 'zip') await extractZip(file, partial, limits, name);
    else await extractTar(file, partial, limits, name, format === 'tar.gz');
    await fsp.rename(partial, dest);
  } catch (err) {
    await fsp.rm(partial, { recursive: true, force: true });
    if (err instanceof QuiverError) throw err;
    // A system call that failed (disk full, permissions) is the server's trouble; anything else is the archive's.
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw new InternalError(`${name} could not be unpacked: ${(err as Error).message}`);
    throw new InvalidModelArchiveError(`${name} could not be unpacked: ${(err as Error).message}`);
  }
}
