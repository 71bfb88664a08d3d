/**
 * An MPEG-TS demuxer (what SRT and many encoders carry): PAT and PMT, PES
 * reassembly, H.264 (stream type 0x1b) from Annex B to length-prefixed
 * access units with an `avcC` built from the in-band SPS/PPS, and AAC
 * (stream type 0x0f) from ADTS to raw frames with an AudioSpecificConfig.
 * Timestamps stay at MPEG-TS's 90 kHz (timescale 90000), unwrapped past
 * their 33 bits. One access unit per PES, as ffmpeg and broadcast muxers write.
 *
 * Loss (SRT over a bad link drops whole 188-byte packets) never ends the
 * reader: each PID's continuity counter and the transport-error bit mark a
 * PES with a gap, which is dropped and counted (`ts_loss`), once per PES
 * lost; the PES before a lost start is kept when it ended whole (its
 * declared length, or for unbounded video PES the adaptation-field stuffing
 * of its last packet). A PES whose ADTS or H.264 does not parse is dropped
 * as `ts_corrupt`, an unfinished one at the end (short of its length, or
 * unbounded without its stuffed end) as `ts_truncated`. Only bytes without
 * sync at the start are fatal.
 */
import { adtsToAsc, parseAsc, splitAdts } from './aac.ts';
import { NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, annexBToNalus, avcTrackFields, buildAvcC, nalType, nalusToAvcc } from './avc.ts';
import { MediaFormatError } from './format-error.ts';
import type { MediaPacket, TrackInfo } from './packet.ts';

const PACKET = 188;
const SYNC = 0x47;
const TIMESCALE = 90_000;
const STREAM_H264 = 0x1b;
const STREAM_AAC = 0x0f;
/** Bytes skipped looking for sync before the input is judged not MPEG-TS. */
const MAX_RESYNC = 64 * 1024;
const WRAP = 2 ** 33;
/**
 * The largest PES reassembled: a video PES may leave its length unset and
 * run to the next start flag, so garbage without one would grow without
 * bound. Far above a real access unit (a 4K intra frame is ~1 MB).
 */
export const MAX_PES_BYTES = 8 * 1024 * 1024;

/** What a push into the reader produced (the same shape as `FlvReadResult`). */
export interface TsReadResult {
  packets: MediaPacket[];
  configs: TrackInfo[];
  skipped: string[];
  /**
   * PES packets dropped in this push, by reason: `oversized_pes` (grew past
   * `MAX_PES_BYTES`), `ts_loss` (a TS packet of it was lost or flagged in
   * error), `ts_corrupt` (its ADTS or H.264 did not parse), `ts_truncated`
   * (unfinished when the input ended). The reader goes on at the next start.
   */
  drops?: Record<string, number>;
  /**
   * With `transcodeAudio`: the TS packets of an audio stream the reader
   * cannot decode itself (MP2, AC-3, E-AC-3, Opus), with the PAT and
   * PMT, in input order: MPEG-TS an ffmpeg can turn into AAC with the same
   * timestamps. `codec` names the audio; the packets hold all of this push.
   */
  foreignAudio?: { codec: string; packets: Buffer };
  error?: MediaFormatError;
}

interface Elementary {
  kind: 'video' | 'audio';
  chunks: Buffer[];
  /** Bytes in `chunks`. */
  bytes: number;
  /** The last continuity counter seen on this PID (undefined until the first packet, or after one in error). */
  counter: number | undefined;
  /** Packets of a PES whose start was lost are being skipped (its drop is already counted). */
  lost: boolean;
  /**
   * The PES in progress (assembled or skipped) ended with the last packet of this PID: its payload stopped
   * short of the packet (adaptation-field stuffing, which MPEG-TS puts only where a PES ends), or it holds
   * all the bytes its header declares. What an unbounded video PES has instead of a length.
   */
  ended: boolean;
  /** The last unwrapped DTS (the PTS of PES without one), in 90 kHz units: the reference the next is unwrapped against. */
  lastDts: number | undefined;
  /** The DTS step between the last two video PES read with no loss between them: one frame's duration. */
  frameTicks: number | undefined;
  /** PES counted lost since the last one read (undefined: none lost). */
  lostSince: number | undefined;
}

