/**
 * Turning a request's URL path into a file under a served folder, so that no
 * request can name a file outside it: the path is decoded once, anything
 * that could step out or smuggle a separator is refused before the file
 * system is asked, and the real path (symbolic links followed) must still
 * lie under the folder's real path.
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** Why a request path names no servable file. */
export type PathRefusal = { status: 400; reason: string } | { status: 404; reason: 'not found' };

/** Longest URL path taken; longer requests are refused, not looked up. */
export const maxPathLength = 4096;

/**
 * The relative path (`a/b.m3u8`, `/`-separated, no leading slash) a URL path
 * names below `prefix`, or why it is refused (400) or outside the prefix
 * (404). Encoded slashes and backslashes, `.`/`..` segments in any
 * encoding, NUL and other control characters are refused outright: a
 * well-formed client never sends them, and refusing is safer than guessing
 * what another server along the way made of them.
 */
export function relativeRequestPath(urlPath: string, prefix: string): string | PathRefusal {
  if (urlPath.length > maxPathLength) return { status: 400, reason: 'path too long' };
  if (/%2f|%5c|%00/i.test(urlPath)) return { status: 400, reason: 'encoded separator in path' };
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { status: 400, reason: 'malformed percent-encoding in path' };
  }
  // Decoding twice is how double-encoded `%252e%252e` would slip through another hop: refuse a `%` left after one decode.
  if (/[\u0000-\u001f\u007f\\%]/.test(decoded)) return { status: 400, reason: 'control character, backslash or percent sign in path' };
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  if (!decoded.startsWith(base)) return { status: 404, reason: 'not found' };
  const rest = decoded.slice(base.length);
  const segments = rest.split('/');
  if (segments.some((segment) => segment === '.' || segment === '..')) return { status: 400, reason: 'dot segment in path' };
  if (segments.some((segment, i) => segment === '' && i < segments.length - 1)) return { status: 400, reason: 'empty segment in path' };
  return rest;
}

/** A file found for a request: its real path and what `stat` said. */
export interface FoundFile {
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * The regular file `relative` names under `root` (whose real path is
 * `realRoot`), or undefined: missing, a folder, or (through a symbolic
 * link) outside the root.
 */
export async function findFile(realRoot: string, relative: string): Promise<FoundFile | undefined> {
  if (relative === '' || relative.endsWith('/')) return undefined;
  let real: string;
  try {
    real = await realpath(join(realRoot, ...relative.split('/')));
  } catch {
    return undefined;
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return undefined;
  const info = await stat(real).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  return { path: real, size: info.size, mtimeMs: info.mtimeMs };
}
