/**
 * HLS playlists (RFC 8216, and RFC 8216bis for low-latency parts) rendered
 * from a stream's window: the master playlist with one variant per video
 * track, and each track's media playlist. Pure: the same window gives the
 * same text.
 */
import { configuredTarget, initName, lastMsn, partName, segmentName, listedPartSegments, type StreamWindow, type TrackWindow, type WindowPart, type WindowSegment } from '../cmaf-window.ts';

/** The media playlist's path relative to the stream: `720p/index.m3u8`. */
export function mediaPlaylistPath(track: string): string {
  return `${track}/index.m3u8`;
}

/** Measured bitrates of a track, in bits per second. */
export interface TrackBitrate {
  /** The largest segment's rate (or part's, before a segment is finished). */
  peak: number;
  average: number;
}

/** A track's peak and average bitrate over its window; zero when nothing has been received. */
export function trackBitrate(track: TrackWindow): TrackBitrate {
  const pieces: { bytes: number; duration: number }[] = track.segments.map((segment) => ({ bytes: segment.data.length, duration: segment.duration }));
  if (pieces.length === 0) for (const part of track.openParts) pieces.push({ bytes: part.data.length, duration: part.duration });
  let peak = 0;
  let bytes = 0;
  let duration = 0;
  for (const piece of pieces) {
    if (piece.duration <= 0) continue;
    peak = Math.max(peak, (piece.bytes * 8) / piece.duration);
    bytes += piece.bytes;
    duration += piece.duration;
  }
  return { peak: Math.ceil(peak), average: duration > 0 ? Math.ceil((bytes * 8) / duration) : 0 };
}

/** Whether a track has anything a player could start from. */
export function trackReady(track: TrackWindow): boolean {
  return track.segments.length > 0;
}

/**
 * Whether every video rendition the stream's encoder announced has a track
 * with a finished segment: then a master playlist lists them all, and need
 * not be held any longer. False when nothing was announced.
 */
export function announcedReady(stream: StreamWindow): boolean {
  const renditions = stream.renditions;
  if (renditions === undefined) return false;
  return renditions.every((name) => {
    for (const track of stream.tracks.values()) if (track.rendition === name && track.init.info.kind === 'video' && trackReady(track)) return true;
    return false;
  });
}

function quoted(text: string): string {
  return `"${text}"`;
}

/** A decimal with at most `digits` decimals, without trailing zeros (`2`, `0.2`, `29.97`). */
function decimal(value: number, digits = 5): string {
  return String(Number(value.toFixed(digits)));
}

/**
 * The master playlist, or undefined when no video or audio track has a
 * finished segment yet. Every video track is a variant (`BANDWIDTH` its peak
 * plus the audio's, `AVERAGE-BANDWIDTH` likewise); audio tracks form the
 * `aud` group that every variant names. A stream without video lists its
 * audio tracks as variants.
 */
