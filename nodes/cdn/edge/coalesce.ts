/**
 * Request coalescing: the origin requests in flight, by cache key. A miss
 * for a key already being fetched joins that fetch instead of making its
 * own, and streams the body from it while it arrives (read-while-write):
 * one origin request however many clients ask at once, with no lock to
 * poll and no timeout after which waiters go to the origin themselves. A
 * fetch belongs to no client: one that disconnects leaves it running for
 * the others, and it completes into the store.
 */
import type { CachedObject } from './cached-object.ts';
import type { OriginFailure, OriginHead } from './fetch-origin.ts';
import type { Freshness } from './ttl-rules.ts';

/** What a fetch gave. */
export type FillResult =
  | {
      kind: 'response';
      head: OriginHead;
      /** False for responses one client must not get from another's request (`private`, `no-store`, `Set-Cookie`, `Vary: *`). */
      shareable: boolean;
      freshness: Freshness;
      /** The response's `Vary` names: a waiter whose headers differ in them fetches for itself. */
      vary: string[];
      /** The key the response is stored under (its URL and the starting client's `Vary` values). */
      key: string;
    }
  | { kind: 'not-modified'; object: CachedObject }
  | { kind: 'failure'; failure: OriginFailure };

/** One fetch in flight. */
export interface Fill {
  readonly key: string;
  readonly result: Promise<FillResult>;
  /** Clients that joined it (the first is not counted). */
  joined: number;
}

/** The fetches in flight of one edge. */
export class Coalescer {
  readonly #fills = new Map<string, Fill>();

  /** The fetch in flight for `key`, if one can still be joined. */
  joinable(key: string): Fill | undefined {
    return this.#fills.get(key);
  }

  /** Fetches in flight. */
  get size(): number {
    return this.#fills.size;
  }

  /**
   * Starts the fetch for `key` with `run`. It stays joinable until its body
   * is complete (or failed, or turned pass-through), so clients arriving
   * while the body streams read it from the start.
   */
  start(key: string, run: () => Promise<FillResult>): Fill {
    const fill: Fill = { key, result: run(), joined: 0 };
    this.#fills.set(key, fill);
    const forget = (): void => {
      if (this.#fills.get(key) === fill) this.#fills.delete(key);
    };
    void fill.result.then(
      function fillSettled(result) {
        if (result.kind !== 'response') return forget();
        // A pass-through body cannot be joined once bytes were dropped: later clients fetch again.
        void result.head.done.then(forget, forget);
      },
      forget,
    );
    return fill;
  }

  /** Forgets every fetch (the edge stops); their readers finish or break on their own. */
  clear(): void {
    this.#fills.clear();
  }
}
