/**
 * The packager of one CMAF track: it takes the track's packets in decode
 * order and cuts them into parts and segments, emitting each item the
 * moment the packet that closes it arrives.
 *
 * One packet is held back: a sample's duration is the distance to the next
 * packet's decode time, so a part or segment is complete, with exact
 * durations, when the first packet past its end arrives. Only the open
 * segment is kept (its finished parts and the open part's samples).
 */
import type { MediaPacket, TrackInfo } from '../../../media/packet.ts';
import type { CmafItem, PlaylistSettings } from '../../../media/segment.ts';
import { writeInitSegment } from '../../../media/fmp4/init-segment.ts';
import { writeFragment, type FragmentSample } from '../../../media/fmp4/fragment.ts';

/** How a track is cut; durations in seconds. */
export interface CutSettings {
  segment: number;
  /** Part target; absent: one fragment per segment, no parts. */
  part?: number;
}

/** Wall clock of a stream's timeline: `wall` (ms since the epoch) is when media time `time` (s) arrived. */
export interface ClockAnchor {
  wall: number;
  time: number;
}

/** What a track asks of its stream. */
export interface TrackHost {
  emit(item: CmafItem): void;
  /** The wall-clock anchor to use for a packet, re-anchoring on a discontinuity. */
  anchor(time: number, arrival: number, discontinuity: boolean): ClockAnchor;
  /** A video track opened a segment at `time` (s): audio tracks following it cut there too. */
  boundary(track: TrackPackager, time: number): void;
  /** Whether an audio track's segments follow a video track's boundaries. */
  follows(track: TrackPackager): boolean;
}

interface Sample extends FragmentSample {
  dts: number;
}

interface OpenSegment {
  msn: number;
  startDts: number;
  programDateTime: number;
  discontinuity: boolean;
  /** Finished parts' fragments, concatenated into the segment when it closes. */
  parts: Buffer[];
  ticks: number;
}

/** A forward jump larger than this (and than two segments) is a discontinuity, seconds. */
const jumpLimit = 5;

/** Cuts one track's packets into CMAF items; see the file comment. */
export class TrackPackager {
  readonly stream: string;
  readonly track: string;
  readonly rendition: string;
  readonly kind: 'video' | 'audio';
  #settings: CutSettings;
  #playlist: PlaylistSettings;
  #host: TrackHost;
  #info: TrackInfo | undefined;
  #ticks = 1000;
  #held: MediaPacket | undefined;
  #heldArrival = 0;
  #samples: Sample[] = [];
  #partStart = 0;
  #partTicks = 0;
  #segment: OpenSegment | undefined;
  #nextMsn = 0;
  #sequence = 0;
  #nextDiscontinuity = false;
  /** Duration estimate in ticks: the mean of the samples seen, for the held sample at a flush. */
  #durationSum = 0;
  #durationCount = 0;
  /** A boundary (s) a leading video track set that this audio track has not reached yet. */
  #pendingBoundary: number | undefined;

  /**
   * `continueAt`: the first media sequence number, when the track continues
   * one a replaced packager left (its first segment is then a discontinuity).
   */
  constructor(options: { stream: string; track: string; rendition: string; kind: 'video' | 'audio'; settings: CutSettings; playlist: PlaylistSettings; host: TrackHost; continueAt?: number }) {
    this.stream = options.stream;
    this.track = options.track;
    this.rendition = options.rendition;
    this.kind = options.kind;
    this.#settings = options.settings;
    this.#playlist = options.playlist;
    this.#host = options.host;
    if (options.continueAt !== undefined) {
      this.#nextMsn = options.continueAt;
      this.#nextDiscontinuity = true;
    }
  }

  /** The media sequence number the next segment will get. */
  get nextMsn(): number {
    return this.#nextMsn;
  }

  /** The track's current codec configuration, once a packet has arrived. */
  get info(): TrackInfo | undefined {
    return this.#info;
  }

  /** The segment open now (msn), for tests and stats. */
  get openMsn(): number | undefined {
    return this.#segment?.msn;
  }

