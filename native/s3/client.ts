/**
 * The one S3 client of the engine, over @aws-sdk/client-s3: path-style
 * requests (what S3-compatible servers such as versitygw expect), the
 * endpoint, region and credentials from settings that come from the
 * environment (`${env:...}` or `STREAMS_S3_*`), never logged. Every failure
 * becomes an `ObjectStoreError` naming the endpoint, the bucket and the key,
 * not the secret. `openObjectStore` picks this or a folder by the URL.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { redactUrl } from '../redact-url.ts';
import { openFolderStore } from './folder-store.ts';
import { contentTypeOf, keyProblem, normalisePrefix } from './object-key.ts';
import { ObjectStoreError, parseStoreUrl, type ByteRange, type ObjectBody, type ObjectInfo, type ObjectStore, type PutOptions } from './object-store.ts';

/** Where an S3-compatible server is and how to sign requests to it. */
export interface S3Settings {
  /** The server, `http://127.0.0.1:7070`; absent: AWS's own endpoint for `region`. */
  endpoint?: string;
  /** Signing region (`us-east-1` when absent; S3-compatible servers accept any). */
  region?: string;
  accessKey?: string;
  secretKey?: string;
}

/**
 * S3 settings from the environment: `STREAMS_S3_URL`, `STREAMS_S3_REGION`,
 * `STREAMS_S3_ACCESS_KEY`, `STREAMS_S3_SECRET_KEY` (falling back to
 * `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`).
 */
export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const pick = (...names: string[]): string | undefined => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const settings: S3Settings = {};
  const endpoint = pick('STREAMS_S3_URL');
  const region = pick('STREAMS_S3_REGION', 'AWS_REGION');
  const accessKey = pick('STREAMS_S3_ACCESS_KEY', 'AWS_ACCESS_KEY_ID');
  const secretKey = pick('STREAMS_S3_SECRET_KEY', 'AWS_SECRET_ACCESS_KEY');
  if (endpoint !== undefined) settings.endpoint = endpoint;
  if (region !== undefined) settings.region = region;
  if (accessKey !== undefined) settings.accessKey = accessKey;
  if (secretKey !== undefined) settings.secretKey = secretKey;
  return settings;
}

/** What AWS SDK errors carry that tells them apart. */
interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The network errors that mean the server is not there (or not answering), as opposed to refusing. */
const unreachableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

