/**
 * Cache keys and `Vary`. A cached answer is kept under its URL (path and
 * query) and, when the origin's `Vary` names request headers, the values
 * the request had for them (`variantKey`). A client's request only gives
 * its URL, so the edge remembers, per URL, the names the last stored
 * answer varied on: the key of a request is built from them, and its
 * headers are read only when there are some.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { variantKey } from './store.ts';

/** URLs whose `Vary` names are remembered; the oldest is forgotten past this. */
const maxVaryEntries = 100_000;

/** What a key is built from: a client's request (its `headers` read only when needed), or none for the edge's own fetches. */
export interface KeyedRequest {
  readonly headers: IncomingHttpHeaders;
}

/** A request with no headers: the edge's own fetches (a prefetch, a preload-hinted part). */
export const noHeaders: KeyedRequest = Object.freeze({ headers: Object.freeze({}) });

/** The `Vary` header names of a response, lower case, sorted; empty when none. */
export function varyNames(headers: IncomingHttpHeaders): string[] {
  const vary = headers.vary;
  if (!vary) return [];
  return [...new Set(vary.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== ''))].sort();
}

/** The key of the variant of `url` that a request with `headers` selects by the `Vary` names `names`. */
export function variantKeyOf(url: string, names: readonly string[], headers: IncomingHttpHeaders): string {
  if (names.length === 0) return url;
  return variantKey(url, names.map((name) => `${name}=${String(headers[name] ?? '')}`).join('\u0001'));
}

/** The `Vary` names last seen per URL, and the cache keys of requests built from them. */
export class VaryKeys {
  readonly #names = new Map<string, string[]>();

  /** The cache key of a request for `url`: the URL alone unless its answer varies. */
  keyOf(url: string, request: KeyedRequest): string {
    const names = this.#names.get(url);
    return names === undefined ? url : variantKeyOf(url, names, request.headers);
  }

  /** The `Vary` names of `url`'s last stored answer; undefined when it had none. */
  namesOf(url: string): readonly string[] | undefined {
    return this.#names.get(url);
  }

  /** Remembers the `Vary` names of an answer stored for `url` (none forgets them). */
  remember(url: string, names: string[]): void {
    if (names.length === 0) {
      this.#names.delete(url);
      return;
    }
    this.#names.set(url, names);
    if (this.#names.size > maxVaryEntries) this.#names.delete(this.#names.keys().next().value as string);
  }
}
