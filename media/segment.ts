/**
 * What flows on a `Segment<cmaf>` edge: the output of the CMAF packager
 * (`segment.hls`), which the origin (`serve.http`) keeps in a window and
 * renders as HLS playlists and DASH manifests. One set of bytes serves both.
 *
 * A CMAF track is one kind (video or audio) of one rendition of one stream,
 * named `track` (`720p`, `source`, `audio`); its URLs are
 * `/live/{stream}/{track}/init-{epoch}-{version}.mp4`, `/{epoch}-{msn}.m4s` and
 * `/{epoch}-{msn}.{part}.m4s`, where the epoch names one publish: a URL never
 * names two different contents, though caches keep segments for a year.
 * Every item of a track arrives in order; times are in seconds.
 */
import type { TrackInfo } from './packet.ts';

interface TrackItem {
  stream: string;
  /** The CMAF track's name, unique within the stream. */
  track: string;
  /** The rendition it was cut from (several tracks may share one: `source` video and audio). */
  rendition: string;
}

/** A track's initialisation segment (`ftyp` + `moov`); a new one follows a change of codec configuration. */
export interface CmafInit extends TrackItem {
  type: 'init';
  info: TrackInfo;
  data: Buffer;
  /** The stream-level playlist settings the packager was given. */
  playlist: PlaylistSettings;
  /**
   * The publish the track belongs to (lower-case base 36, at most 12
   * characters: the packager uses its start time in ms). It goes in every
   * URL of the stream; an init with another epoch starts the stream's
   * window afresh. Absent: the origin picks one when it opens a window.
   */
  epoch?: string;
  /** The stream's video renditions, when the packet that opened the track announced them (`MediaPacket.renditions`). */
  renditions?: readonly string[];
}

/** A part (an LL-HLS partial segment, a CMAF chunk: `moof` + `mdat`), listed the instant it is complete. */
export interface CmafPart extends TrackItem {
  type: 'part';
  /** The media sequence number of the segment it belongs to. */
  msn: number;
  /** Its index within that segment, from 0. */
  part: number;
  duration: number;
  /** It starts with a keyframe (`INDEPENDENT=YES`). */
  independent: boolean;
  data: Buffer;
  /** When the packet that closed it reached the engine (ms since the epoch), for the availability figures. */
  closedAt?: number;
  /** The first part of a segment after a discontinuity: the playlist lists `EXT-X-DISCONTINUITY` before it while the segment is open. */
  discontinuity?: boolean;
}

/** A finished segment: the concatenation of its parts (or one fragment when parts are off). */
export interface CmafSegment extends TrackItem {
  type: 'segment';
  msn: number;
  duration: number;
  /** Wall-clock time of its first sample (ms since the epoch), for `EXT-X-PROGRAM-DATE-TIME`. */
  programDateTime: number;
  /** Decode time of its first sample in the track's timescale (DASH `$Time$`, `tfdt`). */
  startTime: number;
  /** The stream restarted before it: `EXT-X-DISCONTINUITY`, a new DASH period. */
  discontinuity: boolean;
  data: Buffer;
  /** When the packet that closed it reached the engine (ms since the epoch), for the availability figures. */
  closedAt?: number;
}

/** The end of a track or of a whole stream (`track` absent): playlists get `EXT-X-ENDLIST`. */
export interface CmafEnd {
  type: 'end';
  stream: string;
  track?: string;
}

/** An item on a `Segment<cmaf>` edge. */
export type CmafItem = CmafInit | CmafPart | CmafSegment | CmafEnd;

/** What a packager decided for a stream's playlists; the origin renders from it. */
export interface PlaylistSettings {
  /** Target segment duration in seconds. */
  segment: number;
  /** Target part duration in seconds; absent: no low-latency parts. */
  part?: number;
  /** Segments kept in the live window. */
  window: number;
  /** A DASH manifest is published too (`segment.dash` downstream). */
  dash?: { minBufferTime: number; suggestedPresentationDelay?: number };
}
