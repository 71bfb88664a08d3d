/**
 * ffprobe's JSON, typed: the streams and format of a file or URL, and
 * optionally counted frames or the packets (for keyframe checks).
 */
import { FfmpegProcess, runToEnd } from './process.ts';

/** One stream as ffprobe reports it (the fields the engine and its tests read). */
export interface ProbeStream {
  index: number;
  codec_type: 'video' | 'audio' | 'data' | 'subtitle' | string;
  codec_name?: string;
  profile?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  /** `30/1` */
  r_frame_rate?: string;
  avg_frame_rate?: string;
  sample_rate?: string;
  channels?: number;
  duration?: string;
  bit_rate?: string;
  nb_frames?: string;
  /** With `countFrames`: frames decoded. */
  nb_read_frames?: string;
}

/** The container, as ffprobe reports it. */
export interface ProbeFormat {
  format_name: string;
  duration?: string;
  size?: string;
  bit_rate?: string;
}

/** One packet (with `packets`): `flags` has `K` on keyframes. */
export interface ProbePacket {
  stream_index: number;
  pts_time?: string;
  dts_time?: string;
  size?: string;
  flags: string;
}

/** What `ffprobe` returns. */
export interface ProbeResult {
  streams: ProbeStream[];
  format: ProbeFormat;
  packets?: ProbePacket[];
}

/** What to ask for beyond streams and format. */
export interface ProbeOptions {
  /** Decode every frame to count them (`nb_read_frames`); slow on long inputs. */
  countFrames?: boolean;
  /** List every packet (`packets`), e.g. to find keyframes. */
  packets?: boolean;
  /** Only this stream (`v:0`, `a`). */
  select?: string;
  /** Input options placed before the input (`['-f', 'flv']`). */
  inputOptions?: readonly string[];
  binary?: string;
}

/**
 * Probes `input` (a file path or a URL ffprobe can open). Rejects with an
 * `FfmpegError` carrying ffprobe's stderr when it cannot read it.
 *
 * @example
 * const { streams } = await ffprobe('out.mp4', { countFrames: true });
 */
export async function ffprobe(input: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const args = ['-hide_banner', '-v', 'error', '-of', 'json', '-show_streams', '-show_format'];
  if (options.countFrames) args.push('-count_frames');
  if (options.packets) args.push('-show_packets', '-show_entries', 'packet=stream_index,pts_time,dts_time,size,flags:stream:format');
  if (options.select) args.push('-select_streams', options.select);
  args.push(...(options.inputOptions ?? []), '-i', input);
  const process = FfmpegProcess.spawnRaw(args, { binary: options.binary ?? 'ffprobe' });
  const text = (await runToEnd(process, 0)).toString('utf8');
  const parsed = JSON.parse(text) as Partial<ProbeResult>;
  return { streams: parsed.streams ?? [], format: parsed.format ?? { format_name: '' }, packets: parsed.packets };
}
