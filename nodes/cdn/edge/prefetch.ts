/**
 * Prefetch: when a media playlist passing through the edge names segments
 * it did not name before, `count` of them that are neither cached nor
 * being fetched are fetched in the background, so the first player to ask
 * already finds them: the first ones of a finished (on-demand) playlist,
 * where players start; the newest of a live one, where players join (a
 * live playlist gains a segment per refresh: it is fetched once, ahead of
 * every player).
 */
import { playlistLinks } from './ll-hls.ts';

/** The playlists seen, remembered by path, bounded. */
const maxPlaylists = 1024;

/** Which segments to fetch ahead, per playlist. */
export class Prefetcher {
  readonly #count: number;
  readonly #seen = new Map<string, Set<string>>();

  constructor(count: number) {
    this.#count = count;
  }

  /**
   * The segments of playlist `path` (body `text`) to fetch now: new since
   * this playlist was last seen, and not `present` (cached or in flight).
   */
  next(path: string, text: string, present: (target: string) => boolean): string[] {
    if (this.#count <= 0) return [];
    const { segments, ended } = playlistLinks(text, path);
    const before = this.#seen.get(path);
    this.#seen.delete(path);
    this.#seen.set(path, new Set(segments));
    if (this.#seen.size > maxPlaylists) this.#seen.delete(this.#seen.keys().next().value as string);
    const fresh = segments.filter((segment) => !before?.has(segment) && !present(segment));
    return ended ? fresh.slice(0, this.#count) : fresh.slice(-this.#count);
  }
}
