/**
 * Media items as bytes, for a Kafka topic between hosts: each message holds
 * one packet (or end) whole, so a consumer can start at any offset. The
 * layout, version 1:
 *
 *   "AMW1" | u32 header length | header (JSON) | the packet's data
 *
 * The header holds every field of the item but `data`; the track's decoder
 * configuration is base64 in it (a few dozen bytes). Timestamps stay
 * integers in the track's timescale, as JSON numbers (exact up to 2^53).
 */
import { MediaFormatError } from './format-error.ts';
import type { MediaEnd, MediaItem, MediaPacket, TrackInfo } from './packet.ts';

const magic = Buffer.from('AMW1', 'latin1');
const fixed = magic.length + 4;

/** The header of a packet on the wire. */
interface PacketHeader {
  stream: string;
  rendition: string;
  track: Omit<TrackInfo, 'config'> & { config: string };
  pts: number;
  dts: number;
  keyframe: boolean;
  discontinuity?: boolean;
  arrival?: number;
  renditions?: readonly string[];
}

/** Encodes a media item as one message. */
export function encodeMediaItem(item: MediaItem): Buffer {
  let header: PacketHeader | MediaEnd;
  let data: Buffer;
  if ((item as MediaEnd).end === true) {
    const end = item as MediaEnd;
    header = { stream: end.stream, ...(end.rendition !== undefined && { rendition: end.rendition }), end: true };
    data = Buffer.alloc(0);
  } else {
    const packet = item as MediaPacket;
    header = {
      stream: packet.stream,
      rendition: packet.rendition,
      track: { ...packet.track, config: packet.track.config.toString('base64') },
      pts: packet.pts,
      dts: packet.dts,
      keyframe: packet.keyframe,
      ...(packet.discontinuity !== undefined && { discontinuity: packet.discontinuity }),
      ...(packet.arrival !== undefined && { arrival: packet.arrival }),
      ...(packet.renditions !== undefined && { renditions: packet.renditions }),
    };
    data = packet.data;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.allocUnsafe(fixed);
  magic.copy(prefix, 0);
  prefix.writeUInt32BE(json.length, magic.length);
  return Buffer.concat([prefix, json, data]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

/**
 * Decodes one message back into the media item, or returns the
 * `MediaFormatError` saying what is wrong (bytes from a topic are not
 * trusted: a wrong producer, another version).
 */
export function decodeMediaItem(bytes: Buffer): MediaItem | MediaFormatError {
  if (bytes.length < fixed || !bytes.subarray(0, magic.length).equals(magic)) return new MediaFormatError('not a media message (no `AMW1` mark): was it written by another producer?');
  const length = bytes.readUInt32BE(magic.length);
  if (fixed + length > bytes.length) return new MediaFormatError(`media message header of ${length} bytes runs past the message's ${bytes.length}`);
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(fixed, fixed + length).toString('utf8'));
  } catch {
    return new MediaFormatError('media message header is not JSON');
  }
  if (!isRecord(header) || typeof header.stream !== 'string' || header.stream === '') return new MediaFormatError('media message header has no `stream`');
  if (header.end === true) {
    if (header.rendition !== undefined && typeof header.rendition !== 'string') return new MediaFormatError('media end has a `rendition` that is not text');
    return { stream: header.stream, ...(header.rendition !== undefined && { rendition: header.rendition as string }), end: true };
  }
  const track = header.track;
  if (typeof header.rendition !== 'string' || !isRecord(track)) return new MediaFormatError('media packet header has no `rendition` or `track`');
  if (!isInteger(header.pts) || !isInteger(header.dts) || typeof header.keyframe !== 'boolean') return new MediaFormatError('media packet header has no integer `pts`/`dts` or no `keyframe`');
  if ((track.kind !== 'video' && track.kind !== 'audio') || typeof track.codec !== 'string' || typeof track.codecString !== 'string' || !isInteger(track.timescale) || track.timescale <= 0 || typeof track.config !== 'string') {
    return new MediaFormatError('media packet header has a malformed `track`');
  }
  const packet: MediaPacket = {
    stream: header.stream,
    rendition: header.rendition,
    track: { ...(track as unknown as TrackInfo), config: Buffer.from(track.config, 'base64') },
    pts: header.pts,
    dts: header.dts,
    keyframe: header.keyframe,
    data: Buffer.from(bytes.subarray(fixed + length)),
  };
  if (typeof header.discontinuity === 'boolean') packet.discontinuity = header.discontinuity;
  if (typeof header.arrival === 'number') packet.arrival = header.arrival;
  if (Array.isArray(header.renditions) && header.renditions.every((name) => typeof name === 'string')) packet.renditions = header.renditions;
  return packet;
}
