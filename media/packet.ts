/**
 * What flows on a `Media<caps>` edge: timestamped audio and video packets of
 * live streams, one item each, in batches like every other record.
 *
 * Video data is in the MP4/FLV form (NAL units each prefixed by a 4-byte
 * length, never Annex B start codes); audio data is one raw frame (AAC
 * without ADTS header). The decoder configuration travels in the track, so
 * a packager can write an init segment from any packet.
 *
 * `media/` holds pure media formats (containers, codec configurations,
 * these types): no I/O, no processes, no runtime. Operators, `native/` and
 * the runtime may all use it.
 */

/** A track's kind. */
export type TrackKind = 'video' | 'audio';

/** Codecs the engine carries; caps read `video/h264`, `audio/aac`. */
export type VideoCodec = 'h264' | 'hevc' | 'av1';
export type AudioCodec = 'aac' | 'opus';

/** One track of a stream: what a decoder needs, and what playlists advertise. */
export interface TrackInfo {
  kind: TrackKind;
  codec: VideoCodec | AudioCodec;
  /** RFC 6381 codec string, as playlists and MPDs write it: `avc1.64001f`, `mp4a.40.2`. */
  codecString: string;
  /** Units per second of `pts` and `dts`: 1000 from RTMP and FLV, 90000 from MPEG-TS. */
  timescale: number;
  /** The decoder configuration: an AVCDecoderConfigurationRecord (`avcC`), HEVC's `hvcC`, AAC's AudioSpecificConfig. */
  config: Buffer;
  width?: number;
  height?: number;
  /** Frames per second where known (from the SPS timing or the publisher's metadata). */
  fps?: number;
  sampleRate?: number;
  channels?: number;
}

/** One access unit (a video frame, an audio frame) of one track of one stream. */
export interface MediaPacket {
  /** The stream's identity: the publish key of an ingest. */
  stream: string;
  /** Which rendition of the stream: `source` from an ingest, the rung's name after `encode` (`720p`). */
  rendition: string;
  track: TrackInfo;
  /** Presentation and decode time in `track.timescale` units. */
  pts: number;
  dts: number;
  /** A video keyframe (IDR); every audio frame is one. */
  keyframe: boolean;
  data: Buffer;
  /** Timestamps do not follow on from the previous packet of this stream: a publisher reconnected, an encoder restarted. */
  discontinuity?: boolean;
  /** When the packet reached the engine (ms since the epoch), for latency figures. */
  arrival?: number;
  /**
   * Every video rendition of the stream, as the node that makes them plans
   * them (`encode`: `source` when passed through, then its rungs), on the
   * keyframes it emits. A packager passes it on with a track's init, so the
   * origin lists the stream in a master playlist as soon as each of them has
   * a segment, instead of holding it for `master_wait`.
   */
  renditions?: readonly string[];
}

/** The end of a stream (a publish ended): downstream closes it within a second, not after a grace period. */
export interface MediaEnd {
  stream: string;
  /** The rendition that ended; absent: every rendition of the stream. */
  rendition?: string;
  end: true;
}

/** An item on a `Media<...>` edge. */
export type MediaItem = MediaPacket | MediaEnd;

/** Whether a media item is the end of a stream. */
export function isMediaEnd(item: MediaItem): item is MediaEnd {
  return (item as MediaEnd).end === true;
}

/** The caps a track is typed with on an edge: `video/h264`, `audio/aac`. */
export function capsOf(track: Pick<TrackInfo, 'kind' | 'codec'>): string {
  return `${track.kind}/${track.codec}`;
}
