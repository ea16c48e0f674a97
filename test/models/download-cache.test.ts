import * as fs from 'node:fs';
import * as path from 'node:path';
import fsp = require('node:fs/promises');
import { chooseCacheEvictions, CacheEntryState, DownloadCache } from '../../src/models/download-cache';
import { DownloadCacheFullError, ArtifactDownloadFailedError, ArtifactNotFoundError, ArtifactAccessDeniedError, BadRequestError } from '../../src/errors';
import { parseS3Url, s3Failure } from '../../src/models/s3-store';
import { tempDir } from '../fixtures/server';

const entry = (key: string, bytes: number, lastUsedMs: number, pins = 0): CacheEntryState => ({ key, bytes, lastUsedMs, pins });

describe('chooseCacheEvictions (pure)', () => {
  test('nothing goes while the new artifact fits', () => {
    expect(chooseCacheEvictions([entry('a', 40, 1)], 60, 0, 100)).toEqual([]);
  });

  test('idle entries go least recently used first, only as many as needed', () => {
    const entries = [entry('new', 30, 30), entry('old', 30, 10), entry('mid', 30, 20)];
    expect(chooseCacheEvictions(entries, 40, 0, 100)).toEqual(['old']);
    expect(chooseCacheEvictions(entries, 70, 0, 100)).toEqual(['old', 'mid']);
  });

  test('pinned entries and downloads in progress are never chosen, and count against the budget', () => {
    const entries = [entry('pinned', 50, 1, 1), entry('idle', 30, 2)];
    expect(chooseCacheEvictions(entries, 20, 30, 100)).toEqual(['idle']);
    expect(chooseCacheEvictions(entries, 40, 30, 100)).toBeUndefined();
  });
});

function writeFiles(bytes: number) {
  return async (dir: string) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.onnx'), Buffer.alloc(bytes, 1));
  };
}