function networkCode(error: unknown): string | undefined {
  for (let e = error as (SdkError & { cause?: unknown; errors?: unknown[] }) | undefined, depth = 0; e && depth < 4; depth++) {
    if (e.code && unreachableCodes.has(e.code)) return e.code;
    const inner = e.errors?.[0] as SdkError | undefined;
    if (inner?.code && unreachableCodes.has(inner.code)) return inner.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkLoading: Promise<Sdk> | undefined;

/** The AWS SDK, loaded on first use: a pipeline (or a `validate`) that opens no S3 store never loads it. */
function sdk(): Promise<Sdk> {
  return (sdkLoading ??= import('@aws-sdk/client-s3'));
}

/**
 * A client for `settings`, made once the SDK is loaded; throws
 * `object_store_settings` at once when credentials are missing.
 */
function clientFor(settings: S3Settings, where: string): Promise<S3Client> {
  if (!settings.accessKey || !settings.secretKey) {
    throw new ObjectStoreError('object_store_settings', `${where}: no credentials: set STREAMS_S3_ACCESS_KEY and STREAMS_S3_SECRET_KEY in the environment (or \`access_key\`/\`secret_key\` as \`\${env:NAME}\`)`);
  }
  const config: S3ClientConfig = {
    region: settings.region ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey },
    // Two attempts: a store that is down is reported within a second or two, and the operator's own retries take over.
    maxAttempts: 2,
  };
  if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;
  return sdk().then(({ S3Client: Client }) => new Client(config));
}

/** Destroys a client once it exists (it may still be loading). */
function destroy(client: Promise<S3Client>): void {
  client.then(
    (made) => made.destroy(),
    // A client that failed to load holds nothing to free.
    () => undefined,
  );
}

/** How messages name a bucket: `s3://media/live at http://127.0.0.1:7070`. */
function describe(bucket: string, prefix: string, settings: S3Settings): string {
  return `s3://${bucket}/${prefix}`.replace(/\/$/, '') + ` at ${settings.endpoint === undefined ? `AWS ${settings.region ?? 'us-east-1'}` : redactUrl(settings.endpoint).replace(/\/$/, '')}`;
}

/** An SDK failure as an `ObjectStoreError` whose message says what went wrong where, in words. */
function translate(error: unknown, where: string, action: string, key: string | undefined): ObjectStoreError {
  if (error instanceof ObjectStoreError) return error;
  const sdk = (error ?? {}) as SdkError;
  const status = sdk.$metadata?.httpStatusCode;
  const what = key === undefined ? '' : ` \`${key}\``;
  const network = networkCode(error);
  if (network !== undefined) return new ObjectStoreError('object_store_unreachable', `${where}: cannot ${action}${what}: the server cannot be reached (${network})`, { cause: error });
  switch (sdk.name) {
    case 'NoSuchBucket':
      return new ObjectStoreError('bucket_not_found', `${where}: the bucket does not exist`, { cause: error });
    case 'NoSuchKey':
      return new ObjectStoreError('object_not_found', `${where}: no object${what}`, { cause: error });
    case 'InvalidAccessKeyId':
    // versitygw's answer (404) to an access key it does not know.
    case 'XAdminUserNotFound':
      return new ObjectStoreError('object_access_denied', `${where}: the access key is not known to the server (check STREAMS_S3_ACCESS_KEY)`, { cause: error });
    case 'SignatureDoesNotMatch':
      return new ObjectStoreError('object_access_denied', `${where}: the server refused the request signature (check STREAMS_S3_SECRET_KEY)`, { cause: error });
    case 'AccessDenied':
      return new ObjectStoreError('object_access_denied', `${where}: access denied to ${action}${what}`, { cause: error });
    case 'InvalidRange':
      return new ObjectStoreError('bad_object_range', `${where}: the range asked of${what} is outside the object`, { cause: error });
  }
  if (status === 404) return new ObjectStoreError(key === undefined ? 'bucket_not_found' : 'object_not_found', key === undefined ? `${where}: the bucket does not exist` : `${where}: no object${what} (or no bucket)`, { cause: error });
  if (status === 403) return new ObjectStoreError('object_access_denied', `${where}: access denied to ${action}${what} (check the credentials)`, { cause: error });
  if (status === 416) return new ObjectStoreError('bad_object_range', `${where}: the range asked of${what} is outside the object`, { cause: error });
  const detail = sdk.name && sdk.name !== 'Error' ? `${sdk.name}${status ? ` (HTTP ${status})` : ''}` : (sdk.message ?? String(error));
  return new ObjectStoreError('object_store_failed', `${where}: cannot ${action}${what}: ${detail}`, { cause: error });
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^(W\/)?"|"$/g, '');
}

/**
 * Opens bucket `bucket` below `prefix` on an S3-compatible server as an
 * object store. Nothing is sent until the first call.
 *
 * @example const store = openS3Store({ bucket: 'media', prefix: 'live', ...s3SettingsFromEnv() });
 */
