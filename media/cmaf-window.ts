/**
 * The origin's memory of one live stream: for each CMAF track, its init
 * segments, the sliding window of finished segments, and the parts of the
 * last few segments and of the open one. Items from a `Segment<cmaf>` edge
 * are applied in order; the playlist and MPD renderers read the result.
 *
 * Memory is bounded: `PlaylistSettings.window` segments per track, the parts
 * of the segments of the last three target durations (plus one segment, for
 * requests made from a playlist a moment old) and of the open one, and the
 * inits that a kept segment still refers to.
 */
import type { TrackInfo } from './packet.ts';
import type { CmafInit, CmafPart, CmafSegment, PlaylistSettings } from './segment.ts';

/**
 * How many of the last finished segments have their parts listed: those
 * that start within three target durations of the playlist's end, as RFC
 * 8216bis (4.4.4.9) asks; at least one.
 */
export function listedPartSegments(stream: StreamWindow, track: TrackWindow): number {
  const span = 3 * Math.max(1, Math.ceil(stream.settings.segment - 0.001));
  let count = 0;
  let seconds = 0;
  for (let i = track.segments.length - 1; i >= 0 && seconds < span; i--) {
    seconds += track.segments[i].duration;
    count++;
  }
  return Math.max(1, count);
}

/** A part as the window keeps it: the packager's part without what its track and segment already say. */
export type WindowPart = Pick<CmafPart, 'part' | 'duration' | 'independent' | 'data' | 'closedAt' | 'discontinuity'>;

/** A finished segment as the window keeps it. */
export interface WindowSegment {
  msn: number;
  duration: number;
  programDateTime: number;
  startTime: number;
  discontinuity: boolean;
  /** The init version its samples need (`EXT-X-MAP`). */
  initVersion: number;
  data: Buffer;
  /** Its parts, while they are listed (`listedPartSegments`) and one segment longer; empty afterwards. */
  parts: WindowPart[];
  /** The run of segments without a discontinuity it belongs to (a DASH period); shared by the run's segments. */
  period: SegmentRun;
  /** When the packet that closed it reached the engine (ms since the epoch), if the packager said. */
  closedAt?: number;
}

/** A run of segments without a discontinuity: where it starts on the wall clock and in media time. */
export interface SegmentRun {
  /** The media sequence number of its first segment: the period's id. */
  firstMsn: number;
  /** Wall-clock time (ms) of its first sample. */
  programDateTime: number;
  /** Decode time of its first sample, in the track's timescale (DASH `presentationTimeOffset`). */
  startTime: number;
}

/** One version of a track's init segment; a new version follows a change of codec configuration. */
export interface WindowInit {
  version: number;
  info: TrackInfo;
  data: Buffer;
}

/** One CMAF track's window. */
export interface TrackWindow {
  name: string;
  rendition: string;
  /** The current init (the last received). */
  init: WindowInit;
  /** Older inits that kept segments still refer to. */
  olderInits: WindowInit[];
  /** Finished segments, oldest first, at most `settings.window`. */
  segments: WindowSegment[];
  /** The media sequence number of the open segment (the next to finish). */
  nextMsn: number;
  /** Parts of the open segment, in order. */
  openParts: WindowPart[];
  /** Discontinuities that slid out of the window (`EXT-X-DISCONTINUITY-SEQUENCE`). */
  discontinuitySequence: number;
  /** No more items: `EXT-X-ENDLIST`. */
  ended: boolean;
  /**
   * `EXT-X-TARGETDURATION`, fixed by the first segment (RFC 8216 6.2.1: it
   * must not change): the configured duration rounded up, or that segment's
   * duration rounded if longer. Absent before the first segment.
   */
  targetDuration?: number;
}

/** One stream's window: its tracks, in the order they first appeared. */
export interface StreamWindow {
  key: string;
  /** The publish this window serves (`CmafInit.epoch`): part of every URL, so a later publish never reuses one. */
  epoch: string;
  settings: PlaylistSettings;
  tracks: Map<string, TrackWindow>;
  /** Wall-clock time (ms) of the first finished segment: the DASH `availabilityStartTime`. */
  availabilityStart?: number;
  /** When the whole stream ended (ms since the epoch); absent while live. */
  endedAt?: number;
  /** When the origin opened this window (ms since the epoch), for `master_wait`. */
  openedAt?: number;
  /** The video renditions the stream's encoder announced (`CmafInit.renditions`), the last announcement; absent when none came. */
  renditions?: readonly string[];
}

