/**
 * The access-log record the edge emits per request on its `log` port, for
 * the engine's own windows to turn into hit ratio, bandwidth and TTFB
 * percentiles.
 */
import type { IncomingMessage } from 'node:http';

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

/** What the edge noted of a request for its record. */
export interface RequestOutcome {
  /** Arrival, ms since the epoch. */
  ts: number;
  cache: CacheOutcome;
  originStatus: number | undefined;
}

/** The record of a request that arrived at `arrived` (performance.now()) and was answered with `sent`. */
export function accessRecord(request: IncomingMessage, edge: string, outcome: RequestOutcome, sent: { status: number; bytes: number; headersAt: number }, arrived: number): AccessRecord {
  const record: AccessRecord = {
    ts: outcome.ts,
    edge,
    client: request.socket.remoteAddress ?? '',
    method: request.method ?? '',
    path: (request.url ?? '').slice(0, 2048),
    status: sent.status,
    bytes: sent.bytes,
    cache: outcome.cache,
    ttfb_ms: Math.max(0, sent.headersAt - arrived),
    duration_ms: performance.now() - arrived,
  };
  if (outcome.originStatus !== undefined) record.origin_status = outcome.originStatus;
  return record;
}