function elementary(kind: 'video' | 'audio'): Elementary {
  return { kind, chunks: [], bytes: 0, counter: undefined, lost: false, ended: false, lastDts: undefined, frameTicks: undefined, lostSince: undefined };
}

/** Reads MPEG-TS bytes pushed in chunks of any size; never throws (malformed input ends it with `error`). */
export class TsReader {
  readonly stream: string;
  readonly rendition: string;
  video: TrackInfo | undefined;
  audio: TrackInfo | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #pmtPid: number | undefined;
  readonly #pids = new Map<number, Elementary>();
  #sps: Buffer[] = [];
  #pps: Buffer[] = [];
  #skippedBytes = 0;
  #synced = false;
  #failed: MediaFormatError | undefined;
  readonly #reported = new Set<string>();
  #result: TsReadResult = { packets: [], configs: [], skipped: [] };
  readonly #transcodeAudio: boolean;
  /** The PID and codec of the audio passed on as `foreignAudio`, once the PMT has announced it. */
  #foreign: { pid: number; codec: string } | undefined;
  #foreignPackets: Buffer[] = [];
  #timeline: number | undefined;

  /**
   * `transcodeAudio`: when the stream's audio is not AAC, pass its TS packets on (`foreignAudio`) for a
   * transcoder rather than skipping it with a warning.
   */
  constructor(options: { stream: string; rendition?: string; transcodeAudio?: boolean }) {
    this.stream = options.stream;
    this.rendition = options.rendition ?? 'source';
    this.#transcodeAudio = options.transcodeAudio ?? false;
  }

  get error(): MediaFormatError | undefined {
    return this.#failed;
  }

  /** The unwrapped DTS of the last PES read, of any track: where the stream's timeline is (see `unwrapNear`). */
  get timeline(): number | undefined {
    return this.#timeline;
  }

