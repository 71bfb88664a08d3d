/**
 * Writing the edge's answers: an object from the store or a body still
 * arriving from the origin, with `X-Cache` and `Age`, answered 304 when the
 * client's copy is current, 206 or 416 for a byte range, headers only for
 * HEAD; and the edge's own short text answers (400, 405, 502, 504).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CacheOutcome } from './access-log.ts';
import { conditionalOrRange, notModified, type Validators } from './conditional.ts';
import type { OriginFailure } from './fetch-origin.ts';
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

/** Answers for want of the origin: 504 when it was too slow, else 502, with why. */
export function sendOriginFailure(response: ServerResponse, failure: OriginFailure): Sent {
  const timeout = failure.kind === 'timeout';
  return sendText(response, timeout ? 504 : 502, `${timeout ? 'gateway timeout' : 'bad gateway'}: ${failure.message}`);
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
  /**
   * The headers of a whole 200 answer (the object's, `X-Cache`, `Age`,
   * `Accept-Ranges`, `Content-Length`) as the flat list `writeHead` takes,
   * when the caller keeps them built: a hit then costs no header object.
   */
  prepared?: readonly (string | number | string[])[];
}

/**
 * The flat header list of a whole 200 answer of `what` (see
 * {@link Sendable.prepared}), for a caller to keep while the object, its
 * cache outcome and its age stay the same.
 */
export function prepareHeaders(what: Sendable): (string | number | string[])[] {
  const list: (string | number | string[])[] = [];
  for (const name in what.headers) {
    const value = what.headers[name];
    if (value !== undefined && name !== 'content-length' && name !== 'accept-ranges') list.push(name, value);
  }
  list.push('X-Cache', what.cache, 'Age', String(what.ageSeconds));
  if (what.length !== undefined) list.push('accept-ranges', 'bytes', 'content-length', String(what.length));
  return list;
}

/**
 * Sends `what` to the client. A complete, retained body is written at once
 * (the socket holds references to the stored chunks, nothing is copied)
 * and the answer is returned without waiting; a body still arriving is
 * streamed as it grows, and the promise resolves when it is done.
 */
export function sendObject(request: IncomingMessage, response: ServerResponse, what: Sendable): Sent | Promise<Sent> {
  const at = performance.now();
  if (response.destroyed) return { status: what.status, bytes: 0, headersAt: at };
  // A request without validators or a range gets the whole answer: its header object is not even built.
  const narrowing = what.status === 200 && conditionalOrRange(request.rawHeaders);
  if (narrowing && notModified(request.headers, what.validators)) {
    const kept: OutgoingHttpHeaders = { 'X-Cache': what.cache, Age: String(what.ageSeconds) };
    for (const name of notModifiedHeaders) if (what.headers[name] !== undefined) kept[name] = what.headers[name];
    response.writeHead(304, kept);
    response.end();
    return { status: 304, bytes: 0, headersAt: at };
  }
  let status = what.status;
  let start = 0;
  let end: number | undefined;
  const range = narrowing && what.length !== undefined ? parseRange(request.headers.range, what.length) : undefined;
  if (range === 'unsatisfiable') {
    return sendText(response, 416, 'range not satisfiable', { 'Content-Range': `bytes */${what.length}`, 'X-Cache': what.cache });
  }
  if (range) {
    status = 206;
    start = range.start;
    end = range.end;
  }
  if (what.prepared !== undefined && status === 200) response.writeHead(200, what.prepared as string[]);
  else {
    const headers: OutgoingHttpHeaders = { ...what.headers, 'X-Cache': what.cache, Age: String(what.ageSeconds) };
    if (what.status === 200 && what.length !== undefined) headers['accept-ranges'] = 'bytes';
    if (range) headers['content-range'] = `bytes ${start}-${end}/${what.length}`;
    delete headers['content-length'];
    if (what.length !== undefined) headers['content-length'] = String(end !== undefined ? end - start + 1 : what.length);
    response.writeHead(status, headers);
  }
  if (request.method === 'HEAD' || status === 204 || status === 304) {
    response.end();
    return { status, bytes: 0, headersAt: at };
  }
  const body = what.body;
  if (body.state === 'complete' && body.joinable) {
    // The whole of a body kept in one buffer (a hit, most often) goes out as it is kept.
    const whole = range === undefined ? body.whole() : undefined;
    if (whole !== undefined) {
      response.end(whole);
      return { status, bytes: whole.length, headersAt: at };
    }
    const pieces = body.slice(start, end === undefined ? body.length : end + 1);
    let bytes = 0;
    // One piece goes out with the headers in one write; several are corked into one writev.
    if (pieces.length === 1) {
      bytes = pieces[0].length;
      response.end(pieces[0]);
    } else {
      response.cork();
      for (const piece of pieces) {
        bytes += piece.length;
        response.write(piece);
      }
      response.end();
      response.uncork();
    }
    return { status, bytes, headersAt: at };
  }
  return body.pipeTo(response, start, end).then((outcome) => ({ status, bytes: outcome.bytes, headersAt: at }));
}

/**
 * Whether `response` has ended and every byte of it has been handed to the
 * operating system: what its `finish` event, a tick later, would say.
 */
export function handedOver(response: ServerResponse): boolean {
  return response.writableEnded && response.writableLength === 0;
}

/** Resolves with `sent` once `response` has ended (finished or closed). */
export function ended(response: ServerResponse, sent: Sent): Promise<Sent> {
  if (response.writableFinished || response.destroyed) return Promise.resolve(sent);
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('finish', done);
      response.off('close', done);
      resolve(sent);
    };
    response.on('finish', done);
    response.on('close', done);
  });
}

/**
 * Sends an HLS playlist with its links signed for this client (`rewrite`):
 * the whole text, 200, never a range or a 304 (the copy is this client's,
 * so the origin's validators do not describe it), and `private, no-store`
 * so no shared cache keeps one client's signatures for another.
 */
export function sendSignedPlaylist(request: IncomingMessage, response: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: SharedBody, cache: CacheOutcome, ageSeconds: number, rewrite: (text: string) => string): Sent {
  const at = performance.now();
  if (response.destroyed) return { status, bytes: 0, headersAt: at };
  const text = Buffer.from(rewrite(Buffer.concat(body.chunks).toString('utf8')), 'utf8');
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (name !== 'etag' && name !== 'last-modified' && name !== 'content-length' && name !== 'cache-control' && name !== 'accept-ranges') out[name] = headers[name];
  }
  out['cache-control'] = 'private, no-store';
  out['content-length'] = String(text.length);
  out['X-Cache'] = cache;
  out.Age = String(ageSeconds);
  response.writeHead(status, out);
  if (request.method === 'HEAD') {
    response.end();
    return { status, bytes: 0, headersAt: at };
  }
  response.end(text);
  return { status, bytes: text.length, headersAt: at };
}
