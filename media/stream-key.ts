/**
 * Stream keys and stream names: what characters they may hold and how they
 * appear in logs. One definition shared by ingest (which refuses unsafe
 * keys), the operators downstream (which log stream names) and the origin
 * (which turns stream names into URL path segments), so a stream accepted at
 * ingest is never refused at the origin.
 */

/**
 * A stream name or key that is safe as a URL path segment and a file name:
 * letters, digits, `_`, `-` and `.`, starting with a letter or digit (so
 * never `.`, `..`, a hidden file or something read as an option), 1 to 128
 * characters.
 */
export const SAFE_STREAM_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Describes `SAFE_STREAM_KEY` in messages. */
export const SAFE_STREAM_KEY_RULE = 'letters, digits, `_`, `-` and `.`, starting with a letter or digit, up to 128 characters';

/**
 * Whether `key` may name a stream (see `SAFE_STREAM_KEY`).
 * @example isSafeStreamKey('cam-1') // true
 * @example isSafeStreamKey('../x') // false
 */
export function isSafeStreamKey(key: string): boolean {
  return typeof key === 'string' && SAFE_STREAM_KEY.test(key);
}

/**
 * The form of a stream key or stream name that may appear in a log line:
 * its first four characters and `…`, or `****` when it has four or fewer (a
 * short key would be shown whole). Keys are secrets; a stream named by its
 * key must be logged through this everywhere.
 * @example keyForLog('abcdefgh') // 'abcd…'
 */
export function keyForLog(key: string): string {
  const text = String(key);
  return text.length <= 4 ? '****' : `${text.slice(0, 4)}…`;
}

/**
 * A string a client sent (an RTMP application name, a protocol error's
 * text) as a log line may hold it: control characters replaced (no forged
 * lines), at most `max` characters (a client cannot make every refusal
 * line megabytes long).
 * @example clientTextForLog('a'.repeat(100)) // 'aaa…' (64 characters and `…`)
 */
export function clientTextForLog(text: string, max = 64): string {
  const clean = String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length <= max ? clean : `${clean.slice(0, max)}…`;
}
