/**
 * An object of the edge cache: an origin response kept whole (status,
 * headers, body chunks) with what validating, purging and ageing it needs,
 * and the headers passed from the origin to clients.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { CacheOutcome } from './access-log.ts';
import type { Sendable } from './respond.ts';
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

/** The `Vary` header names of a response, lower case, sorted; empty when none. */
export function varyNames(headers: IncomingHttpHeaders): string[] {
  const vary = headers.vary;
  if (!vary) return [];
  return [...new Set(vary.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== ''))].sort();
}

/** The part of a cache key the `Vary` names select from a request's headers. */
export function varyPart(names: readonly string[], request: IncomingHttpHeaders): string | undefined {
  if (names.length === 0) return undefined;
  return names.map((name) => `${name}=${String(request[name] ?? '')}`).join('\u0001');
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
