/**
 * A dynamic DASH manifest (ISO/IEC 23009-1, live profile) over the same CMAF
 * segments the HLS playlists list: one AdaptationSet for video (a
 * Representation per video track) and one for audio, a `SegmentTemplate`
 * with a `SegmentTimeline` per Representation, and a Period per run of
 * segments between discontinuities. Pure: the same window and time give the
 * same text.
 */
import { initName, type SegmentRun, type StreamWindow, type TrackWindow, type WindowSegment } from '../cmaf-window.ts';
import { trackBitrate, targetDuration } from '../hls/playlist.ts';

/** An ISO 8601 duration in seconds: `PT2S`, `PT0.5S`. */
export function isoDuration(seconds: number): string {
  return `PT${Number(Math.max(0, seconds).toFixed(3))}S`;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The timescale written in an init segment's `mdhd` box (the unit of `tfdt`
 * and of sample durations), or undefined when there is no such box.
 */
export function initTimescale(init: Buffer): number | undefined {
  const at = init.indexOf('mdhd', 0, 'latin1');
  if (at < 4) return undefined;
  const version = init[at + 4];
  // After the type: version and flags (4), then creation and modification times (4 or 8 each).
  const offset = at + 4 + 4 + (version === 1 ? 16 : 8);
  if (offset + 4 > init.length) return undefined;
  const timescale = init.readUInt32BE(offset);
  return timescale > 0 ? timescale : undefined;
}

/** The timescale of a track's segment times: the init's `mdhd`, else the track info's. */
export function trackTimescale(track: TrackWindow): number {
  return initTimescale(track.init.data) ?? track.init.info.timescale;
}

/** `<S>` elements for a run of segments: explicit `t` first, then durations with `r` for repeats. */
function timeline(segments: WindowSegment[], timescale: number): string[] {
  const entries: { d: number; r: number }[] = [];
  segments.forEach((segment, index) => {
    const next = segments[index + 1];
    const measured = next === undefined ? 0 : next.startTime - segment.startTime;
    const d = measured > 0 ? measured : Math.round(segment.duration * timescale);
    const last = entries.at(-1);
    if (last !== undefined && last.d === d) last.r++;
    else entries.push({ d, r: 0 });
  });
  return entries.map((entry, index) => {
    const t = index === 0 ? ` t="${segments[0].startTime}"` : '';
    const r = entry.r > 0 ? ` r="${entry.r}"` : '';
    return `<S${t} d="${entry.d}"${r}/>`;
  });
}

interface PeriodPlan {
  run: SegmentRun;
  /** Each track's segments in this period. */
  segments: Map<TrackWindow, WindowSegment[]>;
}

/**
 * The stream's periods, across all its tracks: a discontinuity on any video
 * track (audio only, without video) starts a period for every track, at
 * the same wall-clock time; each segment goes to the period its wall-clock
 * start falls in (half a segment early still counts, for rounding). So an
 * audio track copied through an encoder restart, which has no discontinuity
 * of its own, is not misplaced.
 */
function periods(reference: TrackWindow, tracks: TrackWindow[]): PeriodPlan[] {
  const leaders = tracks.filter((track) => track.init.info.kind === reference.init.info.kind);
  const starts = new Map<number, SegmentRun>();
  for (const track of leaders) {
    for (const segment of track.segments) {
      const run = segment.period;
      // Renditions restarted together start within a moment of each other: one period.
      const near = [...starts.keys()].find((at) => Math.abs(at - run.programDateTime) < 500);
      if (near === undefined) starts.set(run.programDateTime, run);
    }
  }
  const plans: PeriodPlan[] = [...starts.entries()].sort((a, b) => a[0] - b[0]).map(([, run]) => ({ run, segments: new Map() }));
  for (const track of tracks) {
    const tolerance = (firstSegmentSeconds(track) * 1000) / 2;
    for (const segment of track.segments) {
      let index = 0;
      while (index + 1 < plans.length && plans[index + 1].run.programDateTime - tolerance <= segment.programDateTime) index++;
      const list = plans[index].segments.get(track);
      if (list === undefined) plans[index].segments.set(track, [segment]);
      else list.push(segment);
    }
  }
  return plans.filter((plan) => plan.segments.size > 0);
}

/** A track's first listed segment's duration, seconds: half of it is the slack a segment's start may have against its period's. */
function firstSegmentSeconds(track: TrackWindow): number {
  return track.segments[0]?.duration ?? 0;
}

/** The media time (track timescale) at which a period starts for a track: its first segment there, moved back to the period's wall-clock start. */
function periodOffset(plan: PeriodPlan, first: WindowSegment, timescale: number): number {
  return Math.max(0, Math.round(first.startTime - ((first.programDateTime - plan.run.programDateTime) / 1000) * timescale));
}

