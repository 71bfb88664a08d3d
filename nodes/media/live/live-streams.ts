/**
 * What a live ingest (`ingest.rtmp`, and any other live source) keeps per
 * stream: whether it is live, whether its next packet follows a reconnect
 * (a discontinuity), the whole-GOP drop gate for when downstream is full,
 * and the figures of its `stats` events (one schema and one meter for
 * every live ingest).
 */
import type { MediaPacket } from '../../../media/packet.ts';
import { RungMeter } from '../ladder-stats.ts';

/** One `stats` event of a live ingest (`ingest.rtmp`, `ingest.srt`): a live stream's last second. */
export interface LiveStreamStats {
  stream: string;
  /** Bits per media second received (video and audio) over the interval; per wall second without video. */
  bitrate: number;
  /** Video frames per media second received over the interval. */
  fps: number;
  /** Seconds between the last two keyframes (0 until two were seen). */
  keyframe_interval: number;
  /** Packets dropped over the interval because downstream was full. */
  dropped: number;
  /** Publishes of this stream so far (1 for the first; each reconnect adds one). */
  publishes: number;
}

/** The `stats` port type both live ingests declare. */
export const LIVE_STATS_TYPE = 'Event<{stream: string, bitrate: number, fps: number, keyframe_interval: number, dropped: number, publishes: number}>';

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
  publishes = 0;
  /** Video received, measured over media time (a live source arrives in bursts). */
  #video = new RungMeter();
  #audioBytes = 0;
  #dropped = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Starts a publish: a stream seen before restarts with a discontinuity. */
  begin(seenBefore: boolean): void {
    this.live = true;
    this.discontinuity = seenBefore;
    this.dropping = false;
    this.hasVideo = false;
    this.publishes += 1;
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
    if (video) this.#video.add(packet);
    else this.#audioBytes += packet.data.length;
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

  /** The figures of the interval just ended (`seconds` of wall time), and a fresh start for the next. */
  takeStats(seconds: number): LiveStreamStats {
    const video = this.#video.take(seconds);
    // Audio over the same media time as the video, so a burst does not inflate it.
    const per = video.mediaMs > 0 ? video.mediaMs / 1000 : seconds > 0 ? seconds : 1;
    const stats: LiveStreamStats = {
      stream: this.name,
      bitrate: video.bitrate + Math.round((this.#audioBytes * 8) / per),
      fps: video.fps,
      keyframe_interval: Math.round(video.keyframeInterval * 1000) / 1000,
      dropped: this.#dropped,
      publishes: this.publishes,
    };
    this.#audioBytes = 0;
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
