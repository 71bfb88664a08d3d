/**
 * The once-a-second figures of a ladder: what each rung wrote (bitrate,
 * frames, keyframe spacing) measured on the packets themselves, so they
 * hold whatever ffmpeg's own progress reports.
 */
import type { MediaPacket } from '../../media/packet.ts';

/** One `stats` record of `encode`, per stream per second. */
export interface LadderStats {
  stream: string;
  /** Frames per second out of the top rung. */
  fps: number;
  /** Media seconds encoded per wall second (1 = real time). */
  speed: number;
  /** Bits per second over all rungs. */
  bitrate: number;
  /** Bits per second of each rung. */
  rungs: Record<string, number>;
  /** Seconds between the last two keyframes of the top rung (0 until two are seen). */
  keyframe_interval: number;
  /** Input packets dropped in the interval (waiting for a keyframe, encoder behind or restarting). */
  dropped: number;
  /** Times ffmpeg was restarted after dying. */
  restarts: number;
  /** Frames ffmpeg reports encoded so far (its progress). */
  frames: number;
}

/** Counts one rung's packets between two reads. */
export class RungMeter {
  #bytes = 0;
  #frames = 0;
  #firstMs: number | undefined;
  #lastMs: number | undefined;
  #lastKeyframeMs: number | undefined;
  #keyframeInterval = 0;

  add(packet: MediaPacket): void {
    this.#bytes += packet.data.length;
    this.#frames += 1;
    const ms = (packet.dts * 1000) / packet.track.timescale;
    this.#firstMs ??= ms;
    this.#lastMs = ms;
    if (packet.keyframe) {
      if (this.#lastKeyframeMs !== undefined && !packet.discontinuity) this.#keyframeInterval = (ms - this.#lastKeyframeMs) / 1000;
      this.#lastKeyframeMs = ms;
    }
  }

  /** Figures over the last `seconds`, then starts a new interval. */
  take(seconds: number): { bitrate: number; fps: number; keyframeInterval: number; mediaMs: number } {
    const span = seconds > 0 ? seconds : 1;
    // Media time covered: the span of the interval's timestamps plus one frame.
    const mediaMs = this.#frames > 0 && this.#lastMs !== undefined && this.#firstMs !== undefined ? this.#lastMs - this.#firstMs + (this.#lastMs - this.#firstMs) / Math.max(1, this.#frames - 1) : 0;
    const figures = { bitrate: Math.round((this.#bytes * 8) / span), fps: Math.round((this.#frames / span) * 10) / 10, keyframeInterval: this.#keyframeInterval, mediaMs };
    this.#bytes = 0;
    this.#frames = 0;
    this.#firstMs = undefined;
    this.#lastMs = undefined;
    return figures;
  }
}
