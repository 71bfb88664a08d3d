/**
 * FLV: tag bodies as RTMP carries them and as FLV files hold them, turned
 * into `MediaPacket`s and back; a streaming reader of FLV bytes and a
 * writer of them. Only H.264 (codec id 7) and AAC (sound format 10) are
 * carried; other codecs are skipped with a reason, never thrown.
 *
 * Timestamps are milliseconds (timescale 1000). A video tag's composition
 * time offset (signed, 24 bits) gives `pts = dts + cts`.
 */
import { avcTrackFields } from './avc.ts';
import { parseAsc } from './aac.ts';
import { MediaFormatError } from './format-error.ts';
import type { MediaPacket, TrackInfo } from './packet.ts';

/** FLV tag types. */
export const FLV_AUDIO = 8;
export const FLV_VIDEO = 9;
export const FLV_SCRIPT = 18;

const CODEC_AVC = 7;
const SOUND_AAC = 10;

/** One FLV tag: its type, its timestamp in ms, its body (what RTMP carries as a message). */
export interface FlvTag {
  type: number;
  timestamp: number;
  body: Buffer;
}

/** What one tag turned into: a packet, a new track configuration, or nothing (with why). */
export type FlvTagResult = { kind: 'packet'; packet: MediaPacket } | { kind: 'config'; track: TrackInfo } | { kind: 'skip'; reason: string };

/**
 * Turns the tags of one stream into packets, keeping each track's current
 * configuration from its sequence header.
 */
export class FlvTagDecoder {
  readonly stream: string;
  readonly rendition: string;
  /** The current video track (from the last AVC sequence header). */
  video: TrackInfo | undefined;
  /** The current audio track (from the last AAC sequence header). */
  audio: TrackInfo | undefined;

  constructor(stream: string, rendition = 'source') {
    this.stream = stream;
    this.rendition = rendition;
  }

  /** Decodes one tag; throws MediaFormatError when the body is malformed. */
  decode(tag: FlvTag): FlvTagResult {
    if (tag.type === FLV_VIDEO) return this.#video(tag);
    if (tag.type === FLV_AUDIO) return this.#audio(tag);
    if (tag.type === FLV_SCRIPT) return { kind: 'skip', reason: 'script data' };
    throw new MediaFormatError(`unknown FLV tag type ${tag.type}`);
  }

  #video(tag: FlvTag): FlvTagResult {
    const body = tag.body;
    if (body.length < 1) throw new MediaFormatError('empty FLV video tag');
    // Enhanced RTMP (HEVC, AV1, VP9 by FourCC) sets the top bit of the first byte.
    if (body[0]! & 0x80) return { kind: 'skip', reason: 'enhanced RTMP video (HEVC/AV1/VP9) is not supported' };
    const codec = body[0]! & 0x0f;
    if (codec !== CODEC_AVC) return { kind: 'skip', reason: `FLV video codec id ${codec} is not supported (only 7, H.264)` };
    if (body.length < 5) throw new MediaFormatError('FLV AVC video tag shorter than 5 bytes');
    const packetType = body[1]!;
    if (packetType === 0) {
      const config = Buffer.from(body.subarray(5));
      this.video = { kind: 'video', codec: 'h264', timescale: 1000, config, ...avcTrackFields(config) };
      return { kind: 'config', track: this.video };
    }
    if (packetType === 2) return { kind: 'skip', reason: 'end of sequence' };
    if (packetType !== 1) throw new MediaFormatError(`unknown AVC packet type ${packetType}`);
    if (!this.video) return { kind: 'skip', reason: 'video frame before its sequence header' };
    const cts = body.readIntBE(2, 3);
    const frameType = body[0]! >> 4;
    return {
      kind: 'packet',
      packet: { stream: this.stream, rendition: this.rendition, track: this.video, pts: tag.timestamp + cts, dts: tag.timestamp, keyframe: frameType === 1, data: body.subarray(5) },
    };
  }

  #audio(tag: FlvTag): FlvTagResult {
    const body = tag.body;
    if (body.length < 1) throw new MediaFormatError('empty FLV audio tag');
    const format = body[0]! >> 4;
    if (format !== SOUND_AAC) return { kind: 'skip', reason: `FLV sound format ${format} is not supported (only 10, AAC)` };
    if (body.length < 2) throw new MediaFormatError('FLV AAC audio tag shorter than 2 bytes');
    if (body[1] === 0) {
      // ffmpeg copying ADTS audio into FLV writes an empty sequence header first and the real one after it.
      if (body.length === 2) return { kind: 'skip', reason: 'empty AAC sequence header' };
      const config = Buffer.from(body.subarray(2));
      const asc = parseAsc(config);
      this.audio = { kind: 'audio', codec: 'aac', codecString: asc.codecString, timescale: 1000, config, sampleRate: asc.sampleRate, channels: asc.channels };
      return { kind: 'config', track: this.audio };
    }
    if (!this.audio) return { kind: 'skip', reason: 'audio frame before its sequence header' };
    return {
      kind: 'packet',
      packet: { stream: this.stream, rendition: this.rendition, track: this.audio, pts: tag.timestamp, dts: tag.timestamp, keyframe: true, data: body.subarray(2) },
    };
  }
}

