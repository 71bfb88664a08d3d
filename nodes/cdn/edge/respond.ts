/**
 * Writing the edge's answers: an object from the store or a body still
 * arriving from the origin, with `X-Cache` and `Age`, answered 304 when the
 * client's copy is current, 206 or 416 for a byte range, headers only for
 * HEAD; and the edge's own short text answers (400, 405, 502, 504).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CacheOutcome } from './access-log.ts';
import { notModified, type Validators } from './conditional.ts';
import { parseRange } from '../../io/web/range.ts';
import type { SharedBody } from './shared-body.ts';

/** What a response did, for the access log. */
export interface Sent {
  status: number;
  bytes: number;
  /** When the headers were written (performance.now()). */
  headersAt: number;
}

/** Headers a 304 carries over from the full response (RFC 9110 §15.4.5). */
const notModifiedHeaders = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'];

/** Answers with a short text body (`message` plus a newline). */
export function sendText(response: ServerResponse, status: number, message: string, headers: OutgoingHttpHeaders = {}): Sent {
  const body = `${message}\n`;
  const at = performance.now();
  if (!response.headersSent && !response.destroyed) {
    response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
    response.end(body);
  }
  return { status, bytes: Buffer.byteLength(body), headersAt: at };
}

/** What to send: status and headers of the response, its body, and how the cache answered. */
export interface Sendable {
  status: number;
  headers: OutgoingHttpHeaders;
  body: SharedBody;
  cache: CacheOutcome;
  /** Seconds for the `Age` header. */
  ageSeconds: number;
  validators: Validators;
  /** The full length when known (a complete body, or a declared `Content-Length`). */
  length: number | undefined;
}

/** Sends `what` to the client, streaming the body as it arrives; resolves when done. */
export async function sendObject(request: IncomingMessage, response: ServerResponse, what: Sendable): Promise<Sent> {
  const headers: OutgoingHttpHeaders = { ...what.headers, 'X-Cache': what.cache, Age: String(what.ageSeconds) };
  const at = performance.now();
  if (response.destroyed) return { status: what.status, bytes: 0, headersAt: at };
  if (what.status === 200 && notModified(request.headers, what.validators)) {
    const kept: OutgoingHttpHeaders = { 'X-Cache': what.cache, Age: String(what.ageSeconds) };
    for (const name of notModifiedHeaders) if (what.headers[name] !== undefined) kept[name] = what.headers[name];
    response.writeHead(304, kept);
    response.end();
    return { status: 304, bytes: 0, headersAt: at };
  }
  let status = what.status;
  let start = 0;
  let end: number | undefined;
  if (what.status === 200 && what.length !== undefined) {
    headers['accept-ranges'] = 'bytes';
    const range = parseRange(request.headers.range, what.length);
    if (range === 'unsatisfiable') {
      return sendText(response, 416, 'range not satisfiable', { 'Content-Range': `bytes */${what.length}`, 'X-Cache': what.cache });
    }
    if (range) {
      status = 206;
      start = range.start;
      end = range.end;
      headers['content-range'] = `bytes ${start}-${end}/${what.length}`;
    }
  }
  delete headers['content-length'];
  if (what.length !== undefined) headers['content-length'] = String(end !== undefined ? end - start + 1 : what.length);
  response.writeHead(status, headers);
  if (request.method === 'HEAD' || status === 204 || status === 304) {
    response.end();
    return { status, bytes: 0, headersAt: at };
  }
  const outcome = await what.body.pipeTo(response, start, end);
  const sent = outcome.bytes;
  return { status, bytes: sent, headersAt: at };
}
