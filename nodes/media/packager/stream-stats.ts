/**
 * A stream's media statistics, counted as packets pass and read once a
 * second by `segment.hls`'s `stats` output. The schema is the ingests'
 * (`{stream, bitrate, fps, keyframe_interval, dropped}`) plus the
 * packager's counts, and the rates are per second of media (the stream's
 * timestamps), so a stream fed faster or slower than real time (a backlog,
 * a stall) still reports its own bitrate and frame rate.
 */
import type { MediaPacket } from '../../../media/packet.ts';

/** One `stats` event: a stream's figures over the last interval. */
export interface StreamStatsEvent {
  stream: string;
  /** Bits per second of media (every track's packets over the media time the interval covered). */
  bitrate: number;
  /** Frames per second of media of the stream's first video track (0 without video). */
  fps: number;
  /** Seconds between that track's last two keyframes (0 until two were seen), as the ingests report it. */
  keyframe_interval: number;
  /** Packets of the stream refused over the interval (not media, or a codec that cannot be packaged). */
  dropped: number;
  /** Segments and parts emitted since the stream started, over all its tracks. */
  segments: number;
  parts: number;
  /** The wall-clock interval the figures were gathered over, ms. */
  interval: number;
}

/** Counters of one stream between two readings. */
export class StreamStats {
  #bytes = 0;
  #frames = 0;
  #dropped = 0;
  /** Media seconds the timing track advanced over the interval. */
  #mediaSeconds = 0;
  #lastTime: number | undefined;
  #lastKeyframe: number | undefined;
  #keyframeInterval = 0;

  /**
   * Counts a packet; `timing` when it belongs to the track whose timestamps
   * measure the stream's media time (its first video track, else its first track).
   */
  count(packet: MediaPacket, timing: boolean): void {
    this.#bytes += packet.data.length;
    if (!timing) return;
    const time = packet.dts / packet.track.timescale;
    // A step back or a jump (a discontinuity) is no media time.
    if (this.#lastTime !== undefined && time > this.#lastTime && time - this.#lastTime < 5) {
      this.#mediaSeconds += time - this.#lastTime;
      if (packet.track.kind === 'video') this.#frames += 1;
    }
    this.#lastTime = time;
    if (packet.track.kind === 'video' && packet.keyframe) {
      if (this.#lastKeyframe !== undefined && time > this.#lastKeyframe) this.#keyframeInterval = time - this.#lastKeyframe;
      this.#lastKeyframe = time;
    }
  }

  /** Counts a refused packet. */
  drop(): void {
    this.#dropped += 1;
  }

  /** The figures gathered over the `interval` ms since the last reading; the rates restart from zero. */
  read(stream: string, interval: number, totals: { segments: number; parts: number }): StreamStatsEvent {
    // No media time yet (one packet, or none): the wall clock stands in.
    const seconds = this.#mediaSeconds > 0 ? this.#mediaSeconds : Math.max(interval, 1) / 1000;
    const event: StreamStatsEvent = {
      stream,
      bitrate: Math.round((this.#bytes * 8) / seconds),
      fps: Math.round((this.#frames / seconds) * 100) / 100,
      keyframe_interval: Math.round(this.#keyframeInterval * 1000) / 1000,
      dropped: this.#dropped,
      segments: totals.segments,
      parts: totals.parts,
      interval,
    };
    this.#bytes = 0;
    this.#frames = 0;
    this.#dropped = 0;
    this.#mediaSeconds = 0;
    return event;
  }
}
