/**
 * Object keys as the stores accept them. A key names an object below a
 * store's root (a bucket's prefix, a folder): relative, `/`-separated, with
 * no `.` or `..` part, so a key from a record or a stream name can never
 * reach outside the store, on S3 or on a file system.
 */

/** S3's longest key, in UTF-8 bytes. */
const maxKeyBytes = 1024;

/**
 * What is wrong with `key`, or `undefined` when it is a valid object key.
 *
 * @example keyProblem('live/cam1/video/1a-3.m4s') // undefined
 * @example keyProblem('../etc/passwd') // 'key `../etc/passwd` has a `..` part'
 */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'an object key must be a non-empty string';
  const shown = JSON.stringify(key).slice(1, -1);
  if (Buffer.byteLength(key) > maxKeyBytes) return `key \`${shown.slice(0, 60)}...\` is longer than ${maxKeyBytes} bytes`;
  if (key.startsWith('/')) return `key \`${shown}\` is absolute (starts with \`/\`): keys are relative to the store`;
  if (key.includes('\\')) return `key \`${shown}\` holds a backslash: keys are separated by \`/\``;
  // Control characters are legal in S3 keys but not in file names on every system, and break logs.
  if (/[\u0000-\u001f\u007f]/.test(key)) return `key \`${shown}\` holds a control character`;
  for (const part of key.split('/')) {
    if (part === '..') return `key \`${shown}\` has a \`..\` part`;
    if (part === '.') return `key \`${shown}\` has a \`.\` part`;
    if (part === '') return `key \`${shown}\` has an empty part (\`//\` or a trailing \`/\`)`;
  }
  return undefined;
}

/**
 * A store prefix normalised for joining: no leading `/`, one trailing `/`
 * when not empty. Its parts are checked like a key's; a bad one throws a
 * `TypeError` naming it.
 */
export function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return '';
  const problem = keyProblem(trimmed);
  if (problem !== undefined) throw new TypeError(`bad prefix: ${problem}`);
  return `${trimmed}/`;
}

/** Content types by file extension, for stores that keep none (a folder) and for writers that give none. */
const contentTypes: Record<string, string> = {
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.ts': 'video/mp2t',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** The content type a key's extension implies (`application/octet-stream` when none is known). */
export function contentTypeOf(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot > key.lastIndexOf('/') ? key.slice(dot).toLowerCase() : '';
  return contentTypes[ext] ?? 'application/octet-stream';
}
