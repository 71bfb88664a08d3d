/**
 * The one place where the edge decides whether to serve a request: the
 * `admit` step, run after the request passed the edge's own checks and
 * before any lookup. Access policies (signed URLs, rate limits, IP lists,
 * geo rules: `nodes/cdn/access/`) plug in here; the default admits all.
 * An admitted request's `release` runs exactly once when it ends (answered,
 * failed or abandoned), so a policy can cap concurrent requests per client.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** What `admit` sees of a request. */
export interface AdmitRequest {
  /** The client's IP address, as the socket gives it. */
  client: string;
  method: string;
  /** The request target as received: path and query. */
  target: string;
  /** The target's path, percent-encoded as received. */
  path: string;
  /** The target's query without its `?`; empty when none. */
  query: string;
  /** The parsed request URL (`http://edge/path?query`), built on first use only. */
  readonly url: URL;
  headers: IncomingHttpHeaders;
  /** The edge's name (`name` setting). */
  edge: string;
}

/** Served: `release` runs when the request ends. */
export interface Admitted {
  ok: true;
  /** {@link releaseNothing} when nothing is held: the edge then need not wait for the answer to end. */
  release(): void;
  /**
   * When the request came on a signed link: the playlist text signed for
   * it (each link it names gets a signature of its own), applied to HLS
   * playlists the edge sends it.
   */
  rewritePlaylist?(body: string): string;
  /**
   * The target to look up and forward instead of the one received, when the
   * policy consumed part of it (a signed link's `expires` and `sig`: every
   * player's link to one object then shares one cached copy, and the origin
   * never sees signatures).
   */
  target?: string;
}

/** The release of a request that holds nothing. */
export function releaseNothing(): void {}

/** The {@link AdmitRequest} of a request whose target is `target` (the URL is parsed only if read). */
export function admitRequest(request: IncomingMessage, target: string, method: string, edge: string): AdmitRequest {
  return new RequestForAdmit(request, target, method, edge);
}

class RequestForAdmit implements AdmitRequest {
  readonly client: string;
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly edge: string;
  #url: URL | undefined;

  constructor(request: IncomingMessage, target: string, method: string, edge: string) {
    this.client = request.socket.remoteAddress ?? '';
    this.method = method;
    this.target = target;
    const mark = target.indexOf('?');
    this.path = mark < 0 ? target : target.slice(0, mark);
    this.query = mark < 0 ? '' : target.slice(mark + 1);
    this.headers = request.headers;
    this.edge = edge;
  }

  get url(): URL {
    return (this.#url ??= new URL(this.target, 'http://edge'));
  }
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

const admitted: Admitted = Object.freeze({ ok: true as const, release: releaseNothing });

/** Today's policy: every request that passed the edge's checks is served. */
export const admitAll: Admit = function admitAll() {
  return admitted;
};