export function openS3Store({ bucket, prefix = '', ...settings }: S3Settings & { bucket: string; prefix?: string }): ObjectStore {
  const below = normalisePrefix(prefix);
  const where = describe(bucket, below, settings);
  const client = clientFor(settings, where);

  function fullKey(key: string): string {
    const problem = keyProblem(key);
    if (problem !== undefined) throw new ObjectStoreError('bad_object_key', `${where}: ${problem}`);
    return below + key;
  }

  return {
    where,
    async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
      const full = fullKey(key);
      const contentType = options.contentType ?? contentTypeOf(key);
      try {
        const { PutObjectCommand } = await sdk();
        const out = await (await client).send(new PutObjectCommand({ Bucket: bucket, Key: full, Body: body, ContentLength: body.length, ContentType: contentType, ...(options.cacheControl !== undefined && { CacheControl: options.cacheControl }) }));
        return { key, size: body.length, etag: unquote(out.ETag), contentType, ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }) };
      } catch (error) {
        throw translate(error, where, 'write', key);
      }
    },

    async get(key: string, options: { range?: ByteRange } = {}): Promise<ObjectBody> {
      const full = fullKey(key);
      const range = options.range;
      try {
        const { GetObjectCommand } = await sdk();
        const out = await (await client).send(new GetObjectCommand({ Bucket: bucket, Key: full, ...(range !== undefined && { Range: `bytes=${range.start}-${range.end ?? ''}` }) }));
        const length = out.ContentLength ?? 0;
        // With a range, the whole size is the part of Content-Range after the slash.
        const total = out.ContentRange ? Number(out.ContentRange.split('/')[1]) : length;
        const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
        const empty = (async function* emptyBody() {})();
        return {
          key,
          size: Number.isFinite(total) ? total : length,
          etag: unquote(out.ETag),
          ...(out.ContentType !== undefined && { contentType: out.ContentType }),
          ...(out.CacheControl !== undefined && { cacheControl: out.CacheControl }),
          ...(out.LastModified !== undefined && { modified: out.LastModified.getTime() }),
          length,
          body: body ?? empty,
          cancel: () => body?.destroy?.(),
        };
      } catch (error) {
        throw translate(error, where, 'read', key);
      }
    },

    async head(key: string): Promise<ObjectInfo | undefined> {
      const full = fullKey(key);
      try {
        const { HeadObjectCommand } = await sdk();
        const out = await (await client).send(new HeadObjectCommand({ Bucket: bucket, Key: full }));
        return { key, size: out.ContentLength ?? 0, etag: unquote(out.ETag), ...(out.ContentType !== undefined && { contentType: out.ContentType }), ...(out.CacheControl !== undefined && { cacheControl: out.CacheControl }), ...(out.LastModified !== undefined && { modified: out.LastModified.getTime() }) };
      } catch (error) {
        const translated = translate(error, where, 'read', key);
        // A HEAD answer has no body, so a missing bucket looks like a missing key: both mean "not there".
        if (translated.code === 'object_not_found') return undefined;
        throw translated;
      }
    },

    async list(prefix = ''): Promise<ObjectInfo[]> {
      const found: ObjectInfo[] = [];
      let token: string | undefined;
      try {
        const { ListObjectsV2Command } = await sdk();
        do {
          const out = await (await client).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: below + prefix, ...(token !== undefined && { ContinuationToken: token }) }));
          for (const item of out.Contents ?? []) {
            if (item.Key === undefined) continue;
            found.push({ key: item.Key.slice(below.length), size: item.Size ?? 0, etag: unquote(item.ETag), ...(item.LastModified !== undefined && { modified: item.LastModified.getTime() }) });
          }
          token = out.IsTruncated ? out.NextContinuationToken : undefined;
        } while (token !== undefined);
      } catch (error) {
        throw translate(error, where, 'list', undefined);
      }
      return found;
    },

    async delete(key: string): Promise<void> {
      const full = fullKey(key);
      try {
        const { DeleteObjectCommand } = await sdk();
        await (await client).send(new DeleteObjectCommand({ Bucket: bucket, Key: full }));
      } catch (error) {
        throw translate(error, where, 'delete', key);
      }
    },

    close(): void {
      destroy(client);
    },
  };
}

/** Creates a bucket (tests, first setup); one that already exists and is ours is fine. */
export async function createBucket(settings: S3Settings, bucket: string): Promise<void> {
  const where = describe(bucket, '', settings);
  const client = clientFor(settings, where);
  try {
    const { CreateBucketCommand } = await sdk();
    await (await client).send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if ((error as SdkError).name === 'BucketAlreadyOwnedByYou') return;
    throw translate(error, where, 'create the bucket', undefined);
  } finally {
    destroy(client);
  }
}

/** Removes a bucket and every object in it. */
export async function removeBucket(settings: S3Settings, bucket: string): Promise<void> {
  const store = openS3Store({ ...settings, bucket });
  const client = clientFor(settings, store.where);
  try {
    for (const object of await store.list()) await store.delete(object.key);
    const { DeleteBucketCommand } = await sdk();
    await (await client).send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (error) {
    throw translate(error, store.where, 'remove the bucket', undefined);
  } finally {
    store.close();
    destroy(client);
  }
}

/**
 * Opens the store a URL names: `s3://bucket/prefix` on the server of `s3`
 * (from the environment by default), or a folder (`file:`, a path; relative
 * to `base`). `prefix` goes below the URL's own. Throws `ObjectStoreError`
 * (`object_store_settings`) for a URL or settings that cannot work.
 */
export function openObjectStore(url: string, { s3 = s3SettingsFromEnv(), base, prefix = '' }: { s3?: S3Settings; base?: string; prefix?: string } = {}): ObjectStore {
  let location;
  try {
    location = parseStoreUrl(url);
  } catch (error) {
    throw new ObjectStoreError('object_store_settings', `store \`${redactUrl(url)}\`: ${(error as Error).message}`);
  }
  const joined = (first: string): string => [first, prefix].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
  if (location.kind === 'folder') {
    try {
      return openFolderStore(location.path, { ...(base !== undefined && { base }), prefix: joined('') });
    } catch (error) {
      throw new ObjectStoreError('object_store_settings', `store \`${url}\`: ${(error as Error).message}`);
    }
  }
  try {
    return openS3Store({ ...s3, bucket: location.bucket, prefix: joined(location.prefix) });
  } catch (error) {
    if (error instanceof ObjectStoreError) throw error;
    throw new ObjectStoreError('object_store_settings', `store \`${url}\`: ${(error as Error).message}`);
  }
}