describe('DownloadCache', () => {
  let root: string;
  beforeEach(() => {
    root = tempDir('cache');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('fills once, then serves the entry from disk; concurrent callers share one fill', async () => {
    const cache = new DownloadCache(root, 10_000);
    let fills = 0;
    const fill = async (dir: string) => {
      fills += 1;
      await new Promise((r) => setTimeout(r, 20));
      await writeFiles(100)(dir);
    };
    const dirs = await Promise.all([cache.acquire('k', 100, 'a', fill), cache.acquire('k', 100, 'a', fill)]);
    expect(fills).toBe(1);
    expect(dirs[0]).toBe(dirs[1]);
    expect(fs.readFileSync(path.join(dirs[0], 'model.onnx')).length).toBe(100);
    expect(await cache.acquire('k', 100, 'a', fill)).toBe(dirs[0]);
    expect(fills).toBe(1);
  });

  test('a failed fill leaves nothing: no entry, no temporary folder, and the next call fills again', async () => {
    const cache = new DownloadCache(root, 10_000);
    const failing = async (dir: string) => {
      await writeFiles(50)(dir);
      throw new ArtifactDownloadFailedError('connection lost');
    };
    await expect(cache.acquire('k', 100, 'a', failing)).rejects.toBeInstanceOf(ArtifactDownloadFailedError);
    expect(fs.readdirSync(root)).toEqual([]);
    expect(cache.status().usedBytes).toBe(0);
    const dir = await cache.acquire('k', 100, 'a', writeFiles(100));
    expect(fs.existsSync(path.join(dir, 'model.onnx'))).toBe(true);
  });

  test('idle entries are removed least recently used first; pinned ones stay; a cache full of pinned entries refuses', async () => {
    const cache = new DownloadCache(root, 2_500);
    const a = await cache.acquire('a', 1000, 'a', writeFiles(1000));
    const b = await cache.acquire('b', 1000, 'b', writeFiles(1000));
    cache.release('a');
    await cache.acquire('c', 1000, 'c', writeFiles(1000));
    expect(fs.existsSync(path.dirname(a))).toBe(false);
    expect(fs.existsSync(b)).toBe(true);
    expect(cache.has('a')).toBe(false);
    await expect(cache.acquire('d', 1000, 'd', writeFiles(1000))).rejects.toBeInstanceOf(DownloadCacheFullError);
    expect(cache.status().entries).toBe(2);
  });

  /** Runs `during` when the cache first deletes the folder `dir`, before the deletion itself. */
  function onRemoval(dir: string, during: () => Promise<unknown>): jest.SpyInstance {
    const rm = fsp.rm;
    let seen = false;
    return jest.spyOn(fsp, 'rm').mockImplementation(async (target, options) => {
      if (target === dir && !seen) {
        seen = true;
        await during();
      }
      return rm(target, options);
    });
  }

  test('an entry pinned while an earlier one is being removed is kept, and the newcomer is refused', async () => {
    const cache = new DownloadCache(root, 2_500);
    const a = await cache.acquire('a', 1000, 'a', writeFiles(1000));
    const b = await cache.acquire('b', 1000, 'b', writeFiles(1000));
    cache.release('a');
    cache.release('b');
    // c needs both idle entries gone; b is registered again while a's folder is deleted.
    const spy = onRemoval(path.dirname(a), () => cache.acquire('b', 1000, 'b', writeFiles(1000)));
    try {
      await expect(cache.acquire('c', 2000, 'c', writeFiles(2000))).rejects.toBeInstanceOf(DownloadCacheFullError);
    } finally {
      spy.mockRestore();
    }
    expect(cache.has('b')).toBe(true);
    expect(fs.readFileSync(path.join(b, 'model.onnx')).length).toBe(1000);
  });

  test('an entry acquired while its folder is being deleted is filled again, after the deletion', async () => {
    const cache = new DownloadCache(root, 2_000);
    const a = await cache.acquire('a', 1500, 'a', writeFiles(1500));
    cache.release('a');
    let again: Promise<string> | undefined;
    const spy = onRemoval(path.dirname(a), async () => {
      again = cache.acquire('a', 100, 'a', writeFiles(100));
      // Long enough for a refill that does not wait to finish before the deletion below.
      await Promise.race([again, new Promise((r) => setTimeout(r, 200))]);
    });
    try {
      await cache.acquire('c', 1000, 'c', writeFiles(1000));
      const dir = await again!;
      expect(fs.readFileSync(path.join(dir, 'model.onnx')).length).toBe(100);
      expect(cache.has('a')).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  test('a restart keeps complete entries and drops partial ones', async () => {
    const first = new DownloadCache(root, 10_000);
    const kept = await first.acquire('kept', 100, 'kept', writeFiles(100));
    fs.mkdirSync(path.join(root, 'tmp-interrupted'));
    fs.mkdirSync(path.join(root, 'entry-nometa'));
    const second = new DownloadCache(root, 10_000);
    await second.open();
    expect(fs.readdirSync(root).sort()).toEqual([path.basename(path.dirname(kept))]);
    expect(second.has('kept')).toBe(true);
    expect(second.status().usedBytes).toBeGreaterThanOrEqual(100);
    let filled = false;
    expect(await second.acquire('kept', 100, 'kept', async () => { filled = true; })).toBe(kept);
    expect(filled).toBe(false);
  });
});

describe('s3:// URLs and S3 failures', () => {
  test('bucket and key are parsed; bad buckets are refused', () => {
    expect(parseS3Url('s3://models/det/v1.tar.gz')).toEqual({ bucket: 'models', key: 'det/v1.tar.gz' });
    expect(parseS3Url('s3://models')).toEqual({ bucket: 'models', key: '' });
    expect(() => parseS3Url('s3://Bad_Bucket/x')).toThrow(BadRequestError);
    expect(() => parseS3Url('s3:///x')).toThrow(BadRequestError);
  });

  test('SDK errors map to typed errors', () => {
    const sdkError = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    expect(s3Failure(sdkError('NoSuchKey', 404), 's3://b/k')).toBeInstanceOf(ArtifactNotFoundError);
    expect(s3Failure(sdkError('NoSuchBucket', 404), 's3://b/k')).toBeInstanceOf(ArtifactNotFoundError);
    expect(s3Failure(sdkError('AccessDenied', 403), 's3://b/k')).toBeInstanceOf(ArtifactAccessDeniedError);
    expect(s3Failure(sdkError('CredentialsProviderError'), 's3://b/k')).toBeInstanceOf(ArtifactAccessDeniedError);
    expect(s3Failure(new Error('connect ECONNREFUSED 127.0.0.1:9'), 's3://b/k')).toBeInstanceOf(ArtifactDownloadFailedError);
  });
});
