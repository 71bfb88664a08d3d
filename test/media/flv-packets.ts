/**
 * Real media packets for packager tests, without an FLV reader of our own:
 * ffmpeg encodes a short test pattern to FLV (timescale 1000, AVCC video,
 * raw AAC), and ffprobe lists its packets with their bytes (`-show_data`)
 * and the streams' decoder configurations (`extradata`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MediaPacket, TrackInfo } from '../../media/packet.ts';

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

/** Parses ffprobe's hex dump (`00000000: 0164 000d ...  ascii`) into bytes. */
export function parseHexDump(dump: string): Buffer {
  const hex = dump
    .split('\n')
    .filter((line) => line.length > 10)
    .map((line) => line.slice(10, 49).replace(/ /g, ''))
    .join('');
  return Buffer.from(hex, 'hex');
}

interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  extradata?: string;
}

interface ProbePacket {
  stream_index: number;
  pts: number;
  dts: number;
  flags: string;
  data: string;
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
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_packets', '-show_streams', '-show_data', '-of', 'json', file], { maxBuffer: 256 * 1024 * 1024 });
  const probe = JSON.parse(stdout) as { streams: ProbeStream[]; packets: ProbePacket[] };
  const tracks = new Map<number, TrackInfo>();
  for (const s of probe.streams) {
    const config = parseHexDump(s.extradata ?? '');
    if (s.codec_type === 'video') {
      tracks.set(s.index, { kind: 'video', codec: 'h264', codecString: `avc1.${config.subarray(1, 4).toString('hex')}`, timescale: 1000, config, width: s.width, height: s.height, fps });
    } else {
      tracks.set(s.index, { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 1000, config, sampleRate: Number(s.sample_rate), channels: s.channels });
    }
  }
  return probe.packets.map((p) => ({
    stream,
    rendition,
    track: tracks.get(p.stream_index)!,
    pts: p.pts,
    dts: p.dts,
    keyframe: p.flags.startsWith('K'),
    data: parseHexDump(p.data),
  }));
}

/** ffprobe's view of a file: its streams with frame counts, and its packets. */
export async function probeFile(file: string): Promise<{ streams: Record<string, string | number>[]; packets: { pts_time: string; dts_time: string; flags: string; duration_time?: string }[] }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-show_packets', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout);
}
