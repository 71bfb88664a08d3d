/**
 * Turning a request's URL path into a file under a served folder, so that no
 * request can name a file outside it: the path is decoded once, anything
 * that could step out or smuggle a separator is refused before the file
 * system is asked, and the real path (symbolic links followed) must still
 * lie under the folder's real path.
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { targetProblem } from '../edge/request-check.ts';

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
  // Dot segments in any encoding, encoded slashes and backslashes, control characters: the edge's own checks.
  const problem = targetProblem(urlPath);
  if (problem !== undefined) return { status: 400, reason: problem };
  const decoded = decodeURIComponent(urlPath);
  // A `%` left after one decoding is double encoding, which another hop may decode again: refused.
  if (decoded.includes('%')) return { status: 400, reason: 'percent sign in path after decoding' };
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  if (!decoded.startsWith(base)) return { status: 404, reason: 'not found' };
  const segments = decoded.slice(base.length).split('/');
  if (segments.some((segment, i) => segment === '' && i < segments.length - 1)) return { status: 400, reason: 'empty segment in path' };
  return segments.join('/');
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
