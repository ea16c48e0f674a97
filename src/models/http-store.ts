// Reads model artifacts over http(s), as MMS and TorchServe register them from a URL. Redirects are
// followed by hand so that every hop is checked against allowed_urls; a body must arrive whole.
import * as fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  ArtifactDownloadFailedError, ArtifactRefusedError, BadRequestError, InvalidModelArchiveError, QuiverError,
} from '../errors';
import { ArtifactStore, RemoteArtifact, RemoteObject, redactedUrl } from './remote-artifact';

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
  const message = `failed to download model archive from ${redactedUrl(url)}: the server answered HTTP ${status}`;
  return status >= 400 && status < 500 ? new ArtifactRefusedError(message) : new ArtifactDownloadFailedError(message);
}

function decodedPath(url: string): string {
  const pathname = new URL(url).pathname;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

const validatorOf = (response: Response): string => response.headers.get('etag') ?? response.headers.get('last-modified') ?? '';

export class HttpArtifactStore implements ArtifactStore {
  constructor(private readonly options: HttpStoreOptions) {}

  /** GETs `url`, following redirects that are themselves allowed; returns the final answer. */
  private async get(url: string, signal: AbortSignal): Promise<{ response: Response; finalUrl: string }> {
    let current = url;
    for (let hop = 0; ; hop++) {
      this.options.checkAllowed(current);
      let response: Response;
      try {
        response = await fetch(current, { redirect: 'manual', signal, headers: { 'accept-encoding': 'identity' } });
      } catch (err) {
        const cause = (err as Error).cause;
        throw new ArtifactDownloadFailedError(`${redactedUrl(current)} could not be reached: ${cause ? String(cause) : (err as Error).message}`);
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS) throw new ArtifactDownloadFailedError(`${redactedUrl(url)} redirects more than ${MAX_REDIRECTS} times`);
        try {
          current = new URL(location, current).href;
        } catch {
          throw new ArtifactRefusedError(`${redactedUrl(current)} redirects to ${JSON.stringify(redactedUrl(location))}, which is not a URL`);
        }
        if (!isHttpUrl(current)) throw new ArtifactRefusedError(`${redactedUrl(url)} redirects to ${redactedUrl(current)}, which is not an http(s) URL`);
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
    // A GET, not a HEAD: presigned URLs are often signed for GET alone. Only the headers are read here.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.idleTimeoutMs);
    try {
      const { response, finalUrl } = await this.get(url, controller.signal);
      await response.body?.cancel();
      const length = Number(response.headers.get('content-length') ?? NaN);
      if (Number.isFinite(length) && length > this.options.maxBytes) {
        throw new InvalidModelArchiveError(`${redactedUrl(url)} is ${length} bytes, over max_archive_bytes (${this.options.maxBytes})`);
      }
      // Named by the URL the user gave: a redirect often ends in a content hash.
      const original = decodedPath(url);
      const key = /[^/]$/.test(original) ? original : decodedPath(finalUrl);
      return { kind: 'object', object: { key, bytes: Number.isFinite(length) ? length : 0, etag: validatorOf(response) } };
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  async download(url: string, object: RemoteObject, file: string): Promise<void> {
    const controller = new AbortController();
    const { maxBytes, idleTimeoutMs } = this.options;
    let idle = setTimeout(() => controller.abort(), idleTimeoutMs);
    let received = 0;
    try {
      const { response } = await this.get(url, controller.signal);
      if (object.etag && validatorOf(response) !== object.etag) throw new ArtifactDownloadFailedError(`${redactedUrl(url)} changed while it was being downloaded; try again`);
      if (!response.body) throw new ArtifactDownloadFailedError(`${redactedUrl(url)} answered without a body`);
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          clearTimeout(idle);
          idle = setTimeout(() => controller.abort(), idleTimeoutMs);
          if (received > maxBytes) done(new InvalidModelArchiveError(`${redactedUrl(url)} is more than max_archive_bytes (${maxBytes})`));
          else done(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), counter, fs.createWriteStream(file, { flags: 'wx' }));
      if (object.bytes > 0 && received !== object.bytes) {
        throw new ArtifactDownloadFailedError(`download of ${redactedUrl(url)} ended after ${received} of ${object.bytes} bytes`);
      }
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      throw new ArtifactDownloadFailedError(`download of ${redactedUrl(url)} failed after ${received} bytes: ${(err as Error).message}`);
    } finally {
      clearTimeout(idle);
      // Whatever is left of the answer (a refused or changed one) is not read: close its connection.
      controller.abort();
    }
  }
}
