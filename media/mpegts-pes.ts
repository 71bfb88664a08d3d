/**
 * The contents of MPEG-TS PES packets as the demuxer (`mpegts.ts`) reads
 * them: the PES header's timestamps (33-bit, unwrapped by the caller with
 * `unwrapNear`), H.264 access units from Annex B to length-prefixed with an
 * `avcC` built from the in-band SPS/PPS, and AAC from ADTS to raw frames
 * with an AudioSpecificConfig. Timescale 90000, MPEG-TS's own.
 */
import { adtsToAsc, parseAsc, splitAdts } from './aac.ts';
import { NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, annexBToNalus, avcTrackFields, buildAvcC, nalType, nalusToAvcc } from './avc.ts';
import { MediaFormatError } from './format-error.ts';
import type { MediaPacket, TrackInfo } from './packet.ts';

export const TIMESCALE = 90_000;
const WRAP = 2 ** 33;

/** Where decoded frames go: packets and new configs in order, and reasons for what was skipped. */
export interface FrameSink {
  packets: MediaPacket[];
  configs: TrackInfo[];
  skip(reason: string): void;
}

/** A PES packet's header: its raw 33-bit PTS, and DTS when it has one, and its payload (to its declared length). */
export interface PesHeader {
  pts: number;
  dts: number | undefined;
  body: Buffer;
}

/**
 * Reads a whole PES packet's header, given the length it declares (as the
 * demuxer read it to know the PES was whole; 0: unbounded); undefined when
 * it carries no PTS. Throws `MediaFormatError` on one that does not parse.
 */
export function readPesHeader(pes: Buffer, declared: number): PesHeader | undefined {
  if (pes.length < 9 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) throw new MediaFormatError('PES packet without its start code');
  const flags = pes[7]!;
  const headerEnd = 9 + pes[8]!;
  if (headerEnd > pes.length) throw new MediaFormatError('PES header truncated');
  if (!(flags & 0x80)) return undefined;
  return {
    pts: readTimestamp(pes, 9),
    dts: flags & 0x40 ? readTimestamp(pes, 14) : undefined,
    body: pes.subarray(headerEnd, declared ? Math.min(pes.length, 6 + declared) : pes.length),
  };
}

/** The tracks of one stream as its PES are decoded: the current video and audio configs, and the last SPS and PPS. */
export class TsFrames {
  readonly stream: string;
  readonly rendition: string;
  video: TrackInfo | undefined;
  audio: TrackInfo | undefined;
  #sps: Buffer[] = [];
  #pps: Buffer[] = [];

  constructor(stream: string, rendition: string) {
    this.stream = stream;
    this.rendition = rendition;
  }

  /** One H.264 access unit (Annex B) as a packet; a new SPS/PPS gives a new config first. */
  videoAccessUnit(body: Buffer, pts: number, dts: number, out: FrameSink): void {
    const nalus = annexBToNalus(body);
    const sps = nalus.filter((nal) => nalType(nal) === NAL_SPS);
    const pps = nalus.filter((nal) => nalType(nal) === NAL_PPS);
    if (sps.length) this.#sps = sps;
    if (pps.length) this.#pps = pps;
    if ((sps.length || pps.length) && this.#sps.length && this.#pps.length) {
      const config = buildAvcC(this.#sps, this.#pps);
      if (!this.video || !this.video.config.equals(config)) {
        this.video = { kind: 'video', codec: 'h264', timescale: TIMESCALE, config, ...avcTrackFields(config) };
        out.configs.push(this.video);
      }
    }
    if (!this.video) {
      out.skip('video before its first SPS and PPS');
      return;
    }
    // Parameter sets travel in the avcC; access unit delimiters mean nothing in MP4.
    const frame = nalus.filter((nal) => {
      const type = nalType(nal);
      return type !== NAL_SPS && type !== NAL_PPS && type !== NAL_AUD;
    });
    if (!frame.length) return;
    const keyframe = frame.some((nal) => nalType(nal) === NAL_IDR);
    out.packets.push({ stream: this.stream, rendition: this.rendition, track: this.video, pts, dts, keyframe, data: nalusToAvcc(frame) });
  }

  /** The ADTS frames of an audio PES as packets, each AAC config change a new config first. */
  audioFrames(body: Buffer, pts: number, out: FrameSink): void {
    const frames = splitAdts(body);
    for (let i = 0; i < frames.length; i++) {
      const { header, frame } = frames[i]!;
      const config = adtsToAsc(header);
      if (!this.audio || !this.audio.config.equals(config)) {
        const asc = parseAsc(config);
        this.audio = { kind: 'audio', codec: 'aac', codecString: asc.codecString, timescale: TIMESCALE, config, sampleRate: asc.sampleRate, channels: asc.channels };
        out.configs.push(this.audio);
      }
      // Each AAC frame holds 1024 samples; frames after the first in a PES follow on from its PTS.
      const at = pts + Math.round((i * 1024 * TIMESCALE) / header.sampleRate);
      out.packets.push({ stream: this.stream, rendition: this.rendition, track: this.audio, pts: at, dts: at, keyframe: true, data: frame });
    }
  }
}

/** Continues a 33-bit timestamp past its wraps: of `raw + k·2^33`, the one closest to `reference` (the first value is taken as it is). */
export function unwrapNear(raw: number, reference: number | undefined): number {
  if (reference === undefined) return raw;
  return raw + Math.round((reference - raw) / WRAP) * WRAP;
}

/** A 33-bit PES timestamp at `offset` (marker bits between its three parts). */
export function readTimestamp(pes: Buffer, offset: number): number {
  if (offset + 5 > pes.length) throw new MediaFormatError('PES timestamp truncated');
  const high = (pes[offset]! >> 1) & 0x07;
  const middle = pes.readUInt16BE(offset + 1) >> 1;
  const low = pes.readUInt16BE(offset + 3) >> 1;
  return high * 2 ** 30 + middle * 2 ** 15 + low;
}