/** A time in `timescale` units as FLV's milliseconds (how the engine writes packets for ffmpeg). */
export function toMs(value: number, timescale: number): number {
  return timescale === 1000 ? value : Math.round((value * 1000) / timescale);
}

/** The tag that carries a packet (timestamps converted to ms). */
export function packetToTag(packet: MediaPacket): FlvTag {
  const { track } = packet;
  const dts = toMs(packet.dts, track.timescale);
  if (track.kind === 'video') {
    if (track.codec !== 'h264') throw new MediaFormatError(`FLV cannot carry ${track.codec} video`);
    const cts = toMs(packet.pts, track.timescale) - dts;
    const head = Buffer.from([(packet.keyframe ? 0x10 : 0x20) | CODEC_AVC, 1, 0, 0, 0]);
    head.writeIntBE(cts, 2, 3);
    return { type: FLV_VIDEO, timestamp: dts, body: Buffer.concat([head, packet.data]) };
  }
  if (track.codec !== 'aac') throw new MediaFormatError(`FLV cannot carry ${track.codec} audio`);
  return { type: FLV_AUDIO, timestamp: dts, body: Buffer.concat([Buffer.from([0xaf, 1]), packet.data]) };
}

/** The sequence header tag that announces a track's configuration. */
export function sequenceHeaderTag(track: TrackInfo, timestamp: number): FlvTag {
  if (track.kind === 'video') return { type: FLV_VIDEO, timestamp, body: Buffer.concat([Buffer.from([0x10 | CODEC_AVC, 0, 0, 0, 0]), track.config]) };
  return { type: FLV_AUDIO, timestamp, body: Buffer.concat([Buffer.from([0xaf, 0]), track.config]) };
}

/** A tag's bytes in a file: 11-byte header, body, and the PreviousTagSize that follows it. */
export function encodeTag(tag: FlvTag): Buffer {
  const out = Buffer.alloc(11 + tag.body.length + 4);
  const timestamp = Math.max(0, tag.timestamp);
  out[0] = tag.type;
  out.writeUIntBE(tag.body.length, 1, 3);
  out.writeUIntBE(timestamp & 0xffffff, 4, 3);
  out[7] = (timestamp >>> 24) & 0xff;
  tag.body.copy(out, 11);
  out.writeUInt32BE(11 + tag.body.length, 11 + tag.body.length);
  return out;
}