  push(chunk: Buffer): TsReadResult {
    return this.#run(() => {
      let data = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
      let offset = 0;
      while (offset + PACKET <= data.length) {
        if (data[offset] !== SYNC) {
          // Lost sync (or a start mid-packet): skip to the next sync byte.
          this.#skippedBytes++;
          if (!this.#synced && this.#skippedBytes > MAX_RESYNC) throw new MediaFormatError('not MPEG-TS: no sync byte 0x47 every 188 bytes');
          offset++;
          continue;
        }
        this.#synced = true;
        this.#packet(data.subarray(offset, offset + PACKET));
        offset += PACKET;
      }
      data = data.subarray(offset);
      this.#pending = Buffer.from(data);
    });
  }

  /**
   * The input ended: emits the PES packets still being assembled. One that
   * had not ended (short of its declared length, or an unbounded one whose
   * last packet was full: its tail never came) is dropped and counted. (An
   * unbounded PES that happened to fill its last packet exactly, one in 184,
   * has no stuffing either: at the very end of a stream it is dropped too.)
   */
  end(): TsReadResult {
    return this.#run(() => {
      for (const [, es] of this.#pids) this.#flushPes(es, es.ended, 'ts_truncated');
      this.#pending = Buffer.alloc(0);
    });
  }

  #run(work: () => void): TsReadResult {
    if (this.#failed) return { packets: [], configs: [], skipped: [], error: this.#failed };
    this.#result = { packets: [], configs: [], skipped: [] };
    try {
      work();
    } catch (error) {
      this.#failed = error instanceof MediaFormatError ? error : new MediaFormatError(String(error));
      this.#result.error = this.#failed;
    }
    if (this.#foreignPackets.length) {
      this.#result.foreignAudio = { codec: this.#foreign!.codec, packets: Buffer.concat(this.#foreignPackets) };
      this.#foreignPackets = [];
    }
    return this.#result;
  }

  #drop(reason: string): void {
    const drops = (this.#result.drops ??= {});
    drops[reason] = (drops[reason] ?? 0) + 1;
  }

  #skip(reason: string): void {
    if (this.#reported.has(reason)) return;
    this.#reported.add(reason);
    this.#result.skipped.push(reason);
  }

  #packet(packet: Buffer): void {
    const transportError = (packet[1]! & 0x80) !== 0;
    const start = (packet[1]! & 0x40) !== 0;
    const pid = ((packet[1]! & 0x1f) << 8) | packet[2]!;
    const adaptation = (packet[3]! >> 4) & 3;
    let offset = 4;
    if (adaptation === 2 || adaptation === 3) offset += 1 + packet[4]!;
    if (adaptation === 1 || adaptation === 3) {
      if (offset >= PACKET) return;
    } else return;
    const payload = packet.subarray(offset);
    // Tables flagged in error wait for their next repeat (muxers send them several times a second).
    if (transportError && (pid === 0 || pid === this.#pmtPid)) return;
    if (pid === 0) {
      if (start) this.#pat(payload);
      if (this.#foreign) this.#foreignPackets.push(packet);
      return;
    }
    if (pid === this.#pmtPid) {
      if (start) this.#pmt(payload);
      if (this.#foreign) this.#foreignPackets.push(packet);
      return;
    }
    if (pid === this.#foreign?.pid) {
      // The transcoder's own demuxer deals with its gaps and errors.
      this.#foreignPackets.push(packet);
      return;
    }
    const es = this.#pids.get(pid);
    if (!es) return;
    const stuffed = adaptation === 3 && hasStuffing(packet);
    const counter = packet[3]! & 0x0f;
    // The discontinuity indicator: the muxer restarted its counter on purpose.
    const reset = adaptation === 3 && packet[4]! > 0 && (packet[5]! & 0x80) !== 0;
    if (transportError) {
      // The link flagged this packet as damaged: it, and the PES it belongs to, are lost.
      this.#lose(es, false, 1);
      es.counter = undefined;
      es.ended = stuffed;
      return;
    }
    if (es.counter !== undefined && !reset) {
      // A repeated counter is a duplicate packet (allowed once), skipped; any other jump is a loss.
      if (counter === es.counter) return;
      if (counter !== ((es.counter + 1) & 0x0f)) this.#lose(es, start, (counter - es.counter - 1) & 0x0f);
    }
    es.counter = counter;
    if (start) {
      this.#flushPes(es, true);
      es.lost = false;
      es.chunks = [payload];
      es.bytes = payload.length;
    } else if (es.chunks.length) {
      es.chunks.push(payload);
      es.bytes += payload.length;
      if (es.bytes > MAX_PES_BYTES) {
        // Dropped, not an error: the next start flag begins a clean PES.
        es.chunks = [];
        es.bytes = 0;
        this.#drop('oversized_pes');
        this.#skip(`a PES packet over ${MAX_PES_BYTES} bytes was dropped`);
      }
    }
    es.ended = stuffed || (es.chunks.length > 0 && this.#declaredComplete(es));
  }

  /**
   * `missing` packets of `es` were lost before this one (`start`: this one
   * begins a PES). If the PES in progress had ended, it is whole: kept when
   * it was being assembled, and the packets lost came after it, so they held
   * at least the start of a later PES: one counted. If it had not ended, the
   * gap is in it: dropped and counted once (a PES already being skipped was
   * counted when its start went); and when its declared length left fewer
   * bytes than the lost packets carry, they held the next PES's start too: two.
   * A continuation after the gap belongs to a PES whose start is gone: its
   * packets are skipped to the next start. Whole video PES lost in between are
   * counted when the next one is read, from its DTS (`#countSkippedFrames`).
   */
  #lose(es: Elementary, start: boolean, missing: number): void {
    let lost = 0;
    if (es.ended) {
      this.#flushPes(es, true);
      lost = 1;
    } else if (es.chunks.length) {
      // Packets before a PES's last carry a full payload (184 bytes) but for a PCR in an adaptation field (8):
      // if what the PES still lacked fits in the lost packets less one, the last of them began the next PES.
      const left = this.#declaredLeft(es);
      lost = !start && left !== undefined && left <= 184 * (missing - 1) ? 2 : 1;
      es.chunks = [];
      es.bytes = 0;
    } else if (!es.lost) lost = 1;
    for (let i = 0; i < lost; i++) this.#drop('ts_loss');
    es.lostSince = (es.lostSince ?? 0) + lost;
    es.lost = !start;
    es.ended = false;
  }

  /**
   * A video PES read after a loss: the frames its DTS says are missing since
   * the last one read (whole PES lost between two others leave no other
   * trace), beyond those already counted, are counted now. A jump of more
   * than a few seconds is a timestamp discontinuity, not a loss.
   */
  #countSkippedFrames(es: Elementary, dts: number): void {
    if (es.kind !== 'video' || es.lastDts === undefined) return;
    const step = dts - es.lastDts;
    if (es.lostSince === undefined) {
      if (step > 0) es.frameTicks = step;
      return;
    }
    if (es.frameTicks === undefined) return;
    const frames = Math.round(step / es.frameTicks) - 1;
    if (frames > es.lostSince && step <= 5 * TIMESCALE) for (let i = es.lostSince; i < frames; i++) this.#drop('ts_loss');
  }

  /** The bytes the PES being assembled still lacks of its declared length (undefined for an unbounded one). */
  #declaredLeft(es: Elementary): number | undefined {
    const first = es.chunks[0]!;
    if (first.length < 6) return undefined;
    const declared = first.readUInt16BE(4);
    return declared > 0 ? 6 + declared - es.bytes : undefined;
  }

  /** Whether the PES being assembled holds all the bytes its header declares (false for an unbounded video PES, which declares none). */
  #declaredComplete(es: Elementary): boolean {
    const left = this.#declaredLeft(es);
    return left !== undefined && left <= 0;
  }

  /** The section after the pointer field, up to its CRC; sections spanning packets are not needed for PAT/PMT of a few streams. */
  #section(payload: Buffer): Buffer {
    const pointer = payload[0]!;
    const section = payload.subarray(1 + pointer);
    if (section.length < 3) throw new MediaFormatError('PSI section truncated');
    const length = ((section[1]! & 0x0f) << 8) | section[2]!;
    if (3 + length > section.length) throw new MediaFormatError('a PAT or PMT longer than one packet is not supported');
    return section.subarray(0, 3 + length - 4);
  }

  #pat(payload: Buffer): void {
    const section = this.#section(payload);
    for (let i = 8; i + 4 <= section.length; i += 4) {
      const program = section.readUInt16BE(i);
      if (program !== 0) {
        this.#pmtPid = section.readUInt16BE(i + 2) & 0x1fff;
        return;
      }
    }
  }

  #pmt(payload: Buffer): void {
    const section = this.#section(payload);
    const infoLength = section.readUInt16BE(10) & 0x0fff;
    const streams: { type: number; pid: number; descriptors: Buffer }[] = [];
    for (let i = 12 + infoLength; i + 5 <= section.length; ) {
      const esInfo = section.readUInt16BE(i + 3) & 0x0fff;
      streams.push({ type: section[i]!, pid: section.readUInt16BE(i + 1) & 0x1fff, descriptors: section.subarray(i + 5, i + 5 + esInfo) });
      i += 5 + esInfo;
    }
    // AAC anywhere in the program is read as it is; other audio is transcoded only without it.
    const hasAac = streams.some((stream) => stream.type === STREAM_AAC);
    for (const { type, pid, descriptors } of streams) {
      if (this.#pids.has(pid) || pid === this.#foreign?.pid) continue;
      const foreign = foreignAudioCodec(type, descriptors);
      if (type === STREAM_H264 && !this.#hasKind('video')) this.#pids.set(pid, elementary('video'));
      else if (type === STREAM_AAC && !this.#hasKind('audio')) this.#pids.set(pid, elementary('audio'));
      else if (foreign && this.#transcodeAudio && !hasAac && !this.#hasKind('audio') && !this.#foreign) {
        this.#foreign = { pid, codec: foreign };
        // The transcoder's demuxer needs the tables before the audio: the PAT is sent again from here.
        this.#foreignPackets.push(patPacket(section.readUInt16BE(3), this.#pmtPid!));
      } else if (type !== STREAM_H264 && type !== STREAM_AAC && pid !== this.#foreign?.pid) {
        this.#skip(`MPEG-TS stream type 0x${type.toString(16).padStart(2, '0')}${foreign ? ` (${foreign})` : ''} is not supported (only 0x1b H.264 and 0x0f AAC${this.#transcodeAudio ? ', and one audio stream transcoded to AAC' : ''})`);
      }
    }
  }

  #hasKind(kind: 'video' | 'audio'): boolean {
    for (const es of this.#pids.values()) if (es.kind === kind) return true;
    return false;
  }

  /**
   * Emits the PES assembled for `es`, which `ended` says is over (the next
   * start came, or it ended before a loss or the input's end). One shorter
   * than its declared length, or not `ended`, is dropped as `short` says (a
   * loss the counters missed, or the input's end); one whose contents do not
   * parse is dropped as `ts_corrupt`, never an error.
   */
  #flushPes(es: Elementary, ended: boolean, short = 'ts_loss'): void {
    if (!es.chunks.length) return;
    const bounded = es.chunks[0]!.length >= 6 && es.chunks[0]!.readUInt16BE(4) > 0;
    const complete = bounded ? this.#declaredComplete(es) : ended;
    const pes = es.chunks.length === 1 ? es.chunks[0]! : Buffer.concat(es.chunks);
    es.chunks = [];
    es.bytes = 0;
    if (!complete) {
      this.#drop(short);
      return;
    }
    const packets = this.#result.packets.length;
    try {
      this.#decodePes(es, pes);
    } catch (error) {
      if (!(error instanceof MediaFormatError)) throw error;
      // Frames of a PES that broke part-way go with it: all or none.
      this.#result.packets.length = packets;
      this.#drop('ts_corrupt');
    }
  }

  #decodePes(es: Elementary, pes: Buffer): void {
    if (pes.length < 9 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) throw new MediaFormatError('PES packet without its start code');
    const flags = pes[7]!;
    const headerEnd = 9 + pes[8]!;
    if (headerEnd > pes.length) throw new MediaFormatError('PES header truncated');
    if (!(flags & 0x80)) {
      this.#skip('PES packet without a PTS');
      return;
    }
    const rawPts = readTimestamp(pes, 9);
    const dts = unwrapNear(flags & 0x40 ? readTimestamp(pes, 14) : rawPts, es.lastDts);
    // PTS and DTS wrap at different moments (with B-frames the PTS runs ahead and wraps first): each is
    // unwrapped on its own, the PTS against its own access unit's DTS, which it is always within a few frames of.
    const pts = flags & 0x40 ? unwrapNear(rawPts, dts) : dts;
    this.#countSkippedFrames(es, dts);
    es.lastDts = dts;
    es.lostSince = undefined;
    this.#timeline = dts;
    const declared = pes.readUInt16BE(4);
    const body = pes.subarray(headerEnd, declared ? Math.min(pes.length, 6 + declared) : pes.length);
    if (es.kind === 'video') this.#videoAccessUnit(body, pts, dts);
    else this.#audioFrames(body, pts);
  }

  #videoAccessUnit(body: Buffer, pts: number, dts: number): void {
    const nalus = annexBToNalus(body);
    const sps = nalus.filter((nal) => nalType(nal) === NAL_SPS);
    const pps = nalus.filter((nal) => nalType(nal) === NAL_PPS);
    if (sps.length) this.#sps = sps;
    if (pps.length) this.#pps = pps;
    if ((sps.length || pps.length) && this.#sps.length && this.#pps.length) {
      const config = buildAvcC(this.#sps, this.#pps);
      if (!this.video || !this.video.config.equals(config)) {
        this.video = { kind: 'video', codec: 'h264', timescale: TIMESCALE, config, ...avcTrackFields(config) };
        this.#result.configs.push(this.video);
      }
    }
    if (!this.video) {
      this.#skip('video before its first SPS and PPS');
      return;
    }
    // Parameter sets travel in the avcC; access unit delimiters mean nothing in MP4.
    const frame = nalus.filter((nal) => {
      const type = nalType(nal);
      return type !== NAL_SPS && type !== NAL_PPS && type !== NAL_AUD;
    });
    if (!frame.length) return;
    const keyframe = frame.some((nal) => nalType(nal) === NAL_IDR);
    this.#result.packets.push({ stream: this.stream, rendition: this.rendition, track: this.video, pts, dts, keyframe, data: nalusToAvcc(frame) });
  }

  #audioFrames(body: Buffer, pts: number): void {
    const frames = splitAdts(body);
    for (let i = 0; i < frames.length; i++) {
      const { header, frame } = frames[i]!;
      const config = adtsToAsc(header);
      if (!this.audio || !this.audio.config.equals(config)) {
        const asc = parseAsc(config);
        this.audio = { kind: 'audio', codec: 'aac', codecString: asc.codecString, timescale: TIMESCALE, config, sampleRate: asc.sampleRate, channels: asc.channels };
        this.#result.configs.push(this.audio);
      }
      // Each AAC frame holds 1024 samples; frames after the first in a PES follow on from its PTS.
      const at = pts + Math.round((i * 1024 * TIMESCALE) / header.sampleRate);
      this.#result.packets.push({ stream: this.stream, rendition: this.rendition, track: this.audio, pts: at, dts: at, keyframe: true, data: frame });
    }
  }
}

