/**
 * The shape check `segment.hls` runs on every input item before it touches
 * the packager: a malformed item goes to the dead-letter port with the
 * reason, and never into a track's state.
 */
import type { MediaItem } from '../../../media/packet.ts';

const kinds = new Set(['video', 'audio']);

/** What is wrong with `item` as a media packet or stream end, or undefined when nothing is. */
export function packetProblem(item: unknown): string | undefined {
  if (typeof item !== 'object' || item === null) return 'not a media packet: expected an object';
  const media = item as Partial<Record<keyof MediaItem | 'end' | 'track' | 'data' | 'pts' | 'dts' | 'rendition' | 'keyframe', unknown>>;
  if (typeof media.stream !== 'string' || media.stream === '') return 'not a media packet: `stream` must be a non-empty string';
  if (media.end === true) return media.rendition === undefined || typeof media.rendition === 'string' ? undefined : 'stream end: `rendition` must be a string';
  if (typeof media.rendition !== 'string' || media.rendition === '') return 'not a media packet: `rendition` must be a non-empty string';
  const track = media.track as Record<string, unknown> | undefined;
  if (typeof track !== 'object' || track === null) return 'not a media packet: `track` is missing';
  if (!kinds.has(track.kind as string)) return `media packet: track kind \`${String(track.kind)}\` is neither \`video\` nor \`audio\``;
  if (typeof track.timescale !== 'number' || !(track.timescale > 0) || !Number.isInteger(track.timescale)) return 'media packet: `track.timescale` must be a positive integer';
  if (!Buffer.isBuffer(track.config)) return 'media packet: `track.config` (the decoder configuration) must be a Buffer';
  if (!Buffer.isBuffer(media.data)) return 'media packet: `data` must be a Buffer';
  if (!Number.isSafeInteger(media.dts) || (media.dts as number) < 0) return `media packet: \`dts\` must be a non-negative integer (got ${String(media.dts)})`;
  if (!Number.isSafeInteger(media.pts)) return `media packet: \`pts\` must be an integer (got ${String(media.pts)})`;
  return undefined;
}