/** The 9-byte FLV file header and the first PreviousTagSize (0). */
export function flvHeader(options: { audio: boolean; video: boolean }): Buffer {
  return Buffer.from([0x46, 0x4c, 0x56, 1, (options.audio ? 4 : 0) | (options.video ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0]);
}

/**
 * Writes packets as FLV bytes: the file header before the first tag, and a
 * track's sequence header before its first packet and whenever its
 * configuration changes.
 */
export class FlvWriter {
  readonly #flags: { audio: boolean; video: boolean };
  #started = false;
  readonly #configs = new Map<string, Buffer>();

  constructor(options: { audio?: boolean; video?: boolean } = {}) {
    this.#flags = { audio: options.audio ?? true, video: options.video ?? true };
  }

  /** The bytes for one packet (with whatever header must precede it); throws MediaFormatError for a codec FLV cannot carry. */
  write(packet: MediaPacket): Buffer {
    const tag = packetToTag(packet);
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      parts.push(flvHeader(this.#flags));
    }
    const known = this.#configs.get(packet.track.kind);
    if (!known || !known.equals(packet.track.config)) {
      this.#configs.set(packet.track.kind, packet.track.config);
      parts.push(encodeTag(sequenceHeaderTag(packet.track, tag.timestamp)));
    }
    parts.push(encodeTag(tag));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/** What a push into the reader produced. */
export interface FlvReadResult {
  packets: MediaPacket[];
  /** New track configurations, in the order their sequence headers came. */
  configs: TrackInfo[];
  /** Reasons tags were skipped, each reported once per reader. */
  skipped: string[];
  /** Set once the bytes stopped being FLV; the reader then ignores further input. */
  error?: MediaFormatError;
}

/**
 * Reads FLV bytes pushed in chunks of any size: the file header, then
 * tags. Never throws: malformed input ends the reader with an `error`.
 */
export class FlvReader {
  readonly decoder: FlvTagDecoder;
  #pending: Buffer = Buffer.alloc(0);
  #headerDone = false;
  #failed: MediaFormatError | undefined;
  readonly #reported = new Set<string>();

  constructor(options: { stream: string; rendition?: string }) {
    this.decoder = new FlvTagDecoder(options.stream, options.rendition);
  }

  /** The error that stopped the reader, if any. */
  get error(): MediaFormatError | undefined {
    return this.#failed;
  }

  /** Bytes received but not yet a whole tag. */
  get buffered(): number {
    return this.#pending.length;
  }

  push(chunk: Buffer): FlvReadResult {
    const result: FlvReadResult = { packets: [], configs: [], skipped: [] };
    if (this.#failed) return { ...result, error: this.#failed };
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    try {
      let offset = 0;
      if (!this.#headerDone) {
        if (data.length < 13) {
          this.#pending = data;
          if (!isFlvPrefix(data)) throw new MediaFormatError('not FLV: the bytes do not start with `FLV`');
          return result;
        }
        if (!isFlvPrefix(data)) throw new MediaFormatError('not FLV: the bytes do not start with `FLV`');
        offset = data.readUInt32BE(5) + 4;
        if (offset < 13 || offset > 1024) throw new MediaFormatError(`FLV header size ${offset - 4} is invalid`);
        if (data.length < offset) {
          this.#pending = data;
          return result;
        }
        this.#headerDone = true;
      }
      while (offset + 11 <= data.length) {
        const size = data.readUIntBE(offset + 1, 3);
        const end = offset + 11 + size + 4;
        if (end > data.length) break;
        const type = data[offset]! & 0x1f;
        if (data[offset]! & 0x20) throw new MediaFormatError('encrypted FLV tags are not supported');
        const timestamp = data.readUIntBE(offset + 4, 3) + data[offset + 7]! * 0x1000000;
        const previous = data.readUInt32BE(end - 4);
        if (previous !== 11 + size) throw new MediaFormatError(`FLV tag at byte ${offset} has PreviousTagSize ${previous}, expected ${11 + size}`);
        this.#take(result, { type, timestamp, body: data.subarray(offset + 11, offset + 11 + size) });
        offset = end;
      }
      // Copy the remainder: it must not pin the caller's whole chunk.
      this.#pending = offset >= data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(offset));
      data = this.#pending;
      if (!this.#pending.length) return result;
      const type = this.#pending[0]! & 0x1f;
      if (type !== FLV_AUDIO && type !== FLV_VIDEO && type !== FLV_SCRIPT) throw new MediaFormatError(`unknown FLV tag type ${type}`);
    } catch (error) {
      this.#failed = error instanceof MediaFormatError ? error : new MediaFormatError(String(error));
      this.#pending = Buffer.alloc(0);
      result.error = this.#failed;
    }
    return result;
  }

  /** The input ended: an error when it stopped inside the header or a tag. */
  end(): FlvReadResult {
    const result: FlvReadResult = { packets: [], configs: [], skipped: [] };
    if (this.#failed) return { ...result, error: this.#failed };
    if (this.#pending.length > 0 || !this.#headerDone) {
      this.#failed = new MediaFormatError(this.#headerDone ? `FLV ends inside a tag (${this.#pending.length} bytes left over)` : 'FLV ends before its header');
      this.#pending = Buffer.alloc(0);
      result.error = this.#failed;
    }
    return result;
  }

  #take(result: FlvReadResult, tag: FlvTag): void {
    const decoded = this.decoder.decode(tag);
    if (decoded.kind === 'packet') result.packets.push(decoded.packet);
    else if (decoded.kind === 'config') result.configs.push(decoded.track);
    else if (!this.#reported.has(decoded.reason)) {
      this.#reported.add(decoded.reason);
      result.skipped.push(decoded.reason);
    }
  }
}

function isFlvPrefix(data: Buffer): boolean {
  const signature = [0x46, 0x4c, 0x56];
  for (let i = 0; i < Math.min(3, data.length); i++) if (data[i] !== signature[i]) return false;
  return true;
}