/** What an epoch may be: lower-case base 36, so it is safe in a URL and in XML. */
export const epochPattern = /^[0-9a-z]{1,12}$/;

/** An epoch from a time in ms (base 36): `1700000000000` gives `lony7log`. */
export function epochOf(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(36);
}

/** The file name of an init version: `init-{epoch}-1.mp4`, then `-2`, `-3`, ... after configuration changes. */
export function initName(stream: StreamWindow, version: number): string {
  return `init-${stream.epoch}-${version}.mp4`;
}

/** The file name of a segment: `{epoch}-{msn}.m4s`. */
export function segmentName(stream: StreamWindow, msn: number): string {
  return `${stream.epoch}-${msn}.m4s`;
}

/** The file name of a part: `{epoch}-{msn}.{part}.m4s`. */
export function partName(stream: StreamWindow, msn: number, part: number): string {
  return `${stream.epoch}-${msn}.${part}.m4s`;
}

/** The init of a track with that version, if still kept. */
export function initOf(track: TrackWindow, version: number): WindowInit | undefined {
  if (track.init.version === version) return track.init;
  return track.olderInits.find((init) => init.version === version);
}

/**
 * A finished segment of a track, if still in the window. Found by its
 * number (binary search: numbers rise but may skip, after a packager
 * restart or a dropped segment), not by its position.
 */
export function segmentOf(track: TrackWindow, msn: number): WindowSegment | undefined {
  const segments = track.segments;
  let low = 0;
  let high = segments.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const found = segments[middle].msn;
    if (found === msn) return segments[middle];
    if (found < msn) low = middle + 1;
    else high = middle - 1;
  }
  return undefined;
}

/** A part of a track (of the open segment or of a recent one), if kept. */
export function partOf(track: TrackWindow, msn: number, part: number): WindowPart | undefined {
  const parts = msn === track.nextMsn ? track.openParts : segmentOf(track, msn)?.parts;
  return parts?.find((p) => p.part === part);
}

/** The last media sequence number listed (finished), or -1 when none is. */
export function lastMsn(track: TrackWindow): number {
  return track.segments.at(-1)?.msn ?? -1;
}

/** A new, empty window for one publish (`epoch`) of a stream. */
export function newStreamWindow(key: string, settings: PlaylistSettings, epoch: string): StreamWindow {
  return { key, epoch, settings, tracks: new Map() };
}

function sameInfo(a: TrackInfo, b: TrackInfo): boolean {
  return a.codecString === b.codecString && a.width === b.width && a.height === b.height && a.config.equals(b.config) && a.timescale === b.timescale;
}

/**
 * Applies an init. A first init opens the track; the same configuration
 * again (a packager restarted) changes nothing but reopens an ended track;
 * a different one becomes a new version, which segments from then on use.
 */
export function applyInit(stream: StreamWindow, item: CmafInit): TrackWindow {
  stream.settings = item.playlist;
  // A stream reopened after its end may come through a graph that announces other renditions, or none.
  if (stream.endedAt !== undefined) stream.renditions = undefined;
  stream.endedAt = undefined;
  if (item.renditions !== undefined) stream.renditions = item.renditions;
  const track = stream.tracks.get(item.track);
  if (track === undefined) {
    const created: TrackWindow = {
      name: item.track,
      rendition: item.rendition,
      init: { version: 1, info: item.info, data: item.data },
      olderInits: [],
      segments: [],
      nextMsn: 0,
      openParts: [],
      discontinuitySequence: 0,
      ended: false,
    };
    stream.tracks.set(item.track, created);
    return created;
  }
  track.ended = false;
  if (!sameInfo(track.init.info, item.info) || !track.init.data.equals(item.data)) {
    track.olderInits.push(track.init);
    track.init = { version: track.init.version + 1, info: item.info, data: item.data };
    pruneInits(track);
  }
  return track;
}

