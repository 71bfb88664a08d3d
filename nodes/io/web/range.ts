/**
 * `Range` requests (RFC 9110 §14), for every server that answers from bytes
 * it holds (the origin, the edge cache, the folder origin): one byte range
 * (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gives 206 with `Content-Range`; a
 * range past the end gives 416; several ranges, another unit or an invalid
 * range are ignored and the whole body is sent, as the RFC allows.
 */

/** A byte range asked for: `{start, end}` inclusive, `unsatisfiable`, or undefined to send the whole body. */
export function parseRange(header: string | undefined, length: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: the whole body is a valid answer (RFC 9110 14.2).
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || length === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(match[1]);
  // A last position before the first is not a valid range: ignored, the whole body goes (RFC 9110 14.1.1, 14.2).
  if (match[2] !== '' && Number(match[2]) < start) return undefined;
  const end = match[2] === '' ? length - 1 : Math.min(Number(match[2]), length - 1);
  if (start >= length) return 'unsatisfiable';
  return { start, end };
}
