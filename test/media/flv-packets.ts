/**
 * Real media packets for packager tests: ffmpeg encodes a short test
 * pattern to FLV, and the engine's own FLV reader (`media/flv.ts`, what
 * ingest uses) turns it into packets. ffprobe then reads what was made.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import type { MediaPacket } from '../../media/packet.ts';
import { FlvReader } from '../../media/flv.ts';

const run = promisify(execFile);

/** How the test pattern is encoded. */
export interface PatternOptions {
  seconds: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Frames between keyframes. */
  gop?: number;
  audio?: boolean;
  video?: boolean;
}

/** Encodes the pattern to `file` (FLV) and returns its packets as the engine carries them, in file order. */
export async function patternPackets(file: string, options: PatternOptions, stream = 'test', rendition = 'source'): Promise<MediaPacket[]> {
  const { seconds, width = 320, height = 240, fps = 30, gop = 30 } = options;
  const args = ['-v', 'error', '-y'];
  const video = options.video ?? true;
  const audio = options.audio ?? true;
  if (video) args.push('-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}`);
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100');
  args.push('-t', String(seconds));
  if (video) args.push('-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', String(gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p');
  if (audio) args.push('-c:a', 'aac', '-b:a', '64k');
  args.push('-f', 'flv', file);
  await run('nice', ['-n', '10', 'ffmpeg', ...args]);
  const reader = new FlvReader({ stream, rendition });
  const result = reader.push(await readFile(file));
  if (result.error) throw result.error;
  return result.packets;
}

/** ffprobe's view of a file: its streams with frame counts, and its packets. */
export async function probeFile(file: string): Promise<{ streams: Record<string, string | number>[]; packets: { pts_time: string; dts_time: string; flags: string; duration_time?: string }[] }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-show_packets', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout);
}
