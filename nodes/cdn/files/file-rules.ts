/**
 * What a file origin says about each file: its content type, its
 * `Cache-Control` (the first rule whose pattern matches, else the default)
 * and its cache tags (`Surrogate-Key`, every matching rule's tags), which
 * edges use for purges by tag.
 */
import { posix } from 'node:path';

/** A rule's pattern: a glob over the path below the prefix (`**` crosses folders); without a `/` it matches the file name in any folder. */
export function matchesPattern(relativePath: string, pattern: string): boolean {
  const target = pattern.includes('/') ? relativePath : posix.basename(relativePath);
  return posix.matchesGlob(target, pattern);
}

/** Content types by extension; anything else is `application/octet-stream`. */
const contentTypes: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.ts': 'video/mp2t',
  '.aac': 'audio/aac',
  '.vtt': 'text/vtt; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
};

export function contentTypeOf(relativePath: string): string {
  return contentTypes[posix.extname(relativePath).toLowerCase()] ?? 'application/octet-stream';
}

export interface CacheControlRule {
  match: string;
  cache_control: string;
}

export interface TagRule {
  match: string;
  tags: string[];
}

/** The `Cache-Control` of a file: the first matching rule's, else `fallback`. */
export function cacheControlOf(relativePath: string, rules: readonly CacheControlRule[], fallback: string): string {
  for (const rule of rules) if (matchesPattern(relativePath, rule.match)) return rule.cache_control;
  return fallback;
}

/** The tags of a file: those of every matching rule, in order, without repeats. */
export function tagsOf(relativePath: string, rules: readonly TagRule[]): string[] {
  const tags = new Set<string>();
  for (const rule of rules) if (matchesPattern(relativePath, rule.match)) for (const tag of rule.tags) tags.add(tag);
  return [...tags];
}
