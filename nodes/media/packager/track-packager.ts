/**
 * The packager of one CMAF track: it takes the track's packets in decode
 * order and cuts them into parts and segments, emitting each item the
 * moment the packet that closes it arrives.
 *
 * One packet is held back: a sample's duration is the distance to the next
 * packet's decode time, so a part or segment is complete, with exact
 * durations, when the first packet past its end arrives. Only the open
 * segment is kept (its finished parts and the open part's samples).
 *
 * A segment's parts are written one after another into one buffer, each
 * part a view of it, so the finished segment is a view too: closing it
 * copies nothing. The buffer for the next segment is allocated by
 * `prepare`, which the operator calls after it has emitted what a batch
 * closed: allocating megabytes can set off a garbage collection, and that
 * pause should not fall between a packet and the item it completes.
 */
import type { MediaPacket, TrackInfo } from '../../../media/packet.ts';
import type { CmafItem, PlaylistSettings } from '../../../media/segment.ts';
import { writeInitSegment } from '../../../media/fmp4/init-segment.ts';
import { fragmentSize, writeFragmentInto, type FragmentSample } from '../../../media/fmp4/fragment.ts';

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
  /** A video track opened a segment at `time` (s), after a discontinuity or not: audio tracks following it cut there too. */
  boundary(track: TrackPackager, time: number, discontinuity: boolean): void;
  /** Whether an audio track's segments follow a video track's boundaries. */
  follows(track: TrackPackager): boolean;
  /** The sequence number of the segment the video track `track` follows has open. */
  leaderMsn(track: TrackPackager): number | undefined;
}

interface Sample extends FragmentSample {
  dts: number;
}

interface OpenSegment {
  msn: number;
  startDts: number;
  programDateTime: number;
  discontinuity: boolean;
  /** Parts written so far. */
  parts: number;
  ticks: number;
}

/**
 * Without parts, a segment is still written as CMAF chunks of this many
 * seconds (not listed as parts): closing it then writes only its last
 * chunk rather than the whole segment at once.
 */
const hiddenChunk = 0.5;

/** First guesses of a segment's size before one has been seen, bytes. */
const firstGuess = { video: 512 * 1024, audio: 64 * 1024 };
/** Room kept above the last segment's size: more is memory the origin holds for nothing, less is a copy when a segment outgrows its buffer. */
const headroom = 1.15;

