// Turns a remote model URL (s3://, http://, https://) into a model folder on local disk through the
// download cache: an archive (.tar.gz, .mar, ...) is unpacked, a bare .onnx gets a folder, an S3 prefix
// is copied object by object. Only URLs that allowed_urls lists are fetched.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { BadRequestError, InvalidModelArchiveError, UrlNotAllowedError } from '../errors';
import { ExtractLimits, extractArchive } from './archive';
import { DownloadCache } from './download-cache';
import { resolveInside } from './model-name';
import { isHttpUrl } from './http-store';
import { ArtifactStore, RemoteArtifact, RemoteObject, redactedUrl } from './remote-artifact';
import { isS3Url } from './s3-store';

export interface RemoteFolder {
  dir: string;
  /** Pass to `release` when the model that uses the folder goes. */
  cacheKey: string;
  defaultName: string;
}

const ARCHIVE_SUFFIX = /(\.tar\.gz|\.tgz|\.tar|\.mar|\.zip)$/i;
const PARALLEL_OBJECTS = 4;

function versionOf(url: string, artifact: RemoteArtifact): string {
  const hash = createHash('sha256').update(url);
  const objects = artifact.kind === 'object' ? [artifact.object] : artifact.objects;
  for (const o of objects) hash.update(`\0${o.key}\0${o.bytes}\0${o.etag}`);
  // Without a validator a changed artifact would look the same: such a download is never reused.
  if (objects.some((o) => o.etag === '')) hash.update(randomBytes(16));
  return hash.digest('hex').slice(0, 32);
}

function lastSegment(key: string): string {
  const parts = key.split('/').filter((p) => p.length > 0);
  return parts[parts.length - 1] ?? 'model';
}

/** True when `url` is one of the remote kinds this source fetches. */
export function isRemoteUrl(url: string): boolean {
  return isS3Url(url) || isHttpUrl(url);
}

/**
 * TorchServe's allowed_urls: regular expressions a remote model URL must match whole. Empty: no remote
 * URL is fetched (paths inside the model store are always allowed).
 */
export class AllowedUrls {
  private readonly patterns: RegExp[];

  constructor(readonly sources: readonly string[]) {
    this.patterns = sources.map((p) => new RegExp(`^(?:${p})$`, 'i'));
  }

  /** Matched against the URL as it will be fetched (parsed and normalized), not as written. */
  check(url: string): void {
    let href: string;
    try {
      href = new URL(url).href;
    } catch {
      throw new BadRequestError(`model url ${JSON.stringify(redactedUrl(url))} is not a valid URL`);
    }
    if (this.patterns.some((p) => p.test(href))) return;
    // TorchServe's words, then what to do about it.
    throw new UrlNotAllowedError(
      `Given URL ${redactedUrl(url)} does not match any allowed URL(s): ` +
        (this.patterns.length === 0 ? 'allowed_urls lists no remote sources; add a pattern for it' : `allowed_urls is ${this.sources.join(',')}`),
    );
  }
}

export interface RemoteStores {
  s3: ArtifactStore;
  http: ArtifactStore;
}

export class RemoteArtifactSource {
  constructor(
    private readonly stores: RemoteStores,
    readonly cache: DownloadCache,
    private readonly limits: ExtractLimits,
    private readonly allowed: AllowedUrls,
  ) {}

  private storeFor(url: string): ArtifactStore {
    return isS3Url(url) ? this.stores.s3 : this.stores.http;
  }

  async open(url: string): Promise<RemoteFolder> {
    if (!isRemoteUrl(url)) throw new BadRequestError(`model url ${JSON.stringify(url)} is not an s3:// or http(s):// URL`);
    this.allowed.check(url);
    const store = this.storeFor(url);
    const artifact = await store.describe(url);
    const objects = artifact.kind === 'object' ? [artifact.object] : artifact.objects;
    const bytes = objects.reduce((sum, o) => sum + o.bytes, 0);
    if (bytes > this.limits.maxBytes) {
      throw new InvalidModelArchiveError(`${redactedUrl(url)} is ${bytes} bytes, over max_archive_bytes (${this.limits.maxBytes})`);
    }
    const cacheKey = versionOf(url, artifact);
    const dir = await this.cache.acquire(cacheKey, bytes, url, (into) =>
      artifact.kind === 'object' ? this.fetchObject(store, url, artifact.object, into) : this.fetchPrefix(store, url, artifact.prefix, artifact.objects, into),
    );
    const name = artifact.kind === 'object' ? lastSegment(artifact.object.key) : lastSegment(artifact.prefix);
    return { dir, cacheKey, defaultName: name.replace(ARCHIVE_SUFFIX, '').replace(/\.onnx$/i, '') };
  }

  release(cacheKey: string): void {
    this.cache.release(cacheKey);
  }

  private async fetchObject(store: ArtifactStore, url: string, object: RemoteObject, into: string): Promise<void> {
    const file = lastSegment(object.key);
    if (/\.onnx$/i.test(file)) {
      await fsp.mkdir(into, { recursive: true });
      // Where a folder without a config has its model, whatever the object was called.
      await store.download(url, object, path.join(into, 'model.onnx'));
      return;
    }
    const archive = `${into}-archive`;
    try {
      await store.download(url, object, archive);
      await extractArchive(archive, into, this.limits);
    } finally {
      await fsp.rm(archive, { force: true });
    }
  }

  private async fetchPrefix(
    store: ArtifactStore,
    url: string,
    prefix: string,
    objects: readonly RemoteObject[],
    into: string,
  ): Promise<void> {
    await fsp.mkdir(into, { recursive: true });
    const targets = objects.map((o) => {
      const relative = o.key.slice(prefix.length);
      if (relative.split('/').some((p) => p === '..' || p === '.') || relative.startsWith('/')) {
        throw new BadRequestError(`${url} holds an object whose key leaves the prefix: ${JSON.stringify(o.key)}`);
      }
      return { object: o, file: resolveInside(into, relative, 'S3 object key') };
    });
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < targets.length && failure === undefined) {
        const { object, file } = targets[next++];
        try {
          await fsp.mkdir(path.dirname(file), { recursive: true });
          await store.download(url, object, file);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    // Every download stops before the failure is reported, so nothing writes into a folder being removed.
    await Promise.all(Array.from({ length: Math.min(PARALLEL_OBJECTS, targets.length) }, worker));
    if (failure !== undefined) throw failure;
  }
}
