/**
 * Per-client rate limits: a token bucket per client (refilled at `rate`
 * tokens a second up to `burst`; a request takes one), with memory bounded
 * however many clients there are.
 */

/** One client's bucket: tokens left when last seen, and when that was. */
interface Bucket {
  tokens: number;
  atMs: number;
}

/** What a request costs: admitted, or refused with when to come back. */
export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

const admitted: Take = { ok: true };

/**
 * Token buckets keyed by client. The map is kept in least-recently-seen
 * order (a seen client is moved to the end), which makes both bounds cheap:
 * on every call the oldest few buckets are dropped when they have refilled
 * to full (a full bucket is the same as no bucket, so this loses nothing),
 * and past `maxClients` the least recently seen is dropped even if not full
 * (that client gets a fresh burst: the price of bounded memory under a flood
 * of distinct addresses).
 */
export class TokenBuckets {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxClients: number;
  /** How long an empty bucket takes to fill: idle longer than this, it is full. */
  readonly #fillMs: number;
  readonly #buckets = new Map<string, Bucket>();

  /** `rate` tokens a second, at most `burst` held, at most `maxClients` buckets. */
  constructor(options: { rate: number; burst: number; maxClients: number }) {
    this.#rate = options.rate;
    this.#burst = options.burst;
    this.#maxClients = options.maxClients;
    this.#fillMs = (options.burst / options.rate) * 1000;
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `client` at `nowMs`; refused, says in how many whole seconds one will be there. */
  take(client: string, nowMs: number): Take {
    this.#evictIdle(nowMs);
    const buckets = this.#buckets;
    let bucket = buckets.get(client);
    if (bucket === undefined) {
      if (buckets.size >= this.#maxClients) buckets.delete(buckets.keys().next().value!);
      bucket = { tokens: this.#burst, atMs: nowMs };
    } else {
      // Clocks may step back: never refill on negative time.
      const elapsed = nowMs > bucket.atMs ? nowMs - bucket.atMs : 0;
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (elapsed * this.#rate) / 1000);
      bucket.atMs = nowMs;
      buckets.delete(client); // re-inserted below: now the most recently seen
    }
    buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return admitted;
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate)) };
  }

  /** Drops up to two of the least recently seen buckets that have refilled by now: enough to outpace insertion. */
  #evictIdle(nowMs: number): void {
    const buckets = this.#buckets;
    for (let n = 0; n < 2; n++) {
      const oldest = buckets.entries().next().value;
      if (oldest === undefined) return;
      const [client, bucket] = oldest;
      if (nowMs - bucket.atMs < this.#fillMs) return;
      buckets.delete(client);
    }
  }
}
