/**
 * A stream's media statistics, counted as packets pass and read once a
 * second by `segment.hls`'s `stats` output.
 */
import type { MediaPacket } from '../../../media/packet.ts';

/** One `stats` event: a stream's figures over the last interval. */
export interface StreamStatsEvent {
  stream: string;
  /** Bits per second of every track's packets over the interval. */
  bitrate: number;
  /** Frames per second of the stream's first video track over the interval (0 without video). */
  fps: number;
  /** Seconds between that track's last two keyframes (undefined before the second one). */
  keyframe_interval: number | undefined;
  /** Segments and parts emitted since the stream started, over all its tracks. */
  segments: number;
  parts: number;
  /** The interval the figures cover, ms. */
  interval: number;
}

/** Counters of one stream between two readings. */
export class StreamStats {
  #bytes = 0;
  #frames = 0;
  #lastKeyframe: number | undefined;
  #keyframeInterval: number | undefined;

  /** Counts a packet; `leadVideo` when it belongs to the stream's first video track. */
  count(packet: MediaPacket, leadVideo: boolean): void {
    this.#bytes += packet.data.length;
    if (!leadVideo) return;
    this.#frames += 1;
    if (packet.keyframe) {
      const time = packet.dts / packet.track.timescale;
      if (this.#lastKeyframe !== undefined && time > this.#lastKeyframe) this.#keyframeInterval = time - this.#lastKeyframe;
      this.#lastKeyframe = time;
    }
  }

  /** The figures over the `interval` ms since the last reading; the rates restart from zero. */
  read(stream: string, interval: number, totals: { segments: number; parts: number }): StreamStatsEvent {
    const seconds = Math.max(interval, 1) / 1000;
    const event: StreamStatsEvent = {
      stream,
      bitrate: Math.round((this.#bytes * 8) / seconds),
      fps: Math.round((this.#frames / seconds) * 100) / 100,
      keyframe_interval: this.#keyframeInterval === undefined ? undefined : Math.round(this.#keyframeInterval * 1000) / 1000,
      segments: totals.segments,
      parts: totals.parts,
      interval,
    };
    this.#bytes = 0;
    this.#frames = 0;
    return event;
  }
}
