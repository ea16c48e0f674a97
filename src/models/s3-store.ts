// Reads model artifacts from S3 (or an S3-compatible store) with @aws-sdk/client-s3: the SDK's standard
// credential and region chain, an optional custom endpoint. Every S3 failure becomes a typed error.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  ArtifactAccessDeniedError,
  ArtifactDownloadFailedError,
  ArtifactNotFoundError,
  BadRequestError,
  QuiverError,
} from '../errors';
import { log } from '../log';
import type { ArtifactStore, RemoteArtifact, RemoteObject } from './remote-artifact';

export interface S3Location {
  bucket: string;
  key: string;
}


export interface S3StoreOptions {
  /** An S3-compatible endpoint (path-style addressing); unset: AWS, or AWS_ENDPOINT_URL_S3. */
  endpoint?: string;
  maxObjects: number;
}

type S3Sdk = typeof import('@aws-sdk/client-s3');
let loadedSdk: S3Sdk | undefined;

/** The SDK, loaded on the first S3 URL: it adds ~20 MiB to the server's RSS, which a server without S3 models should not pay. */
function sdk(): S3Sdk {
  loadedSdk ??= require('@aws-sdk/client-s3') as S3Sdk;
  return loadedSdk;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PROGRESS_EVERY_MS = 5_000;
const LARGE_DOWNLOAD_BYTES = 64 * 1024 * 1024;

export function isS3Url(url: string): boolean {
  return /^s3:\/\//i.test(url);
}

export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(url);
  if (!match) throw new BadRequestError(`model url ${JSON.stringify(url)} is not an s3://bucket/key URL`);
  const [, bucket, key = ''] = match;
  if (!BUCKET.test(bucket)) throw new BadRequestError(`${JSON.stringify(bucket)} is not a valid S3 bucket name`);
  if (key.includes('\0')) throw new BadRequestError('S3 key contains a NUL byte');
  return { bucket, key };
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** Maps what the SDK throws to the error a caller of Quiver should see. */
export function s3Failure(err: unknown, url: string): QuiverError {
  if (err instanceof QuiverError) return err;
  const name = (err as Error).name;
  const message = (err as Error).message;
  const status = statusOf(err);
  if (name === 'NoSuchBucket') return new ArtifactNotFoundError(`S3 bucket of ${url} does not exist`);
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return new ArtifactNotFoundError(`S3 object ${url} was not found`);
  if (name === 'CredentialsProviderError') return new ArtifactAccessDeniedError(`no AWS credentials for ${url}: ${message}`);
  if (['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(name) || status === 403) {
    return new ArtifactAccessDeniedError(`access to ${url} was denied (${name})`);
  }
  if (loadedSdk && err instanceof loadedSdk.S3ServiceException) return new ArtifactDownloadFailedError(`S3 refused ${url}: ${name} (HTTP ${status ?? '?'})`);
  return new ArtifactDownloadFailedError(`S3 could not be reached for ${url}: ${message}`);
}

const cleanEtag = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '');

export class S3ArtifactStore implements ArtifactStore {
  private client: S3Client | undefined;

  constructor(private readonly options: S3StoreOptions) {}

  private s3(): S3Client {
    const endpoint = this.options.endpoint || undefined;
    this.client ??= new (sdk().S3Client)({
      endpoint,
      forcePathStyle: endpoint !== undefined,
      // A custom store seldom cares about the region, but the SDK insists on one.
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (endpoint ? 'us-east-1' : undefined),
      followRegionRedirects: true,
      // Idle-socket timeout: a store that stops sending fails the download instead of hanging it.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    });
    return this.client;
  }

  /** What `url` names: one object, or (when no object has that key) every object under `key/`. */
  async describe(url: string): Promise<RemoteArtifact> {
    const { bucket, key } = parseS3Url(url);
    try {
      if (key !== '' && !key.endsWith('/')) {
        try {
          const head = await this.s3().send(new (sdk().HeadObjectCommand)({ Bucket: bucket, Key: key }));
          return { kind: 'object', object: { key, bytes: head.ContentLength ?? 0, etag: cleanEtag(head.ETag) } };
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
      }
      const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
      const objects = await this.list(bucket, prefix, url);
      if (objects.length === 0) throw new ArtifactNotFoundError(`S3 object or prefix ${url} was not found`);
      return { kind: 'prefix', prefix, objects };
    } catch (err) {
      throw s3Failure(err, url);
    }
  }

  private async list(bucket: string, prefix: string, url: string): Promise<RemoteObject[]> {
    const objects: RemoteObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3().send(new (sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        // Zero-byte "folder" markers that consoles create carry nothing.
        if (!o.Key || (o.Key.endsWith('/') && (o.Size ?? 0) === 0)) continue;
        objects.push({ key: o.Key, bytes: o.Size ?? 0, etag: cleanEtag(o.ETag) });
      }
      if (objects.length > this.options.maxObjects) {
        throw new BadRequestError(`${url} holds more than ${this.options.maxObjects} objects; a model folder should not`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  /**
   * Streams one object to `file`. The object must still be the one described (If-Match), arrive whole,
   * and match its MD5 ETag when it has one (not multipart), else ArtifactDownloadFailedError.
   */
  async download(url: string, object: RemoteObject, file: string): Promise<void> {
    const { bucket } = parseS3Url(url);
    const where = `s3://${bucket}/${object.key}`;
    let received = 0;
    try {
      const response = await this.s3().send(
        new (sdk().GetObjectCommand)({ Bucket: bucket, Key: object.key, IfMatch: object.etag ? `"${object.etag}"` : undefined }),
      );
      const md5 = createHash('md5');
      const started = Date.now();
      let lastReport = started;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          md5.update(chunk);
          const now = Date.now();
          if (object.bytes >= LARGE_DOWNLOAD_BYTES && now - lastReport >= PROGRESS_EVERY_MS) {
            lastReport = now;
            log.info('downloading model artifact', {
              url: where,
              bytes: received,
              totalBytes: object.bytes,
              percent: Math.round((100 * received) / object.bytes),
              mbPerS: Math.round(received / 1e3 / (now - started)),
            });
          }
          done(null, chunk);
        },
      });
      await pipeline(response.Body as Readable, counter, fs.createWriteStream(file, { flags: 'wx' }));
      if (received !== object.bytes) {
        throw new ArtifactDownloadFailedError(`download of ${where} ended after ${received} of ${object.bytes} bytes`);
      }
      if (/^[0-9a-f]{32}$/.test(object.etag) && md5.digest('hex') !== object.etag) {
        throw new ArtifactDownloadFailedError(`download of ${where} is corrupt: its MD5 does not match the ETag`);
      }
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      if (statusOf(err) === 412) throw new ArtifactDownloadFailedError(`${where} changed while it was being downloaded; try again`);
      if (statusOf(err) !== undefined) throw s3Failure(err, url);
      throw new ArtifactDownloadFailedError(`download of ${where} failed after ${received} of ${object.bytes} bytes: ${(err as Error).message}`);
    }
  }
}
