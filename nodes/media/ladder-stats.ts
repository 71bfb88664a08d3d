/**
 * The once-a-second figures of a ladder: what each rung wrote (bitrate,
 * frames, keyframe spacing) measured on the packets themselves, so they
 * hold whatever ffmpeg's own progress reports.
 */
import type { MediaPacket } from '../../media/packet.ts';

/** One `stats` record of `encode`, per stream per second. */
export interface LadderStats {
  stream: string;
  /** Frames per media second out of the top rung. */
  fps: number;
  /** Media seconds encoded per wall second (1 = real time). */
  speed: number;
  /** Bits per media second over all rungs. */
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

  /**
   * Figures of the interval, then starts a new one. Rates are per media
   * second when the interval's timestamps span one (a live source arrives
   * in bursts: per wall second, a burst would read as 120 fps), else per
   * wall second (`seconds`).
   */
  take(seconds: number): { bitrate: number; fps: number; keyframeInterval: number; mediaMs: number } {
    // Media time covered: the span of the interval's timestamps plus one frame.
    const spanMs = this.#frames > 1 ? this.#lastMs! - this.#firstMs! : 0;
    const mediaMs = spanMs > 0 ? spanMs + spanMs / (this.#frames - 1) : 0;
    const per = mediaMs > 0 ? mediaMs / 1000 : seconds > 0 ? seconds : 1;
    const figures = { bitrate: Math.round((this.#bytes * 8) / per), fps: Math.round((this.#frames / per) * 10) / 10, keyframeInterval: this.#keyframeInterval, mediaMs };
    this.#bytes = 0;
    this.#frames = 0;
    this.#firstMs = undefined;
    this.#lastMs = undefined;
    return figures;
  }
}
