/**
 * `Range` requests served from cached bytes (RFC 9110 §14): one byte range
 * (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gives 206 with `Content-Range`; a
 * range past the end gives 416; several ranges, or a header that is not a
 * byte range, are ignored and the whole object is sent, as the RFC allows.
 */

/** The byte range to send, `unsatisfiable`, or undefined for the whole object. */
export function parseRange(header: string | undefined, length: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes=(\d*)-(\d*)\s*$/.exec(header);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || length === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? length - 1 : Math.min(Number(match[2]), length - 1);
  if (start >= length || end < start) return 'unsatisfiable';
  return { start, end };
}