function representation(stream: StreamWindow, plan: PeriodPlan, track: TrackWindow, segments: WindowSegment[]): string[] {
  const info = track.init.info;
  const timescale = trackTimescale(track);
  const rate = trackBitrate(track);
  const attributes = [`id="${escapeXml(track.name)}"`, `bandwidth="${Math.max(1, rate.peak)}"`, `codecs="${escapeXml(info.codecString)}"`];
  if (info.kind === 'video') {
    if (info.width !== undefined && info.height !== undefined) attributes.push(`width="${info.width}"`, `height="${info.height}"`);
    if (info.fps !== undefined && info.fps > 0) attributes.push(`frameRate="${Number.isInteger(info.fps) ? info.fps : `${Math.round(info.fps * 1000)}/1000`}"`);
  } else if (info.sampleRate !== undefined) {
    attributes.push(`audioSamplingRate="${info.sampleRate}"`);
  }
  const first = segments[0];
  const template = [
    `timescale="${timescale}"`,
    `presentationTimeOffset="${periodOffset(plan, first, timescale)}"`,
    `startNumber="${first.msn}"`,
    `initialization="$RepresentationID$/${initName(stream, first.initVersion)}"`,
    `media="$RepresentationID$/${stream.epoch}-$Number$.m4s"`,
  ];
  const part = stream.settings.part;
  // Low latency: a segment may be fetched once its first part exists; the origin streams the rest as it comes.
  if (part !== undefined && !track.ended) template.push(`availabilityTimeOffset="${Number((stream.settings.segment - part).toFixed(3))}"`, 'availabilityTimeComplete="false"');
  const lines = [`      <Representation ${attributes.join(' ')}>`];
  if (info.kind === 'audio' && info.channels !== undefined) {
    lines.push(`        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="${info.channels}"/>`);
  }
  lines.push(`        <SegmentTemplate ${template.join(' ')}>`, '          <SegmentTimeline>');
  for (const s of timeline(segments, timescale)) lines.push(`            ${s}`);
  lines.push('          </SegmentTimeline>', '        </SegmentTemplate>', '      </Representation>');
  return lines;
}

function adaptationSet(stream: StreamWindow, id: number, kind: 'video' | 'audio', plan: PeriodPlan): string[] {
  const members = [...plan.segments].filter(([track]) => track.init.info.kind === kind);
  if (members.length === 0) return [];
  const lines = [`    <AdaptationSet id="${id}" contentType="${kind}" mimeType="${kind}/mp4" segmentAlignment="true" startWithSAP="1">`];
  for (const [track, segments] of members) lines.push(...representation(stream, plan, track, segments));
  lines.push('    </AdaptationSet>');
  return lines;
}

/**
 * The MPD of a stream at wall-clock time `now` (ms), or undefined before any
 * track has a finished segment. While live it is dynamic with a
 * `minimumUpdatePeriod` of one segment; once every track ended, the update
 * period goes and `mediaPresentationDuration` closes the presentation.
 */
export function renderMpd(stream: StreamWindow, now: number): string | undefined {
  const tracks = [...stream.tracks.values()].filter((track) => track.segments.length > 0);
  const reference = tracks.find((track) => track.init.info.kind === 'video') ?? tracks[0];
  const start = stream.availabilityStart;
  if (reference === undefined || start === undefined) return undefined;
  const ended = tracks.every((track) => track.ended);
  const dash = stream.settings.dash ?? { minBufferTime: stream.settings.segment };
  const windowSeconds = reference.segments.reduce((sum, segment) => sum + segment.duration, 0);
  const target = targetDuration(stream, reference);
  const attributes = [
    'xmlns="urn:mpeg:dash:schema:mpd:2011"',
    'profiles="urn:mpeg:dash:profile:isoff-live:2011"',
    'type="dynamic"',
    `availabilityStartTime="${isoTime(start)}"`,
    `publishTime="${isoTime(now)}"`,
    `timeShiftBufferDepth="${isoDuration(windowSeconds)}"`,
    `minBufferTime="${isoDuration(dash.minBufferTime)}"`,
    `maxSegmentDuration="${isoDuration(target)}"`,
  ];
  if (ended) {
    const last = reference.segments.at(-1)!;
    attributes.push(`mediaPresentationDuration="${isoDuration((last.programDateTime - start) / 1000 + last.duration)}"`);
  } else {
    attributes.push(`minimumUpdatePeriod="${isoDuration(stream.settings.segment)}"`);
  }
  if (dash.suggestedPresentationDelay !== undefined) attributes.push(`suggestedPresentationDelay="${isoDuration(dash.suggestedPresentationDelay)}"`);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<MPD ${attributes.join(' ')}>`];
  for (const plan of periods(reference, tracks)) {
    lines.push(`  <Period id="p${plan.run.firstMsn}" start="${isoDuration((plan.run.programDateTime - start) / 1000)}">`);
    lines.push(...adaptationSet(stream, 0, 'video', plan), ...adaptationSet(stream, 1, 'audio', plan));
    lines.push('  </Period>');
  }
  // The manifest carries the server's clock, so players need no time server.
  lines.push(`  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="${isoTime(now)}"/>`, '</MPD>');
  return `${lines.join('\n')}\n`;
}
