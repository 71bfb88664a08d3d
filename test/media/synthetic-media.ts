/**
 * Synthetic media packets for pure packager tests and benchmarks: real
 * decoder configurations (so init segments are valid), placeholder frame
 * bytes, and timestamps laid out as a live encoder would.
 */
import type { MediaPacket, TrackInfo } from '../../media/packet.ts';

/** An avcC for 320x240 High profile, as x264 writes it. */
export const avcConfig = Buffer.from('0164000dffe100196764000dacd94141fb0110000003001000000303c0f142996001000468ef8fcbfdf8f800', 'hex');
/** AAC-LC, 48 kHz, stereo. */
export const aacConfig = Buffer.from('1190', 'hex');

export function videoTrack(overrides: Partial<TrackInfo> = {}): TrackInfo {
  return { kind: 'video', codec: 'h264', codecString: 'avc1.64000d', timescale: 1000, config: avcConfig, width: 320, height: 240, fps: 25, ...overrides };
}

export function audioTrack(overrides: Partial<TrackInfo> = {}): TrackInfo {
  return { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 1000, config: aacConfig, sampleRate: 48000, channels: 2, ...overrides };
}

/** How a synthetic stream is laid out. */
export interface SyntheticOptions {
  stream?: string;
  rendition?: string;
  /** Media length in ms. */
  duration: number;
  /** Video frame interval in ms (40: 25 fps); 0 for no video. */
  frame?: number;
  /** Frames between keyframes. */
  gop?: number;
  /** Audio, as 1024-sample AAC frames at 48 kHz. */
  audio?: boolean;
  /** Bytes per frame. */
  size?: number;
  /** Wall clock of media time 0 (ms); packets get `arrival` = start + their dts. */
  start?: number;
  video?: TrackInfo;
}

/** A stream's packets interleaved by decode time, as an ingest delivers them. */
export function syntheticStream(options: SyntheticOptions): MediaPacket[] {
  const { stream = 's', rendition = 'source', duration, frame = 40, gop = 25, audio = false, size = 100, start } = options;
  const packets: MediaPacket[] = [];
  const video = options.video ?? videoTrack();
  if (frame > 0) {
    for (let i = 0; i * frame < duration; i++) {
      const dts = i * frame;
      packets.push({ stream, rendition, track: video, pts: dts, dts, keyframe: i % gop === 0, data: Buffer.alloc(size, i & 0xff) });
    }
  }
  if (audio) {
    const track = audioTrack();
    for (let i = 0; (i * 1024 * 1000) / 48000 < duration; i++) {
      const dts = Math.round((i * 1024 * 1000) / 48000);
      packets.push({ stream, rendition, track, pts: dts, dts, keyframe: true, data: Buffer.alloc(20, i & 0xff) });
    }
  }
  packets.sort((a, b) => a.dts - b.dts || (a.track.kind === 'video' ? -1 : 1));
  if (start !== undefined) for (const packet of packets) packet.arrival = start + packet.dts;
  return packets;
}
