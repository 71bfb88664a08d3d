/**
 * The access-log record the edge emits per request on its `log` port, for
 * the engine's own windows to turn into hit ratio, bandwidth and TTFB
 * percentiles.
 */

/** How the cache answered: a hit, a miss, stale content, a miss joined to another's fetch, or none (refused, an error, a pass). */
export type CacheOutcome = 'HIT' | 'MISS' | 'STALE' | 'COALESCED' | 'PASS' | 'NONE';

/** One request. */
export interface AccessRecord {
  /** When the request arrived, ms since the epoch. */
  ts: number;
  edge: string;
  client: string;
  method: string;
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  cache: CacheOutcome;
  /** Arrival to response headers, ms. */
  ttfb_ms: number;
  duration_ms: number;
  /** The origin's status when this request made or joined an origin request. */
  origin_status?: number;
}

/** The port type string of the `log` port. */
export const accessRecordType = 'Event<{ts: number, edge: string, client: string, method: string, path: string, status: number, bytes: number, cache: string, ttfb_ms: number, duration_ms: number, origin_status: number}>';
