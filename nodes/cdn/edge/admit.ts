/**
 * The one place where the edge decides whether to serve a request: the
 * `admit` step, run after the request passed the edge's own checks and
 * before any lookup. Access policies (signed URLs, rate limits, IP lists,
 * geo rules: `nodes/cdn/access/`) plug in here; the default admits all.
 * An admitted request's `release` runs exactly once when it ends (answered,
 * failed or abandoned), so a policy can cap concurrent requests per client.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** What `admit` sees of a request. */
export interface AdmitRequest {
  /** The client's IP address, as the socket gives it. */
  client: string;
  method: string;
  /** The parsed request URL (`http://edge/path?query`; only path and query are the client's). */
  url: URL;
  headers: IncomingHttpHeaders;
  /** The edge's name (`name` setting). */
  edge: string;
}

/** Served: `release` runs when the request ends. */
export interface Admitted {
  ok: true;
  release(): void;
}

/** Refused: answered with `status` (403, 429, ...) and a short text body; `reason` is counted and logged. */
export interface Refused {
  ok: false;
  status: number;
  reason: string;
  body: string;
  headers?: Record<string, string>;
}

/** The admission hook. */
export type Admit = (request: AdmitRequest) => Admitted | Refused | Promise<Admitted | Refused>;

const admitted: Admitted = { ok: true, release() {} };

/** Today's policy: every request that passed the edge's checks is served. */
export const admitAll: Admit = function admitAll() {
  return admitted;
};