/**
 * The audio codec of a PMT entry that is audio ffmpeg decodes but the
 * reader does not: MPEG-1/2 audio (0x03, 0x04), AC-3 (0x81, or private data
 * with the DVB AC-3 descriptor or an `AC-3` registration), E-AC-3 (0x87, or
 * their E-AC-3 forms), Opus (private data registered `Opus`). Undefined for
 * anything else (video, subtitles, teletext, SCTE-35; and AAC in LATM, 0x11,
 * whose first frames ffmpeg 5.1 sends on from a pipe without their timestamps).
 */
export function foreignAudioCodec(type: number, descriptors: Buffer): string | undefined {
  if (type === 0x03 || type === 0x04) return 'MPEG audio (MP2)';
  if (type === 0x81) return 'AC-3';
  if (type === 0x87) return 'E-AC-3';
  if (type !== 0x06) return undefined;
  for (let i = 0; i + 2 <= descriptors.length; i += 2 + descriptors[i + 1]!) {
    const tag = descriptors[i]!;
    const body = descriptors.subarray(i + 2, i + 2 + descriptors[i + 1]!);
    if (tag === 0x6a) return 'AC-3';
    if (tag === 0x7a) return 'E-AC-3';
    if (tag === 0x05 && body.length >= 4) {
      const format = body.toString('latin1', 0, 4);
      if (format === 'AC-3') return 'AC-3';
      if (format === 'EAC3') return 'E-AC-3';
      if (format === 'Opus') return 'Opus';
    }
  }
  return undefined;
}

