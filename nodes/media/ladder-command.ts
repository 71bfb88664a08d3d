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
}

/** Encoder options that make keyframes fall only where forced. */
function keyframeOptions(encoder: EncoderSpec, segmentSeconds: number): string[] {
  const forced = ['-force_key_frames', `expr:gte(t,n_forced*${segmentSeconds})`];
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
      ...keyframeOptions(encoder, options.segmentSeconds),
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
