/**
 * Token propagation for HLS behind signed URLs. A player given one signed
 * link to a playlist fetches the variants, segments and parts the playlist
 * names by their own URIs, which carry no signature: under a protected
 * prefix every one of them would be refused. So the edge, which holds the
 * key, rewrites a playlist it serves on a signed link: each URI that
 * resolves under a protected prefix gets its own `expires` (the link's own:
 * access ends when the link's does) and `sig`. A master playlist's variants,
 * then their segments, parts, maps, preload hints and rendition reports all
 * open, and nothing else does.
 *
 * Only the copy sent is rewritten (the cached playlist stays as the origin
 * sent it). URIs that name another host (`https://...`, `//host/...`) are
 * left alone. DASH manifests are not rewritten: a `SegmentTemplate` names
 * its segments by pattern, which no per-path signature can cover.
 */
import { canonicalPath, signature, underPrefix, type SigningKey } from './signed-url.ts';

/** Where the quoted value of a `URI` attribute starts in a tag line (after `URI="`), or -1 from `from` on. */
function uriAttribute(line: string, from: number): number {
  for (let at = line.indexOf('URI="', from); at >= 0; at = line.indexOf('URI="', at + 1)) {
    const before = line.charCodeAt(at - 1);
    // A whole attribute name: after the tag's ':' or a ',', not the tail of `X-FOO-URI`.
    if (before === 58 || before === 44) return at + 5;
  }
  return -1;
}

/**
 * The playlist `body`, served at `playlistPath` (its canonical path) on a
 * link valid until `expires`, with a signature on every URI under one of
 * `prefixes`. A URI that already has a query gets `&expires=...&sig=...`.
 */
export function signPlaylistUris(body: string, playlistPath: string, expires: number, key: SigningKey, prefixes: readonly string[]): string {
  const folder = playlistPath.slice(0, playlistPath.lastIndexOf('/') + 1);
  /** The URI with its signature added, or as it is when it needs none. */
  function signed(uri: string): string {
    if (uri === '' || uri.startsWith('//') || uri.includes('://') || uri.startsWith('data:')) return uri;
    let end = uri.length;
    const query = uri.indexOf('?');
    const fragment = uri.indexOf('#');
    if (fragment >= 0) end = fragment;
    if (query >= 0 && query < end) end = query;
    const path = canonicalPath(uri.charCodeAt(0) === 47 ? uri.slice(0, end) : folder + uri.slice(0, end));
    if (path === undefined || !underPrefix(prefixes, path)) return uri;
    const separator = query >= 0 && (fragment < 0 || query < fragment) ? '&' : '?';
    const token = `${separator}expires=${expires}&sig=${signature(key, path, expires)}`;
    return fragment >= 0 ? `${uri.slice(0, fragment)}${token}${uri.slice(fragment)}` : `${uri}${token}`;
  }

  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (trimmed === '') continue;
    if (trimmed.charCodeAt(0) !== 35) {
      lines[i] = signed(trimmed.trim()) + (trimmed === line ? '' : '\r');
      continue;
    }
    if (!trimmed.startsWith('#EXT')) continue;
    let rewritten = line;
    for (let start = uriAttribute(rewritten, 0); start >= 0; start = uriAttribute(rewritten, start)) {
      const close = rewritten.indexOf('"', start);
      if (close < 0) break;
      const value = signed(rewritten.slice(start, close));
      rewritten = rewritten.slice(0, start) + value + rewritten.slice(close);
      start += value.length;
    }
    lines[i] = rewritten;
  }
  return lines.join('\n');
}
