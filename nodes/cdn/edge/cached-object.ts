/**
 * An object of the edge cache: an origin response kept whole (status,
 * headers, body chunks) with what validating, purging and ageing it needs,
 * and the headers passed from the origin to clients.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { CacheOutcome } from './access-log.ts';
import type { OriginHead } from './fetch-origin.ts';
import { prepareHeaders, type Sendable } from './respond.ts';
import type { StoredValue } from './store.ts';
import type { SharedBody } from './shared-body.ts';
import type { Freshness } from './ttl-rules.ts';

/** A cached response. */
export interface CachedObject extends StoredValue {
  readonly url: string;
  status: number;
  /** Headers replayed to clients (hop-by-hop and tag headers removed). */
  headers: OutgoingHttpHeaders;
  /** The complete body. */
  readonly body: SharedBody;
  readonly size: number;
  etag?: string;
  lastModified?: string;
  readonly tags: readonly string[];
  /** When it was stored or last revalidated, ms since the epoch. */
  storedAt: number;
  /** The origin's `Age` when it was stored, ms. */
  originAge: number;
  freshness: Freshness;
  stale: boolean;
  /**
   * Its last answer, made ready to send (header list built), kept while
   * the outcome and age are the same; cleared when its headers change.
   */
  prepared?: { cache: CacheOutcome; ageSeconds: number; sendable: Sendable };
}

/** Headers that describe one connection, not the object, and headers kept for the edge only. */
const notForwarded = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'age', 'surrogate-key', 'cache-tag', 'surrogate-control']);

/** The origin's headers as the edge passes them on. */
export function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !notForwarded.has(name)) out[name] = value;
  return out;
}

/** The tags of a response: `Surrogate-Key` (space-separated) and `Cache-Tag` (comma-separated). */
export function tagsOf(headers: IncomingHttpHeaders): string[] {
  const tags = new Set<string>();
  const surrogate = headers['surrogate-key'];
  for (const tag of (Array.isArray(surrogate) ? surrogate.join(' ') : (surrogate ?? '')).split(/\s+/)) if (tag !== '') tags.add(tag);
  const cacheTag = headers['cache-tag'];
  for (const tag of (Array.isArray(cacheTag) ? cacheTag.join(',') : (cacheTag ?? '')).split(',')) if (tag.trim() !== '') tags.add(tag.trim());
  return [...tags];
}

/** The object's age, ms: the origin's `Age` plus the time since it was stored. */
export function ageOf(object: CachedObject, now: number): number {
  return object.originAge + Math.max(0, now - object.storedAt);
}

/** Where an object stands: fresh, servable stale while one refresh runs, or expired. */
export function stateOf(object: CachedObject, now: number): 'fresh' | 'revalidate' | 'expired' {
  const age = ageOf(object, now);
  const ttl = object.stale ? 0 : object.freshness.ttl;
  if (age < ttl) return 'fresh';
  if (age < ttl + object.freshness.swr) return 'revalidate';
  return 'expired';
}

/** Whether an expired object may still be served because the origin failed. */
export function servableOnError(object: CachedObject, now: number): boolean {
  const ttl = object.stale ? 0 : object.freshness.ttl;
  return ageOf(object, now) < ttl + Math.max(object.freshness.sie, object.freshness.swr);
}

/**
 * A 304 from the origin: its headers (but `Content-Length`) and validators
 * replace the object's, and the object's kept header list is dropped.
 * Returns the headers to compute the new freshness from: the 304's, with
 * the object's `Cache-Control` and `Expires` after the merge.
 */
export function takeRevalidatedHeaders(object: CachedObject, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const [name, value] of Object.entries(forwardedHeaders(headers))) {
    if (name !== 'content-length' && value !== undefined) object.headers[name] = value;
  }
  if (headers.etag !== undefined) object.etag = headers.etag;
  if (headers['last-modified'] !== undefined) object.lastModified = headers['last-modified'];
  object.prepared = undefined;
  return { ...headers, 'cache-control': String(object.headers['cache-control'] ?? ''), expires: object.headers.expires as string | undefined };
}

/** The origin's `Age` header, ms (0 when absent or not a number). */
export function originAgeOf(headers: IncomingHttpHeaders): number {
  return (Number(headers.age) || 0) * 1000;
}

/** What an origin answer for `url` that arrived whole is stored as, fresh for `freshness` from `now`. */
export function storedObject(url: string, head: OriginHead, freshness: Freshness, now: number): CachedObject {
  return {
    url,
    status: head.status,
    headers: forwardedHeaders(head.headers),
    body: head.body,
    // The body and, about, its headers.
    size: head.body.length + 512,
    etag: head.headers.etag,
    lastModified: head.headers['last-modified'],
    tags: tagsOf(head.headers),
    storedAt: now,
    originAge: originAgeOf(head.headers),
    freshness,
    stale: false,
  };
}

/**
 * The answer of a stored object as `cache` with `ageSeconds`, its header
 * list built: kept on the object while its outcome and age stay the same,
 * so a run of hits builds it once.
 */
export function preparedAnswer(object: CachedObject, cache: CacheOutcome, ageSeconds: number): Sendable {
  const prepared = object.prepared;
  if (prepared !== undefined && prepared.cache === cache && prepared.ageSeconds === ageSeconds) return prepared.sendable;
  const sendable: Sendable = { status: object.status, headers: object.headers, body: object.body, cache, ageSeconds, validators: object, length: object.body.length };
  sendable.prepared = prepareHeaders(sendable);
  object.prepared = { cache, ageSeconds, sendable };
  return sendable;
}
