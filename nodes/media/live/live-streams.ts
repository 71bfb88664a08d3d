/**
 * What a live ingest (`ingest.rtmp`, and any other live source) keeps per
 * stream: whether it is live, whether its next packet follows a reconnect
 * (a discontinuity), the whole-GOP drop gate for when downstream is full,
 * and the figures of its `stats` events.
 */
import type { MediaPacket } from '../../../media/packet.ts';

/** One `stats` event: a live stream's last second. */
export interface LiveStreamStats {
  stream: string;
  /** Bits per second of media received over the last second. */
  bitrate: number;
  /** Video frames received over the last second. */
  fps: number;
  /** Seconds between the last two keyframes (0 until two were seen). */
  keyframe_interval: number;
  /** Packets dropped over the last second because downstream was full. */
  dropped: number;
}

/** One stream's state; kept after its publish ends, so a reconnect continues it. */
export class LiveStream {
  readonly name: string;
  live = false;
  /** The next packet follows a gap in the timeline (a new publish after an earlier one). */
  discontinuity = false;
  /** Dropping until the next video keyframe (or, without video, until there is room). */
  dropping = false;
  hasVideo = false;
  endedAt = 0;
  #bytes = 0;
  #frames = 0;
  #dropped = 0;
  #lastKeyframe: number | undefined;
  #keyframeInterval = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Starts a publish: a stream seen before restarts with a discontinuity. */
  begin(seenBefore: boolean): void {
    this.live = true;
    this.discontinuity = seenBefore;
    this.dropping = false;
    this.hasVideo = false;
    this.#lastKeyframe = undefined;
  }

  /**
   * Whether to pass a packet on, given whether downstream is `full` now: a
   * live source cannot wait, so once full it drops every packet up to the
   * next video keyframe that finds room (whole GOPs, audio with them, so a
   * decoder never sees a frame whose references are gone).
   */
  admit(packet: MediaPacket, full: boolean): boolean {
    const video = packet.track.kind === 'video';
    if (video) this.hasVideo = true;
    this.#bytes += packet.data.length;
    if (video) {
      this.#frames++;
      if (packet.keyframe) {
        if (this.#lastKeyframe !== undefined) this.#keyframeInterval = (packet.dts - this.#lastKeyframe) / packet.track.timescale;
        this.#lastKeyframe = packet.dts;
      }
    }
    if (full) this.dropping = true;
    else if (this.dropping && ((video && packet.keyframe) || !this.hasVideo)) this.dropping = false;
    if (this.dropping) {
      this.#dropped++;
      return false;
    }
    if (this.discontinuity) {
      packet.discontinuity = true;
      this.discontinuity = false;
    }
    return true;
  }

  /** The figures of the second just ended, and a fresh start for the next. */
  takeStats(seconds: number): LiveStreamStats {
    const stats: LiveStreamStats = {
      stream: this.name,
      bitrate: Math.round((this.#bytes * 8) / seconds),
      fps: Math.round((this.#frames / seconds) * 100) / 100,
      keyframe_interval: Math.round(this.#keyframeInterval * 1000) / 1000,
      dropped: this.#dropped,
    };
    this.#bytes = 0;
    this.#frames = 0;
    this.#dropped = 0;
    return stats;
  }
}

/** The streams of one ingest node by name, forgetting the oldest ended ones past `keep`. */
export class LiveStreams {
  readonly #streams = new Map<string, LiveStream>();
  readonly #keep: number;

  constructor(keep = 1024) {
    this.#keep = keep;
  }

  get(name: string): LiveStream | undefined {
    return this.#streams.get(name);
  }

  /** Live streams now. */
  live(): LiveStream[] {
    return [...this.#streams.values()].filter((stream) => stream.live);
  }

  /** Starts a publish of `name`, continuing the stream when it was seen before. */
  begin(name: string): LiveStream {
    let stream = this.#streams.get(name);
    const seenBefore = stream !== undefined;
    if (!stream) {
      stream = new LiveStream(name);
      this.#streams.set(name, stream);
    }
    stream.begin(seenBefore);
    this.#prune();
    return stream;
  }

  end(stream: LiveStream, now: number): void {
    stream.live = false;
    stream.endedAt = now;
  }

  #prune(): void {
    if (this.#streams.size <= this.#keep) return;
    const ended = [...this.#streams.values()].filter((s) => !s.live).sort((a, b) => a.endedAt - b.endedAt);
    for (const stream of ended.slice(0, this.#streams.size - this.#keep)) this.#streams.delete(stream.name);
  }
}
