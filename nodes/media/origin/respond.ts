/**
 * How the origin answers: bodies from memory with single byte ranges (206,
 * 416), the content types and cache lifetimes of each kind of object, and
 * plain-text errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseRange } from '../../io/web/range.ts';

/** The kinds of object the origin serves, each with its type and cache lifetime. */
export const objectKinds = {
  playlist: { type: 'application/vnd.apple.mpegurl', cache: 'no-cache' },
  mpd: { type: 'application/dash+xml', cache: 'no-cache' },
  // A part never changes once complete, but parts are short-lived: caches keep them briefly.
  part: { type: 'video/iso.segment', cache: 'public, max-age=1' },
  segment: { type: 'video/iso.segment', cache: 'public, max-age=31536000, immutable' },
  // Segment and init names carry the publish's epoch and a version (`init-{epoch}-2.mp4`): a name never gets other bytes.
  init: { type: 'video/mp4', cache: 'public, max-age=31536000, immutable' },
  page: { type: 'text/html; charset=utf-8', cache: 'no-cache' },
  script: { type: 'text/javascript; charset=utf-8', cache: 'public, max-age=3600' },
} as const;

export type ObjectKind = keyof typeof objectKinds;


/** Sends a body from memory with its kind's headers, honouring `Range` and `HEAD`. */
export function sendObject(request: IncomingMessage, response: ServerResponse, kind: ObjectKind, body: Buffer | string, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const base: Record<string, string | number> = { 'Content-Type': objectKinds[kind].type, 'Cache-Control': objectKinds[kind].cache, 'Accept-Ranges': 'bytes', ...headers };
  const range = parseRange(request.headers.range, bytes.length);
  if (range === 'unsatisfiable') {
    response.writeHead(416, { ...base, 'Content-Range': `bytes */${bytes.length}`, 'Content-Length': 0 });
    response.end();
    return;
  }
  const slice = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1);
  if (range !== undefined) base['Content-Range'] = `bytes ${range.start}-${range.end}/${bytes.length}`;
  response.writeHead(range === undefined ? 200 : 206, { ...base, 'Content-Length': slice.length });
  response.end(request.method === 'HEAD' ? undefined : slice);
}

/** A plain-text error answer. */
export function sendError(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (response.headersSent || response.destroyed) return;
  const body = `${message}\n`;
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', 'Content-Length': Buffer.byteLength(body), ...headers });
  response.end(body);
}