export function renderMaster(stream: StreamWindow): string | undefined {
  const ready = [...stream.tracks.values()].filter(trackReady);
  const video = ready.filter((track) => track.init.info.kind === 'video');
  const audio = ready.filter((track) => track.init.info.kind === 'audio');
  if (video.length === 0 && audio.length === 0) return undefined;
  const low = stream.settings.part !== undefined;
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${low ? 9 : 7}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  if (video.length === 0) {
    for (const track of audio) {
      const rate = trackBitrate(track);
      lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${rate.peak},AVERAGE-BANDWIDTH=${rate.average},CODECS=${quoted(track.init.info.codecString)}`, mediaPlaylistPath(track.name));
    }
    return `${lines.join('\n')}\n`;
  }
  audio.forEach((track, index) => {
    const info = track.init.info;
    const channels = info.channels === undefined ? '' : `,CHANNELS=${quoted(String(info.channels))}`;
    const isDefault = index === 0 ? 'YES' : 'NO';
    lines.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME=${quoted(track.name)},DEFAULT=${isDefault},AUTOSELECT=YES${channels},URI=${quoted(mediaPlaylistPath(track.name))}`);
  });
  // Every variant may play with any audio rendition of the group: count the largest.
  const audioRates = audio.map(trackBitrate);
  const audioPeak = Math.max(0, ...audioRates.map((rate) => rate.peak));
  const audioAverage = Math.max(0, ...audioRates.map((rate) => rate.average));
  const audioCodec = audio[0]?.init.info.codecString;
  for (const track of video) {
    const info = track.init.info;
    const rate = trackBitrate(track);
    const codecs = audioCodec === undefined ? info.codecString : `${info.codecString},${audioCodec}`;
    const attributes = [`BANDWIDTH=${rate.peak + audioPeak}`, `AVERAGE-BANDWIDTH=${rate.average + audioAverage}`, `CODECS=${quoted(codecs)}`];
    if (info.width !== undefined && info.height !== undefined) attributes.push(`RESOLUTION=${info.width}x${info.height}`);
    if (info.fps !== undefined && info.fps > 0) attributes.push(`FRAME-RATE=${info.fps.toFixed(3)}`);
    if (audio.length > 0) attributes.push('AUDIO="aud"');
    lines.push(`#EXT-X-STREAM-INF:${attributes.join(',')}`, mediaPlaylistPath(track.name));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The target duration, the same for the whole life of the track (RFC 8216
 * 6.2.1): fixed by its first segment (`TrackWindow.targetDuration`), the
 * configured one before. The packager keeps segments within it as long as
 * the source's keyframe interval is at most the configured segment duration
 * (`encode` forces keyframes at segment boundaries): it can only cut video
 * at a keyframe.
 */
export function targetDuration(stream: StreamWindow, track: TrackWindow): number {
  return track.targetDuration ?? configuredTarget(stream.settings);
}

/** The part target: the configured part duration, raised to the longest part listed (parts must not exceed it). */
export function partTarget(stream: StreamWindow, track: TrackWindow): number {
  let target = stream.settings.part ?? 0;
  for (const segment of track.segments) for (const part of segment.parts) target = Math.max(target, part.duration);
  for (const part of track.openParts) target = Math.max(target, part.duration);
  return Number((Math.ceil(target * 1000) / 1000).toFixed(3));
}

function partLines(stream: StreamWindow, msn: number, parts: WindowPart[]): string[] {
  return parts.map((part) => `#EXT-X-PART:DURATION=${decimal(part.duration)},URI=${quoted(partName(stream, msn, part.part))}${part.independent ? ',INDEPENDENT=YES' : ''}`);
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Where the next part will be: the open segment's next index, or the first part of the next segment. */
export function nextPart(track: TrackWindow): { msn: number; part: number } {
  const last = track.openParts.at(-1);
  return { msn: track.nextMsn, part: last === undefined ? 0 : last.part + 1 };
}

/**
 * A track's media playlist. With parts (`settings.part`), the parts of the
 * segments of the last three target durations (`listedPartSegments`) and
 * of the open one are listed, then a
 * preload hint for the next part, and the server announces blocking reload.
 * Other tracks of the stream get a rendition report so players switching
 * rungs can ask for the right part at once.
 */
export function renderMedia(stream: StreamWindow, track: TrackWindow): string {
  const low = stream.settings.part !== undefined;
  const target = targetDuration(stream, track);
  const first: WindowSegment | undefined = track.segments[0];
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${low ? 9 : 7}`, `#EXT-X-TARGETDURATION:${target}`];
  if (low) {
    const part = partTarget(stream, track);
    lines.push(`#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${decimal(part * 3, 3)}`, `#EXT-X-PART-INF:PART-TARGET=${decimal(part, 3)}`);
  }
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${first?.msn ?? track.nextMsn}`, `#EXT-X-DISCONTINUITY-SEQUENCE:${track.discontinuitySequence}`);
  let mapVersion = -1;
  const listPartsFrom = track.segments.length - listedPartSegments(stream, track);
  track.segments.forEach((segment, index) => {
    if (segment.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (segment.initVersion !== mapVersion) {
      mapVersion = segment.initVersion;
      lines.push(`#EXT-X-MAP:URI=${quoted(initName(stream, mapVersion))}`);
    }
    // Every segment carries its wall-clock time: players and glass-to-glass measures read it.
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${isoTime(segment.programDateTime)}`);
    if (low && index >= listPartsFrom) lines.push(...partLines(stream, segment.msn, segment.parts));
    lines.push(`#EXTINF:${decimal(segment.duration)},`, segmentName(stream, segment.msn));
  });
  if (track.ended) {
    lines.push('#EXT-X-ENDLIST');
    return `${lines.join('\n')}\n`;
  }
  if (low) {
    // The open segment follows a discontinuity: its parts need the tag before them too, or a player splices them onto the old timeline.
    if (track.openParts[0]?.discontinuity === true && track.segments.length > 0) lines.push('#EXT-X-DISCONTINUITY');
    if (track.openParts.length > 0 && track.init.version !== mapVersion) lines.push(`#EXT-X-MAP:URI=${quoted(initName(stream, track.init.version))}`);
    lines.push(...partLines(stream, track.nextMsn, track.openParts));
    const next = nextPart(track);
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI=${quoted(partName(stream, next.msn, next.part))}`);
    for (const other of stream.tracks.values()) {
      if (other === track || other.ended) continue;
      const report = renditionReport(other);
      if (report !== undefined) lines.push(`#EXT-X-RENDITION-REPORT:URI=${quoted(`../${mediaPlaylistPath(other.name)}`)},${report}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function renditionReport(track: TrackWindow): string | undefined {
  const last = track.openParts.at(-1);
  if (last !== undefined) return `LAST-MSN=${track.nextMsn},LAST-PART=${last.part}`;
  const msn = lastMsn(track);
  if (msn < 0) return undefined;
  const parts = track.segments.at(-1)!.parts;
  return parts.length > 0 ? `LAST-MSN=${msn},LAST-PART=${parts.at(-1)!.part}` : `LAST-MSN=${msn}`;
}