/** A video segment is cut without a keyframe past this many seconds (or five targets), to bound memory. */
const longestSegment = 30;

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
  /** The open segment's bytes so far (its parts), with room for the rest. */
  #buffer: Buffer | undefined;
  #length = 0;
  #expected: number;
  #nextDiscontinuity = false;
  /** A segment has been opened (numbering may no longer jump). */
  #started = false;
  /** A part or segment has been emitted (numbering is fixed). */
  #listed = false;
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
    this.#expected = firstGuess[options.kind];
    if (options.continueAt !== undefined) {
      this.#nextMsn = options.continueAt;
      this.#nextDiscontinuity = true;
    }
  }

  /** The media sequence number the next segment will get. */
  get nextMsn(): number {
    return this.#nextMsn;
  }

  /** The open segment's media sequence number, if one is open. */
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
      this.#init(info, packet.renditions);
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
    } else if (this.#cutsPart(packet)) {
      this.#closePart(arrival);
      this.#partStart = packet.dts;
    }
    this.#hold(packet, arrival);
  }

  /** Allocates the open segment's buffer ahead of its first part; see the file comment. */
  prepare(): void {
    if (this.#segment !== undefined && this.#buffer === undefined) this.#buffer = Buffer.allocUnsafe(this.#expected);
  }

  /** Flushes the held sample, the open part and the open segment (the end of the track). */
  flush(closedAt: number): void {
    this.#finish(closedAt);
  }

  /**
   * Flushes like `flush`, for a publisher that disconnected and may come
   * back: its timeline restarts, so the next segment is a discontinuity
   * (numbering goes on).
   */
  suspend(closedAt: number): void {
    this.#finish(closedAt);
    this.#nextDiscontinuity = true;
  }

  /**
   * A leading video track opened a segment at `time` (s). If this track's
   * open part already holds samples from there on, the segment is cut at
   * once before them; otherwise at the first packet at or past `time`.
   * After a video discontinuity (an encoder restart: the video's timeline
   * is new, the copied audio's is not) the times cannot be compared: the
   * audio cuts at once and marks its next segment discontinuous too, so
   * its playlist and the DASH periods match the video's.
   */
  follow(time: number, discontinuity = false): void {
    const segment = this.#segment;
    const held = this.#held;
    if (segment === undefined || held === undefined) return;
    const at = time * this.#ticks;
    if (discontinuity) {
      // Its own segment already starts a discontinuity (a reconnect ends both): nothing to add.
      if (segment.discontinuity && segment.parts === 0) return;
      this.#nextDiscontinuity = true;
    } else if (held.dts < at - this.#tolerance()) {
      this.#pendingBoundary = at;
      return;
    }
    let split = discontinuity ? this.#samples.length : this.#samples.findIndex((sample) => sample.dts >= at - this.#tolerance());
    if (split < 0) split = this.#samples.length;
    if (discontinuity && split === 0 && segment.parts === 0) {
      segment.discontinuity = true;
      this.#nextDiscontinuity = false;
      return;
    }
    // Nothing before the boundary: the segment already starts there (closing it would skip a sequence number).
    if (split === 0 && segment.parts === 0) {
      // Audio that began just before the video's keyframe takes the video's number, as long as nothing of it was listed.
      if (!this.#listed) {
        segment.msn = Math.max(segment.msn, this.#host.leaderMsn(this) ?? 0);
        this.#nextMsn = segment.msn + 1;
      }
      return;
    }
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

  #init(info: TrackInfo, renditions: readonly string[] | undefined): void {
    this.#ticks = info.timescale;
    this.#host.emit({ type: 'init', stream: this.stream, track: this.track, rendition: this.rendition, info, data: writeInitSegment(info), playlist: this.#playlist, ...(renditions !== undefined && { renditions }) });
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
    if (this.kind === 'video') {
      if (packet.keyframe) return elapsed >= target - this.#tolerance();
      // A publisher that sends no keyframe for this long would grow the open segment without bound: cut anyway.
      return elapsed >= Math.max(longestSegment, 5 * this.#settings.segment) * this.#ticks;
    }
    if (this.#host.follows(this)) {
      if (this.#pendingBoundary !== undefined && packet.dts >= this.#pendingBoundary - this.#tolerance()) return true;
      // The video stalled: audio goes on by itself rather than grow without bound.
      return elapsed >= 2.5 * target;
    }
    return elapsed >= target - this.#tolerance();
  }

  /** Whether the open part (or hidden chunk) is full: one more frame would take it past the target (within a tenth of a frame). */
  #cutsPart(packet: MediaPacket): boolean {
    const estimate = this.#estimate();
    const elapsed = packet.dts - this.#partStart;
    return elapsed + estimate > (this.#settings.part ?? hiddenChunk) * this.#ticks + Math.max(1, estimate / 10);
  }

  #open(packet: MediaPacket, arrival: number): void {
    this.#openAt(packet.dts, packet.pts, arrival);
    this.#partStart = packet.dts;
    if (this.kind === 'video') this.#host.boundary(this, packet.dts / this.#ticks, this.#segment!.discontinuity);
  }

  #openAt(dts: number, pts: number, arrival: number): void {
    // An audio track that starts after its video numbers its first segment as the video's open one, so the two line up.
    if (this.kind === 'audio' && !this.#started) this.#nextMsn = Math.max(this.#nextMsn, this.#host.leaderMsn(this) ?? 0);
    this.#started = true;
    const anchor = this.#host.anchor(pts / this.#ticks, arrival, this.#nextDiscontinuity);
    this.#segment = {
      msn: this.#nextMsn++,
      startDts: dts,
      programDateTime: Math.round(anchor.wall + (pts / this.#ticks - anchor.time) * 1000),
      discontinuity: this.#nextDiscontinuity,
      parts: 0,
      ticks: 0,
    };
    this.#nextDiscontinuity = false;
    this.#pendingBoundary = undefined;
  }

  #closePart(closedAt: number): void {
    const segment = this.#segment;
    const samples = this.#samples;
    if (segment === undefined || samples.length === 0) return;
    const size = fragmentSize(samples);
    const buffer = this.#reserve(size);
    writeFragmentInto(buffer, this.#length, { sequence: ++this.#sequence, baseDecodeTime: this.#partStart }, samples);
    const data = buffer.subarray(this.#length, this.#length + size);
    this.#length += size;
    segment.parts += 1;
    segment.ticks += this.#partTicks;
    this.#listed = this.#listed || this.#settings.part !== undefined;
    if (this.#settings.part !== undefined) {
      this.#host.emit({
        type: 'part',
        stream: this.stream,
        track: this.track,
        rendition: this.rendition,
        msn: segment.msn,
        part: segment.parts - 1,
        duration: this.#partTicks / this.#ticks,
        independent: samples[0].sync,
        data,
        closedAt,
        ...(segment.parts === 1 && segment.discontinuity ? { discontinuity: true } : {}),
      });
    }
    this.#samples = [];
    this.#partTicks = 0;
  }

  #closeSegment(closedAt: number): void {
    this.#closePart(closedAt);
    const segment = this.#segment;
    this.#segment = undefined;
    const buffer = this.#buffer;
    const length = this.#length;
    this.#buffer = undefined;
    this.#length = 0;
    if (segment === undefined || segment.parts === 0 || buffer === undefined) return;
    this.#expected = Math.ceil(length * headroom);
    this.#listed = true;
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
      data: buffer.subarray(0, length),
      closedAt,
    });
  }

  /** The open segment's buffer with room for `size` more bytes: grown (and copied) only when a segment outgrows the guess. */
  #reserve(size: number): Buffer {
    const need = this.#length + size;
    const buffer = this.#buffer;
    if (buffer === undefined) return (this.#buffer = Buffer.allocUnsafe(Math.max(this.#expected, need)));
    if (need <= buffer.length) return buffer;
    // Parts already emitted keep viewing the old buffer; the segment continues in the new one.
    const grown = Buffer.allocUnsafe(Math.max(need, Math.ceil(buffer.length * 1.5)));
    buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
    return grown;
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
