/**
 * One request to the origin, its body poured into a `SharedBody` as it
 * arrives. The body is verified against `Content-Length`: fewer bytes (the
 * origin closed early) or more (the surplus breaks the next response on a
 * kept-alive connection) fail it, so nothing half-sent is cached and every
 * reader's connection is broken instead of ended as if whole. A body larger
 * than `maxObject` turns pass-through: nothing is kept, and the origin is
 * paused while the slowest reader lags.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SharedBody } from './shared-body.ts';

/** Kept-alive connections to origins, shared by the requests of one edge. */
/** Request headers passed to the origin, besides those the object's `Vary` names. */
// `traceparent`/`tracestate`: the origin's span continues the edge's (see `traceRequest`).
const passedRequestHeaders = ['accept', 'accept-encoding', 'accept-language', 'user-agent', 'traceparent', 'tracestate'];

/** The client's headers the origin request carries: the content-negotiation ones and those `vary` names. */
export function originRequestHeaders(requestHeaders: IncomingHttpHeaders, vary: readonly string[] = []): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const name of [...passedRequestHeaders, ...vary]) {
    const value = requestHeaders[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

export interface OriginAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

/** Agents for one edge; `destroy` them when it stops. */
export function originAgents(): OriginAgents {
  return { http: new HttpAgent({ keepAlive: true, maxSockets: 256 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }) };
}

/** An origin response whose headers arrived; its body keeps arriving into `body`. */
export interface OriginHead {
  kind: 'response';
  status: number;
  headers: IncomingHttpHeaders;
  body: SharedBody;
  /** Whether the body fits `maxObject` so far (false once it turned pass-through). */
  readonly storable: boolean;
  /** Resolves true once the body is complete and its length checked, false if it failed. */
  done: Promise<boolean>;
  /** Gives up the request (no reader is left of a pass-through body). */
  abort(): void;
}

/** Why there is no response: the connection failed (502) or the origin was too slow (504). */
export interface OriginFailure {
  kind: 'connect' | 'timeout';
  message: string;
}

/** What to ask the origin for. */
export interface OriginRequest {
  origin: URL;
  /** Path and query, already checked. */
  path: string;
  headers: OutgoingHttpHeaders;
  /** Until the response headers, and the longest silence within the body. */
  timeoutMs: number;
  maxObject: number;
  agents: OriginAgents;
}

/** Sends one GET to the origin. */
export function fetchOrigin(options: OriginRequest): Promise<OriginHead | OriginFailure> {
  return new Promise((resolve) => {
    const secure = options.origin.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    const basePath = options.origin.pathname.replace(/\/+$/, '');
    let settled = false;
    let head: OriginHead | undefined;
    let broken = false;
    const request = send({
      protocol: options.origin.protocol,
      hostname: options.origin.hostname,
      port: options.origin.port,
      method: 'GET',
      path: basePath + options.path,
      headers: { ...options.headers, host: options.origin.host },
      agent: secure ? options.agents.https : options.agents.http,
    });
    const timer = setTimeout(function originTimedOut() {
      if (settled) return;
      settled = true;
      request.destroy();
      resolve({ kind: 'timeout', message: `the origin did not answer within ${options.timeoutMs} ms` });
    }, options.timeoutMs);
    request.on('error', function originRequestFailed(error: NodeJS.ErrnoException) {
      // After the headers: a surplus past Content-Length (a parse error) or a reset; the body is not whole.
      broken = true;
      head?.body.fail();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ kind: 'connect', message: `cannot reach the origin: ${error.code ?? error.message}` });
    });
    request.on('response', function originResponded(response: IncomingMessage) {
      if (settled) {
        response.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      const declaredText = response.headers['content-length'];
      const declared = declaredText !== undefined && /^\d+$/.test(declaredText) ? Number(declaredText) : undefined;
      const body = new SharedBody(declared);
      let storable = declared === undefined || declared <= options.maxObject;
      const turnPassThrough = (): void => {
        storable = false;
        body.passThrough((paused) => (paused ? response.pause() : response.resume()));
      };
      if (!storable) turnPassThrough();
      response.setTimeout(options.timeoutMs, () => response.destroy(new Error('origin body timed out')));
      const done = new Promise<boolean>((finish) => {
        response.on('data', (chunk: Buffer) => {
          body.push(chunk);
          if (storable && body.length > options.maxObject) turnPassThrough();
        });
        response.on('end', () => {
          // A surplus past Content-Length shows as a request error before `end` (the parser fails on it).
          if (broken || (declared !== undefined && body.length !== declared)) {
            body.fail();
            finish(false);
            return;
          }
          body.end();
          finish(true);
        });
        response.on('close', () => {
          if (body.state === 'open') body.fail();
          finish(body.state === 'complete');
        });
        response.on('error', () => body.fail());
      });
      head = {
        kind: 'response',
        status: response.statusCode ?? 502,
        headers: response.headers,
        body,
        get storable() {
          return storable;
        },
        done,
        abort: () => response.destroy(),
      };
      resolve(head);
    });
    request.end();
  });
}
