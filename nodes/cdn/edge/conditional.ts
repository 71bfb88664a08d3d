/**
 * Conditional requests answered from a cached object (RFC 9110 §13):
 * `If-None-Match` against its `ETag` (weak comparison, as for GET), else
 * `If-Modified-Since` against its `Last-Modified`.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether a request names a header that can change what a stored answer
 * is (`If-None-Match`, `If-Modified-Since`, `Range`), read from its raw
 * header list: a plain request then never builds Node's header object,
 * which is made on first read.
 */
export function conditionalOrRange(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // Lengths, then the first letter (`r` or `i` in either case), before a lower-case copy is made:
    // names of those lengths that players and browsers send (`Cache-Control`, `Authorization`) make none.
    if (name.length !== 5 && name.length !== 13 && name.length !== 17) continue;
    const first = name.charCodeAt(0) | 0x20;
    if (first !== 0x72 && first !== 0x69) continue;
    const lower = name.toLowerCase();
    if (lower === 'range' || lower === 'if-none-match' || lower === 'if-modified-since') return true;
  }
  return false;
}

/** What a cached object offers for validation. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

function opaque(tag: string): string {
  return tag.trim().replace(/^W\//, '');
}

/** Whether the client's copy is current, so 304 Not Modified answers it. */
export function notModified(request: IncomingHttpHeaders, object: Validators): boolean {
  const inm = request['if-none-match'];
  if (inm !== undefined) {
    if (object.etag === undefined) return false;
    if (inm.trim() === '*') return true;
    const mine = opaque(object.etag);
    return inm.split(',').some((tag) => opaque(tag) === mine);
  }
  const ims = request['if-modified-since'];
  if (ims !== undefined && object.lastModified !== undefined) {
    const since = Date.parse(ims);
    const modified = Date.parse(object.lastModified);
    return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
  }
  return false;
}
