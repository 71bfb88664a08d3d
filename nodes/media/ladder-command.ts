/**
 * The one ffmpeg command of a stream's ladder: FLV video on stdin, one
 * decode, `split`, a scaler and an encoder per rung, each rung written as
 * FLV to its own pipe. Keyframes are forced at every segment boundary and
 * scene-cut keyframes are off, so every rung has its keyframes on the same
 * frames and players can switch between rungs at any segment.
 */
import type { FfmpegCommand, FfmpegOutput } from '../../native/ffmpeg/command.ts';
import type { EncoderSpec } from '../../native/ffmpeg/encoders.ts';
import type { Rung } from './ladders.ts';

/** What the ladder command is made of. */
export interface LadderCommandOptions {
  rungs: readonly Rung[];
  encoder: EncoderSpec;
  /** The x264/x265 preset (`veryfast`); hardware encoders keep their defaults. */
  preset: string;
  /** The segment duration in seconds: a keyframe starts every one. */
  segmentSeconds: number;
  /**
   * The source time (seconds) of the first frame written. ffmpeg's `t` in a
   * keyframe expression counts from its first frame, so this puts the
   * keyframes of a run that starts mid-stream (a restart, a reload) on the
   * same grid of segment boundaries as the source time, as a run from 0 has.
   */
  startSeconds?: number;
  /** A splice (a reload's successor): a keyframe also on this frame (counted from 0, the first written). */
  spliceAtFrame?: number;
}

/** A number for an ffmpeg expression: milliseconds are the finest time the engine carries. */
function seconds(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/**
 * The keyframe expression: the first frame, the first frame of each segment
 * (source time `t + start` crossing a multiple of the segment; a tenth of a
 * millisecond of slack for the float division), and the splice frame (by
 * number: exact whatever ffmpeg makes of the input's start time).
 */
export function keyframeExpression(options: Pick<LadderCommandOptions, 'segmentSeconds' | 'startSeconds' | 'spliceAtFrame'>): string {
  const start = seconds(options.startSeconds ?? 0);
  const segment = seconds(options.segmentSeconds);
  const grid = `gte(floor((t+${start})/${segment}+0.0001),floor((prev_forced_t+${start})/${segment}+0.0001)+1)`;
  const splice = options.spliceAtFrame === undefined ? '' : `+eq(n,${options.spliceAtFrame})`;
  return `expr:if(isnan(prev_forced_t),1,${grid}${splice})`;
}

/** Encoder options that make keyframes fall only where forced. */
function keyframeOptions(encoder: EncoderSpec, options: LadderCommandOptions): string[] {
  const forced = ['-force_key_frames', keyframeExpression(options)];
  switch (encoder.hw) {
    case 'none':
      // x264/x265: no scene-cut keyframes; the GOP limit is left long so only forced ones occur.
      return [...forced, '-sc_threshold', '0', ...(encoder.name === 'libx264' ? ['-x264-params', 'keyint=600:min-keyint=1:scenecut=0'] : [])];
    case 'nvenc':
      return [...forced, '-forced-idr', '1', '-no-scenecut', '1'];
    default:
      return [...forced, '-forced_idr', '1'];
  }
}

/** Rate control for one rung: the target bitrate, capped, with a buffer of two seconds' worth. */
function rateOptions(encoder: EncoderSpec, rung: Rung, preset: string): string[] {
  const kbps = Math.round(rung.bitrate / 1000);
  const rate = ['-b:v', `${kbps}k`, '-maxrate', `${Math.round(kbps * 1.1)}k`, '-bufsize', `${kbps * 2}k`];
  return encoder.hw === 'none' && encoder.name !== 'libsvtav1' && encoder.name !== 'libaom-av1' ? [...rate, '-preset', preset] : rate;
}

/**
 * Builds the command. Input timestamps are kept (`-copyts`), so a rung's
 * packets carry the source's times and line up with the audio the node
 * copies itself; output is FLV without the seek-back for duration and size
 * (pipes cannot seek).
 *
 * @example
 * ladderCommand({ rungs: [{ name: '360p', height: 360, bitrate: 800_000 }], encoder, preset: 'veryfast', segmentSeconds: 2 })
 */
export function ladderCommand(options: LadderCommandOptions): FfmpegCommand {
  const { rungs, encoder } = options;
  const labels = rungs.map((_, i) => `s${i}`);
  const split = rungs.length > 1 ? `[0:v]split=${rungs.length}${labels.map((l) => `[${l}]`).join('')}` : `[0:v]null[s0]`;
  const scalers = rungs.map((rung, i) => `[s${i}]${['scale=-2:' + rung.height, encoder.upload].filter(Boolean).join(',')}[v${i}]`);
  const outputs: FfmpegOutput[] = rungs.map((rung, i) => ({
    to: { pipe: true },
    options: [
      '-map', `[v${i}]`, '-an',
      '-c:v', encoder.name,
      ...rateOptions(encoder, rung, options.preset),
      ...keyframeOptions(encoder, options),
      // The demuxer's time base (FLV's milliseconds), not 1/fps: each frame keeps its source time exactly, so a rung's frames line up with the source's and with the rungs of another run.
      '-enc_time_base', '-1',
      '-f', 'flv', '-flvflags', 'no_duration_filesize',
    ],
  }));
  return {
    global: [...encoder.global, '-copyts'],
    // Probe little: the FLV header and the AVC sequence header say everything, and live input must not wait.
    inputs: [{ from: { stdin: true }, options: ['-f', 'flv', '-probesize', '32768', '-analyzeduration', '0'] }],
    filterComplex: [split, ...scalers].join(';'),
    outputs,
    progress: true,
  };
}
