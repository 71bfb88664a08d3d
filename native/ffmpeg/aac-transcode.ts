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
  /** The PID of the audio to encode: the input's PMT may list others (the first audio ffmpeg sees unless told). */
  pid?: number;
}

/**
 * The command (for `FfmpegProcess.spawn`): the audio on `pid` (by PID, never
 * "the first audio": a stream listed before it that never carries a packet
 * would be mapped and no AAC written). No probing to speak of
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
        options: ['-map', options.pid === undefined ? '0:a:0' : `0:i:0x${options.pid.toString(16)}`, '-c:a', 'aac', '-b:a', options.bitrate ?? '128k', '-f', 'mpegts', '-mpegts_copyts', '1', '-pes_payload_size', '0', '-flush_packets', '1'],
      },
    ],
  };
}