/** A PAT naming one program and its PMT PID, in one TS packet (with its CRC: ffmpeg checks it). */
export function patPacket(program: number, pmtPid: number): Buffer {
  const packet = Buffer.alloc(PACKET, 0xff);
  packet.set([SYNC, 0x40, 0x00, 0x10, 0x00]);
  const section = Buffer.from([0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0, 0, program >> 8, program & 0xff, 0xe0 | (pmtPid >> 8), pmtPid & 0xff]);
  section.copy(packet, 5);
  packet.writeUInt32BE(crc32Mpeg(section), 5 + section.length);
  return packet;
}

/** CRC-32/MPEG-2, as PSI sections carry it. */
function crc32Mpeg(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

/**
 * Whether a TS packet's adaptation field holds stuffing: bytes past its flags
 * and the fields they announce. A PES packet gets stuffing only in the packet
 * where it ends, its payload being too short to fill it.
 */
function hasStuffing(packet: Buffer): boolean {
  const length = packet[4]!;
  // A zero-length adaptation field is itself the one byte of stuffing.
  if (length === 0) return true;
  const flags = packet[5]!;
  let used = 1;
  if (flags & 0x10) used += 6; // PCR
  if (flags & 0x08) used += 6; // OPCR
  if (flags & 0x04) used += 1; // splice countdown
  if (flags & 0x02) used += 1 + (used < length ? packet[5 + used]! : 0); // private data
  if (flags & 0x01) used += 1 + (used < length ? packet[5 + used]! : 0); // extension
  return length > used;
}

/** Continues a 33-bit timestamp past its wraps: of `raw + k·2^33`, the one closest to `reference` (the first value is taken as it is). */
export function unwrapNear(raw: number, reference: number | undefined): number {
  if (reference === undefined) return raw;
  return raw + Math.round((reference - raw) / WRAP) * WRAP;
}

/** A 33-bit PES timestamp at `offset` (marker bits between its three parts). */
function readTimestamp(pes: Buffer, offset: number): number {
  if (offset + 5 > pes.length) throw new MediaFormatError('PES timestamp truncated');
  const high = (pes[offset]! >> 1) & 0x07;
  const middle = pes.readUInt16BE(offset + 1) >> 1;
  const low = pes.readUInt16BE(offset + 3) >> 1;
  return high * 2 ** 30 + middle * 2 ** 15 + low;
}
