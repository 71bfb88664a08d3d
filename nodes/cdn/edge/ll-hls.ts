/**
 * What the edge understands of HLS: LL-HLS blocking playlist requests
 * (`_HLS_msn`, `_HLS_part`, `_HLS_skip`), keyed so every player asking for
 * the same (playlist, msn, part) shares one origin request; and the links
 * in a media playlist (the `#EXTINF` segments and the preload-hinted part)
 * for prefetching. A small line parser: `media/hls/playlist.ts` only
 * writes playlists.
 */

/** The LL-HLS delivery directives, in a fixed order. */
const directives = ['_HLS_msn', '_HLS_part', '_HLS_skip'];

/**
 * For a blocking playlist reload (`index.m3u8?_HLS_msn=5&_HLS_part=2`), the
 * request target with its query normalised (directives in a fixed order,
 * other parameters after them sorted), so spellings that mean the same
 * request share a key; undefined for any other request.
 */
export function blockingTarget(url: URL): string | undefined {
  if (!url.pathname.endsWith('.m3u8') || !url.searchParams.has('_HLS_msn')) return undefined;
  const parts: string[] = [];
  for (const name of directives) {
    const value = url.searchParams.get(name);
    if (value !== null) parts.push(`${name}=${encodeURIComponent(value)}`);
  }
  const others = [...url.searchParams].filter(([name]) => !directives.includes(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, value] of others) parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return `${url.pathname}?${parts.join('&')}`;
}

/** Whether a response is an HLS playlist, by its content type or its path. */
export function isPlaylist(path: string, contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/vnd.apple.mpegurl' || type === 'application/x-mpegurl' || type === 'audio/mpegurl' || path.split('?')[0].endsWith('.m3u8');
}

/** The links of a media playlist, as request targets on the edge (path and query). */
export interface PlaylistLinks {
  segments: string[];
  preloadHint?: string;
  /** `#EXT-X-ENDLIST`: a finished (on-demand) playlist. */
  ended: boolean;
}

/** Reads the segment URIs and the preload-hinted part of a playlist fetched from `playlistPath`. */
export function playlistLinks(text: string, playlistPath: string): PlaylistLinks {
  const base = new URL(playlistPath, 'http://edge');
  const target = (uri: string): string | undefined => {
    const url = new URL(uri, base);
    // Links to other hosts are not this origin's to prefetch.
    return url.host === 'edge' ? url.pathname + url.search : undefined;
  };
  const segments: string[] = [];
  let preloadHint: string | undefined;
  let afterExtinf = false;
  let ended = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (line === '#EXT-X-ENDLIST') {
      ended = true;
    } else if (line.startsWith('#EXTINF:')) {
      afterExtinf = true;
    } else if (line.startsWith('#EXT-X-PRELOAD-HINT:')) {
      const type = /TYPE=([A-Z]+)/.exec(line)?.[1];
      const uri = /URI="([^"]+)"/.exec(line)?.[1];
      if (type === 'PART' && uri) preloadHint = target(uri);
    } else if (!line.startsWith('#') && afterExtinf) {
      const segment = target(line);
      if (segment) segments.push(segment);
      afterExtinf = false;
    }
  }
  return { segments, preloadHint, ended };
}