/** Applies a part of the open segment. A part of a later segment means the packager moved on: it opens that one. */
export function applyPart(track: TrackWindow, item: CmafPart): void {
  if (item.msn < track.nextMsn) return;
  if (item.msn > track.nextMsn) {
    track.nextMsn = item.msn;
    track.openParts = [];
  }
  track.openParts = track.openParts.filter((p) => p.part !== item.part);
  track.openParts.push({ part: item.part, duration: item.duration, independent: item.independent, data: item.data, closedAt: item.closedAt, ...(item.discontinuity === true ? { discontinuity: true } : {}) });
}

/** Applies a finished segment: it joins the window with the open parts, and the oldest slide out. */
export function applySegment(stream: StreamWindow, track: TrackWindow, item: CmafSegment): void {
  if (item.msn < track.nextMsn && track.segments.length > 0) return;
  const parts = item.msn === track.nextMsn ? track.openParts : [];
  const previous = track.segments.at(-1);
  const continues = previous !== undefined && !item.discontinuity;
  const period = continues ? previous.period : { firstMsn: item.msn, programDateTime: item.programDateTime, startTime: item.startTime };
  track.segments.push({
    msn: item.msn,
    duration: item.duration,
    programDateTime: item.programDateTime,
    startTime: item.startTime,
    discontinuity: item.discontinuity && track.segments.length > 0,
    initVersion: track.init.version,
    data: item.data,
    parts,
    period,
    closedAt: item.closedAt,
  });
  stream.availabilityStart ??= item.programDateTime;
  track.targetDuration ??= Math.max(configuredTarget(stream.settings), Math.round(item.duration));
  track.nextMsn = item.msn + 1;
  track.openParts = [];
  // Parts of older segments are no longer listed: their bytes go (the segment's own stay).
  const keepPartsFrom = track.segments.length - listedPartSegments(stream, track) - 1;
  for (let i = 0; i < keepPartsFrom; i++) track.segments[i].parts = [];
  while (track.segments.length > Math.max(1, stream.settings.window)) {
    const dropped = track.segments.shift()!;
    // The sequence counts the discontinuities of segments that left the window.
    if (dropped.discontinuity) track.discontinuitySequence++;
    if (track.segments[0]?.discontinuity) {
      track.segments[0].discontinuity = false;
      track.discontinuitySequence++;
    }
  }
  pruneInits(track);
}

/** The configured segment duration as a whole target duration: rounded up, at least 1 s. */
export function configuredTarget(settings: PlaylistSettings): number {
  return Math.max(1, Math.ceil(settings.segment - 0.001));
}

/** Ends one track, or every track of the stream; `now` is when. */
export function applyEnd(stream: StreamWindow, track: string | undefined, now: number): void {
  for (const window of stream.tracks.values()) {
    if (track === undefined || window.name === track) {
      window.ended = true;
      window.openParts = [];
    }
  }
  if ([...stream.tracks.values()].every((window) => window.ended)) stream.endedAt = now;
}

/** Drops the inits that no kept segment refers to any more. */
function pruneInits(track: TrackWindow): void {
  const used = new Set(track.segments.map((segment) => segment.initVersion));
  track.olderInits = track.olderInits.filter((init) => used.has(init.version));
}

/** Bytes a stream's window holds: for the memory bound and its metrics. */
export function windowBytes(stream: StreamWindow): number {
  let bytes = 0;
  for (const track of stream.tracks.values()) {
    bytes += track.init.data.length;
    for (const init of track.olderInits) bytes += init.data.length;
    for (const segment of track.segments) {
      bytes += segment.data.length;
      for (const part of segment.parts) bytes += part.data.length;
    }
    for (const part of track.openParts) bytes += part.data.length;
  }
  return bytes;
}

/** When the packet that closed the newest part or segment a track lists reached the engine (ms since the epoch), if known. */
export function newestClosedAt(track: TrackWindow): number | undefined {
  return track.openParts.at(-1)?.closedAt ?? track.segments.at(-1)?.closedAt;
}
