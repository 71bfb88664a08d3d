/**
 * A cap on the requests one client has open at once (a download manager
 * opening 64 range requests, a scraper, a misbehaving player).
 */

/**
 * Open requests per client. A client is in the map only while it has one
 * open, so memory follows the requests in flight, not the clients ever seen.
 */
export class ConcurrencyCap {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /** At most `max` open requests per client. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Clients with a request open now. */
  get clients(): number {
    return this.#open.size;
  }

  /** Requests `client` has open now. */
  openFor(client: string): number {
    return this.#open.get(client) ?? 0;
  }

  /**
   * Opens a request for `client`: a function that closes it (call it when
   * the response ends; calling it again does nothing), or undefined when the
   * client is at its cap.
   */
  acquire(client: string): (() => void) | undefined {
    const open = this.#open.get(client) ?? 0;
    if (open >= this.#max) return undefined;
    this.#open.set(client, open + 1);
    let released = false;
    const map = this.#open;
    return function releaseConnection() {
      if (released) return;
      released = true;
      const now = map.get(client) ?? 0;
      if (now <= 1) map.delete(client);
      else map.set(client, now - 1);
    };
  }
}
