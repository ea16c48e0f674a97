// What a remote artifact store (S3, http) tells about a model URL, and the two calls every store answers.

export interface RemoteObject {
  key: string;
  /** 0 when the store does not say. */
  bytes: number;
  /** A validator that changes with the content (ETag, or Last-Modified); '' when there is none. */
  etag: string;
}

export type RemoteArtifact =
  | { kind: 'object'; object: RemoteObject }
  | { kind: 'prefix'; prefix: string; objects: RemoteObject[] };

export interface ArtifactStore {
  /** What `url` names, checked to exist (typed errors: not found, denied, unreachable). */
  describe(url: string): Promise<RemoteArtifact>;
  /** Streams one object of `url` to `file`, whole or not at all. */
  download(url: string, object: RemoteObject, file: string): Promise<void>;
}

/** A URL as logs and answers show it: without its query, which may hold a presigned URL's credentials. */
export function redactedUrl(url: string): string {
  const at = url.search(/[?#]/);
  return at < 0 ? url : `${url.slice(0, at)}?…`;
}