  /** Takes the next packet of the track. `arrival` is when it reached the engine (ms). */
  push(packet: MediaPacket, arrival: number): void {
    const info = packet.track;
    if (this.#info === undefined || (info !== this.#info && configChanged(this.#info, info))) {
      if (this.#info !== undefined) {
        this.#finish(arrival);
        this.#nextDiscontinuity = true;
      }
      this.#init(info);
    } else if (this.#held !== undefined && (packet.discontinuity === true || this.#jumped(packet))) {
      this.#finish(arrival);
      this.#nextDiscontinuity = true;
    }
    this.#info = info;
    const held = this.#held;
    if (held === undefined || this.#segment === undefined) {
      // Video segments start with a keyframe; what comes before the first one cannot be decoded.
      if (this.kind === 'video' && !packet.keyframe) return;
      this.#open(packet, arrival);
      this.#hold(packet, arrival);
      return;
    }
    const duration = packet.dts - held.dts;
    this.#append(held, duration);
    if (this.#cutsSegment(packet)) {
      this.#closeSegment(arrival);
      this.#open(packet, arrival);
    } else if (this.#settings.part !== undefined && this.#cutsPart(packet)) {
      this.#closePart();
      this.#partStart = packet.dts;
    }
    this.#hold(packet, arrival);
  }

  /** Flushes the held sample, the open part and the open segment (the end of the track). */
  flush(closedAt: number): void {
    this.#finish(closedAt);
  }

  /**
   * A leading video track opened a segment at `time` (s). If this track's
   * open part already holds samples from there on, the segment is cut at
   * once before them; otherwise at the first packet at or past `time`.
   */
  follow(time: number): void {
    const segment = this.#segment;
    const held = this.#held;
    if (segment === undefined || held === undefined) return;
    const at = time * this.#ticks;
    if (held.dts < at - this.#tolerance()) {
      this.#pendingBoundary = at;
      return;
    }
    let split = this.#samples.findIndex((sample) => sample.dts >= at - this.#tolerance());
    if (split === 0 && this.#samples[0].dts === segment.startDts) return; // the segment already starts there
    if (split < 0) split = this.#samples.length;
    const carried = this.#samples.splice(split);
    const carriedTicks = carried.reduce((sum, sample) => sum + sample.duration, 0);
    this.#partTicks -= carriedTicks;
    this.#closeSegment(this.#heldArrival);
    const first = carried[0] ?? held;
    this.#openAt(first.dts, first.dts + (carried[0]?.compositionOffset ?? held.pts - held.dts), this.#heldArrival);
    this.#samples = carried;
    this.#partTicks = carriedTicks;
    this.#partStart = first.dts;
  }

  #init(info: TrackInfo): void {
    this.#ticks = info.timescale;
    this.#host.emit({ type: 'init', stream: this.stream, track: this.track, rendition: this.rendition, info, data: writeInitSegment(info), playlist: this.#playlist });
  }

  #jumped(packet: MediaPacket): boolean {
    const gap = packet.dts - this.#held!.dts;
    return gap < 0 || gap > Math.max(jumpLimit, 2 * this.#settings.segment) * this.#ticks;
  }

