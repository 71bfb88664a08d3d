/**
 * The small interface every object store of the engine offers: an
 * S3-compatible bucket (`s3://bucket/prefix`, `native/s3/client.ts`) or a
 * folder (`file:` or a plain path, `native/s3/folder-store.ts`), so a
 * pipeline needs no server by default and the same operators write to S3
 * when one is configured. Keys are relative to the store's root (the
 * bucket's prefix, the folder) and checked by `keyProblem`.
 */
import { NativeError } from '../client-owner.ts';

/** What a store knows of one object. */
export interface ObjectInfo {
  /** The key, relative to the store's root. */
  key: string;
  /** Size in bytes (of the whole object, also for a range read). */
  size: number;
  /** An opaque validator that changes when the content does (S3's ETag, quotes removed). */
  etag: string;
  contentType?: string;
  cacheControl?: string;
  /**
   * When the object was last written, in ms since the epoch, as the store
   * says (S3's `Last-Modified`, whole seconds; a file's modification time).
   * Listings always give it; absent after an S3 `put`, which does not say.
   */
  modified?: number;
}

/** How an object is written. */
export interface PutOptions {
  /** Absent: guessed from the key's extension. */
  contentType?: string;
  /** The `Cache-Control` a reader (an edge, a CDN in front of the bucket) should apply. */
  cacheControl?: string;
}

/** A byte range, both ends included, as HTTP `Range: bytes=start-end` (`end` absent: to the end). */
export interface ByteRange {
  start: number;
  end?: number;
}

/** An object being read: its information and its bytes as a stream. */
export interface ObjectBody extends ObjectInfo {
  /** The bytes asked for, streamed as they arrive; read it to the end or call `cancel`. */
  body: AsyncIterable<Uint8Array>;
  /** How many bytes `body` yields. */
  length: number;
  /** Stops reading and frees the connection or file when `body` is not read to the end. */
  cancel(): void;
}

/** An object store. Every failure is an `ObjectStoreError` whose message names the store (never a secret). */
export interface ObjectStore {
  /** The store as messages show it: `s3://media/live at http://127.0.0.1:7070`, or the folder. */
  readonly where: string;
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo>;
  /** Streams an object, or the `range` of it. */
  get(key: string, options?: { range?: ByteRange }): Promise<ObjectBody>;
  /** The object's information, or `undefined` when there is no such object. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix?: string): Promise<ObjectInfo[]>;
  /** Removes an object; removing one that does not exist is not an error. */
  delete(key: string): Promise<void>;
  /** Frees connections; the store is not used afterwards. */
  close(): void;
}

/** Stable codes of `ObjectStoreError`. */
export type ObjectStoreErrorCode = 'object_not_found' | 'bucket_not_found' | 'object_access_denied' | 'object_store_unreachable' | 'bad_object_key' | 'bad_object_range' | 'object_store_settings' | 'object_store_failed';

/**
 * A store failure with a stable `code`. Missing credentials, refused
 * credentials, a bad key and a missing bucket need a change of settings; an
 * unreachable store or a missing object may cure itself.
 */
export class ObjectStoreError extends NativeError {
  declare readonly code: ObjectStoreErrorCode;
  constructor(code: ObjectStoreErrorCode, message: string, options?: { cause?: unknown }) {
    const cure = code === 'object_store_unreachable' || code === 'object_not_found' || code === 'object_store_failed' ? 'retry' : 'settings';
    super(code, message, { ...options, cure });
    this.name = 'ObjectStoreError';
  }
}

/** Reads an object's body to one buffer. */
export async function readBody(object: ObjectBody): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of object.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Where a store URL points: a bucket and a prefix in it, or a folder. */
export type StoreLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'folder'; path: string };

/** S3's bucket naming rules (lower case, 3-63 characters, no leading or trailing dot or dash). */
const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses a store URL: `s3://bucket/prefix` (the prefix may be empty),
 * `file:///abs/folder`, `file:relative/folder`, or a plain path. Throws a
 * `TypeError` that says what is wrong.
 *
 * @example parseStoreUrl('s3://media/live') // { kind: 's3', bucket: 'media', prefix: 'live/' }
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    if (rest.includes('@')) throw new TypeError('an `s3://` store URL takes no credentials: give them in the environment (STREAMS_S3_ACCESS_KEY, STREAMS_S3_SECRET_KEY)');
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    if (!bucketName.test(bucket)) throw new TypeError(`\`${bucket}\` is not a bucket name (3-63 lower-case letters, digits, \`.\` and \`-\`)`);
    return { kind: 's3', bucket, prefix: slash === -1 ? '' : rest.slice(slash + 1) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) throw new TypeError(`store \`${url.split('/').slice(0, 3).join('/')}\` is not \`s3://bucket/prefix\`, \`file:\` or a folder`);
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url.startsWith('file:') ? url.slice('file:'.length) : url;
  if (path === '') throw new TypeError('the store folder is empty');
  return { kind: 'folder', path };
}
