/**
 * The ffmpeg command that turns a live stream's audio into AAC: MPEG-TS in
 * on stdin (its tables and one audio stream: MP2, AC-3, E-AC-3, Opus...),
 * MPEG-TS out on stdout holding that audio as AAC (ADTS) with the input's
 * own timestamps, so the engine reads it back with the same 90 kHz clock as
 * the video it demuxed itself.
 */
import type { FfmpegCommand } from './command.ts';

/** Options of `aacTranscodeCommand`. */
export interface AacTranscodeOptions {
  /** The AAC bit rate (`128k` unless told). */
  bitrate?: string;
}

/**
 * The command (for `FfmpegProcess.spawn`). No probing to speak of
 * (`-probesize 32 -analyzeduration 0`: the PMT names the codec, and the
 * decoder learns the rest from the first frame), `-copyts` and the muxer's
 * `mpegts_copyts` so timestamps pass through unshifted, and each PES flushed
 * as soon as it is written.
 *
 * @example
 * FfmpegProcess.spawn(aacTranscodeCommand()).stdin.write(tsPackets);
 */
export function aacTranscodeCommand(options: AacTranscodeOptions = {}): FfmpegCommand {
  return {
    global: ['-copyts'],
    inputs: [{ from: { stdin: true }, options: ['-f', 'mpegts', '-probesize', '32', '-analyzeduration', '0', '-fflags', '+nobuffer'] }],
    outputs: [
      {
        to: { stdout: true },
        options: ['-map', '0:a:0', '-c:a', 'aac', '-b:a', options.bitrate ?? '128k', '-f', 'mpegts', '-mpegts_copyts', '1', '-pes_payload_size', '0', '-flush_packets', '1'],
      },
    ],
  };
}