  #hold(packet: MediaPacket, arrival: number): void {
    this.#held = packet;
    this.#heldArrival = arrival;
  }

  #estimate(): number {
    if (this.#durationCount > 0) return this.#durationSum / this.#durationCount;
    const info = this.#info;
    if (this.kind === 'audio') return ((info?.codec === 'aac' ? 1024 : 960) / (info?.sampleRate || 48000)) * this.#ticks;
    return this.#ticks / (info?.fps || 30);
  }

  /** Half a frame: timestamps rounded to the timescale may fall just short of a target. */
  #tolerance(): number {
    return this.#estimate() / 2;
  }

  #append(packet: MediaPacket, duration: number): void {
    if (duration > 0) {
      this.#durationSum += duration;
      this.#durationCount += 1;
    }
    this.#samples.push({ dts: packet.dts, duration, compositionOffset: packet.pts - packet.dts, sync: packet.keyframe, data: packet.data });
    this.#partTicks += duration;
  }

  #cutsSegment(packet: MediaPacket): boolean {
    const segment = this.#segment!;
    const elapsed = packet.dts - segment.startDts;
    const target = this.#settings.segment * this.#ticks;
    if (this.kind === 'video') return packet.keyframe && elapsed >= target - this.#tolerance();
    if (this.#host.follows(this)) {
      if (this.#pendingBoundary !== undefined && packet.dts >= this.#pendingBoundary - this.#tolerance()) return true;
      // The video stalled: audio goes on by itself rather than grow without bound.
      return elapsed >= 2.5 * target;
    }
    return elapsed >= target - this.#tolerance();
  }

  /** Whether the open part is full: one more frame would take it past the target (within a tenth of a frame). */
  #cutsPart(packet: MediaPacket): boolean {
    const estimate = this.#estimate();
    const elapsed = packet.dts - this.#partStart;
    return elapsed + estimate > this.#settings.part! * this.#ticks + Math.max(1, estimate / 10);
  }

  #open(packet: MediaPacket, arrival: number): void {
    this.#openAt(packet.dts, packet.pts, arrival);
    this.#partStart = packet.dts;
    if (this.kind === 'video') this.#host.boundary(this, packet.dts / this.#ticks);
  }

  #openAt(dts: number, pts: number, arrival: number): void {
    const anchor = this.#host.anchor(pts / this.#ticks, arrival, this.#nextDiscontinuity);
    this.#segment = {
      msn: this.#nextMsn++,
      startDts: dts,
      programDateTime: Math.round(anchor.wall + (pts / this.#ticks - anchor.time) * 1000),
      discontinuity: this.#nextDiscontinuity,
      parts: [],
      ticks: 0,
    };
    this.#nextDiscontinuity = false;
    this.#pendingBoundary = undefined;
  }

  #closePart(): void {
    const segment = this.#segment;
    const samples = this.#samples;
    if (segment === undefined || samples.length === 0) return;
    const data = writeFragment({ sequence: ++this.#sequence, baseDecodeTime: this.#partStart }, samples);
    segment.parts.push(data);
    segment.ticks += this.#partTicks;
    if (this.#settings.part !== undefined) {
      this.#host.emit({
        type: 'part',
        stream: this.stream,
        track: this.track,
        rendition: this.rendition,
        msn: segment.msn,
        part: segment.parts.length - 1,
        duration: this.#partTicks / this.#ticks,
        independent: samples[0].sync,
        data,
      });
    }
    this.#samples = [];
    this.#partTicks = 0;
  }

  #closeSegment(closedAt: number): void {
    this.#closePart();
    const segment = this.#segment;
    this.#segment = undefined;
    if (segment === undefined || segment.parts.length === 0) return;
    this.#host.emit({
      type: 'segment',
      stream: this.stream,
      track: this.track,
      rendition: this.rendition,
      msn: segment.msn,
      duration: segment.ticks / this.#ticks,
      programDateTime: segment.programDateTime,
      startTime: segment.startDts,
      discontinuity: segment.discontinuity,
      data: segment.parts.length === 1 ? segment.parts[0] : Buffer.concat(segment.parts),
      closedAt,
    });
  }

  /** Ends the open segment with the held sample, whose duration is the track's mean (no next packet will tell). */
  #finish(closedAt: number): void {
    const held = this.#held;
    if (held !== undefined && this.#segment !== undefined) this.#append(held, Math.max(1, Math.round(this.#estimate())));
    this.#held = undefined;
    this.#closeSegment(closedAt);
  }
}

/** Whether the decoder configuration changed, so a new init segment is due. */
function configChanged(before: TrackInfo, after: TrackInfo): boolean {
  return before.codec !== after.codec || before.timescale !== after.timescale || before.width !== after.width || before.height !== after.height || !before.config.equals(after.config);
}
