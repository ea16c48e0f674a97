// Reads model artifacts over http(s), as MMS and TorchServe register them from a URL. Redirects are
// followed by hand so that every hop is checked against allowed_urls; a body must arrive whole.
import * as fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  ArtifactDownloadFailedError, ArtifactRefusedError, BadRequestError, InvalidModelArchiveError, QuiverError,
} from '../errors';
import type { ArtifactStore, RemoteArtifact, RemoteObject } from './remote-artifact';

export interface HttpStoreOptions {
  /** Throws when a URL (each redirect hop included) is not one the server may fetch. */
  checkAllowed: (url: string) => void;
  maxBytes: number;
  /** A server that sends nothing for this long fails the request. */
  idleTimeoutMs: number;
}

const MAX_REDIRECTS = 5;

export function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** A refusal (4xx) is the URL's fault, as MMS and TorchServe see it (400); a failing server is a 502. */
function failure(url: string, status: number): QuiverError {
  if (status >= 400 && status < 500) return new ArtifactRefusedError(`failed to download model archive from ${url}: the server answered HTTP ${status}`);
  return new ArtifactDownloadFailedError(`failed to download model archive from ${url}: the server answered HTTP ${status}`);
}

export class HttpArtifactStore implements ArtifactStore {
  constructor(private readonly options: HttpStoreOptions) {}

  /** GET (or HEAD) `url`, following redirects that are themselves allowed; returns the final answer. */
  private async request(url: string, method: 'GET' | 'HEAD', signal: AbortSignal): Promise<{ response: Response; finalUrl: string }> {
    let current = url;
    for (let hop = 0; ; hop++) {
      this.options.checkAllowed(current);
      let response: Response;
      try {
        response = await fetch(current, { method, redirect: 'manual', signal, headers: { 'accept-encoding': 'identity' } });
      } catch (err) {
        throw new ArtifactDownloadFailedError(`${current} could not be reached: ${(err as Error).cause ? String((err as Error).cause) : (err as Error).message}`);
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS) throw new ArtifactDownloadFailedError(`${url} redirects more than ${MAX_REDIRECTS} times`);
        current = new URL(location, current).toString();
        if (!isHttpUrl(current)) throw new BadRequestError(`${url} redirects to ${current}, which is not an http(s) URL`);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw failure(current, response.status);
      }
      return { response, finalUrl: current };
    }
  }

  async describe(url: string): Promise<RemoteArtifact> {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) throw new BadRequestError('model URLs must not carry credentials');
    const { response, finalUrl } = await this.request(url, 'GET', AbortSignal.timeout(this.options.idleTimeoutMs));
    // Only the validators are needed here; the body is fetched by download().
    await response.body?.cancel();
    const length = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(length) && length > this.options.maxBytes) {
      throw new InvalidModelArchiveError(`${url} is ${length} bytes, over max_archive_bytes (${this.options.maxBytes})`);
    }
    const validator = response.headers.get('etag') ?? response.headers.get('last-modified') ?? '';
    const object: RemoteObject = { key: decodeURIComponent(new URL(finalUrl).pathname), bytes: Number.isFinite(length) ? length : 0, etag: validator };
    return { kind: 'object', object };
  }

  async download(url: string, object: RemoteObject, file: string): Promise<void> {
    const controller = new AbortController();
    let idle = setTimeout(() => controller.abort(), this.options.idleTimeoutMs);
    let received = 0;
    try {
      const { response } = await this.request(url, 'GET', controller.signal);
      const validator = response.headers.get('etag') ?? response.headers.get('last-modified') ?? '';
      if (object.etag && validator !== object.etag) throw new ArtifactDownloadFailedError(`${url} changed while it was being downloaded; try again`);
      const { maxBytes, idleTimeoutMs: idleMs } = this.options;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          clearTimeout(idle);
          idle = setTimeout(() => controller.abort(), idleMs);
          if (received > maxBytes) done(new InvalidModelArchiveError(`${url} is more than max_archive_bytes (${maxBytes})`));
          else done(null, chunk);
        },
      });
      if (!response.body) throw new ArtifactDownloadFailedError(`${url} answered without a body`);
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), counter, fs.createWriteStream(file, { flags: 'wx' }));
      if (object.bytes > 0 && received !== object.bytes) {
        throw new ArtifactDownloadFailedError(`download of ${url} ended after ${received} of ${object.bytes} bytes`);
      }
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      throw new ArtifactDownloadFailedError(`download of ${url} failed after ${received} bytes: ${(err as Error).message}`);
    } finally {
      clearTimeout(idle);
    }
  }
}
