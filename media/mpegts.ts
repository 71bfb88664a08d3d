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
 * of a packet after its first: a muxer may stuff its first packet too). A
 * PES whose ADTS or H.264 does not parse is dropped as `ts_corrupt`, an
 * unfinished one at the end (short of its length, or unbounded without its
 * stuffed end) as `ts_truncated`. Only bytes without sync at the start are
 * fatal. Modules beside it: `mpegts-elementary.ts` (a PID's PES and loss
 * state), `mpegts-pes.ts` (PES headers, H.264 and AAC frames),
 * `mpegts-program.ts` (PAT, PMT, which streams are read), `mpegts-forward.ts`
 * and `mpegts-psi.ts` (foreign audio handed on with tables of its own).
 *
 * A new PMT version re-maps the streams (`chooseStreams`): PIDs no longer
 * listed are dropped (their unfinished PES counted `ts_truncated`), at most
 * one video and one audio track are read.
 */
import { MediaFormatError } from './format-error.ts';
import { declaredComplete, declaredLeft, declaredLength, elementary, skippedFrames, type Elementary } from './mpegts-elementary.ts';
import { ForeignForwarder, type ForeignAudio } from './mpegts-forward.ts';
import { chooseStreams, psiSection, readPat, readPmt } from './mpegts-program.ts';
import { TsFrames, readPesHeader, unwrapNear, type FrameSink } from './mpegts-pes.ts';
import { hasStuffing } from './mpegts-psi.ts';
import type { MediaPacket, TrackInfo } from './packet.ts';

const PACKET = 188;
const SYNC = 0x47;
/** Bytes skipped looking for sync before the input is judged not MPEG-TS. */
const MAX_RESYNC = 64 * 1024;
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
   * (unfinished when the input ended, or its PID left the PMT). The reader
   * goes on at the next start.
   */
  drops?: Record<string, number>;
  /**
   * With `passForeignAudio`: the packets of this push of an audio stream the
   * reader cannot decode itself (MP2, AC-3, E-AC-3, Opus), for a transcoder;
   * none before its first PES (then with the latest tables before it), so a
   * PMT naming audio that never comes starts no transcoder.
   */
  foreignAudio?: ForeignAudio;
  /**
   * The foreign audio handed on before this push ended in it: a new PMT
   * dropped it, changed its codec, or brought AAC. Its last packets; its
   * transcoder should finish. (`foreignAudio`, if any, is a new stream.)
   */
  foreignAudioEnded?: ForeignAudio;
  error?: MediaFormatError;
}

/** Reads MPEG-TS bytes pushed in chunks of any size; never throws (malformed input ends it with `error`). */
export class TsReader {
  readonly stream: string;
  readonly rendition: string;
  #pending: Buffer = Buffer.alloc(0);
  #pmtPid: number | undefined;
  #pmtVersion: number | undefined;
  readonly #pids = new Map<number, Elementary>();
  readonly #frames: TsFrames;
  #skippedBytes = 0;
  #synced = false;
  #failed: MediaFormatError | undefined;
  readonly #reported = new Set<string>();
  #result: TsReadResult = { packets: [], configs: [], skipped: [] };
  /** Where `#frames` puts what it decodes: the arrays of this push's `#result` (see `#run`). */
  readonly #sink: FrameSink = { packets: [], configs: [], skip: (reason) => this.#skip(reason) };
  readonly #passForeignAudio: boolean;
  /** The audio handed on as `foreignAudio`, once a PMT has announced it. */
  readonly #foreign = new ForeignForwarder();
  #timeline: number | undefined;

  /**
   * `passForeignAudio`: when the stream's audio is not AAC but one ffmpeg decodes, pass its TS packets on
   * (`foreignAudio`, e.g. for a transcoder) rather than skipping it with a warning.
   */
  constructor(options: { stream: string; rendition?: string; passForeignAudio?: boolean }) {
    this.stream = options.stream;
    this.rendition = options.rendition ?? 'source';
    this.#passForeignAudio = options.passForeignAudio ?? false;
    this.#frames = new TsFrames(this.stream, this.rendition);
  }

  /** The video track, once the first SPS and PPS have come. */
  get video(): TrackInfo | undefined {
    return this.#frames.video;
  }

  /** The AAC audio track, once its first frame has come. */
  get audio(): TrackInfo | undefined {
    return this.#frames.audio;
  }

  /** With `passForeignAudio`: the codec of the audio handed on as `foreignAudio`, once a PMT has announced it. */
  get foreignAudio(): string | undefined {
    return this.#foreign.chosen?.codec;
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
      for (const [, es] of this.#pids) this.#flushPes(es, es.ended || es.padded, 'ts_truncated');
      this.#pending = Buffer.alloc(0);
    });
  }

  #run(work: () => void): TsReadResult {
    if (this.#failed) return { packets: [], configs: [], skipped: [], error: this.#failed };
    this.#result = { packets: [], configs: [], skipped: [] };
    this.#sink.packets = this.#result.packets;
    this.#sink.configs = this.#result.configs;
    try {
      work();
    } catch (error) {
      this.#failed = error instanceof MediaFormatError ? error : new MediaFormatError(String(error));
      this.#result.error = this.#failed;
    }
    const foreign = this.#foreign.take();
    if (foreign) this.#result.foreignAudio = foreign;
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
      if (start) this.#pmtPid = readPat(psiSection(payload)) ?? this.#pmtPid;
      return;
    }
    if (pid === this.#pmtPid) {
      if (start) this.#pmt(payload);
      return;
    }
    if (pid === this.#foreign.pid) {
      // The transcoder's own demuxer deals with its gaps and errors.
      this.#foreign.packet(packet, start && !transportError, payload, this.#timeline);
      return;
    }
    const es = this.#pids.get(pid);
    if (es) this.#elementaryPacket(es, packet, { transportError, start, adaptation, payload });
  }

  #elementaryPacket(es: Elementary, packet: Buffer, at: { transportError: boolean; start: boolean; adaptation: number; payload: Buffer }): void {
    const { start, adaptation, payload } = at;
    // Stuffing is trusted as a PES's end only after its first packet: a muxer may pad the first wherever the PES ends.
    const stuffed = adaptation === 3 && hasStuffing(packet);
    const counter = packet[3]! & 0x0f;
    // The discontinuity indicator: the muxer restarted its counter on purpose.
    const reset = adaptation === 3 && packet[4]! > 0 && (packet[5]! & 0x80) !== 0;
    if (at.transportError) {
      // The link flagged this packet as damaged: it, and the PES it belongs to, are lost; nothing in it
      // (its stuffing included) is trusted, so the PES it was in has not ended.
      this.#lose(es, false, 1);
      es.counter = undefined;
      es.padded = false;
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
    es.ended = (stuffed && !start) || (es.chunks.length > 0 && declaredComplete(es));
    es.padded = stuffed && start;
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
   * counted when the next one is read, from its DTS (`skippedFrames`).
   */
  #lose(es: Elementary, start: boolean, missing: number): void {
    let lost = 0;
    if (es.ended) {
      this.#flushPes(es, true);
      lost = 1;
    } else if (es.chunks.length) {
      // Packets before a PES's last carry a full payload (184 bytes) but for a PCR in an adaptation field (8):
      // if what the PES still lacked fits in the lost packets less one, the last of them began the next PES.
      const left = declaredLeft(es);
      lost = !start && left !== undefined && left <= 184 * (missing - 1) ? 2 : 1;
      es.chunks = [];
      es.bytes = 0;
    } else if (!es.lost) lost = 1;
    for (let i = 0; i < lost; i++) this.#drop('ts_loss');
    es.lostSince = (es.lostSince ?? 0) + lost;
    es.lost = !start;
    es.ended = false;
    es.padded = false;
  }

  /**
   * A PMT. A version not seen before re-maps the streams: PIDs no longer chosen are dropped (an unfinished
   * PES of theirs counted `ts_truncated`), new ones read from their next start; foreign audio that stops
   * being the audio (AAC came, or it went, or changed codec) ends (`foreignAudioEnded`). Each repeat of the
   * PMT sends the foreign audio's own tables again, as the source repeats its own.
   */
  #pmt(payload: Buffer): void {
    const pmt = readPmt(psiSection(payload));
    if (pmt.version !== this.#pmtVersion) {
      this.#pmtVersion = pmt.version;
      const current = { video: this.#pidOf('video'), audio: this.#pidOf('audio'), foreign: this.#foreign.chosen };
      const choice = chooseStreams(pmt, current, this.#passForeignAudio);
      for (const reason of choice.skipped) this.#skip(reason);
      for (const [pid, es] of this.#pids) {
        // Kept where still chosen as the same kind (a PID may be reused for another stream).
        if ((pid === choice.video && es.kind === 'video') || (pid === choice.audio && es.kind === 'audio')) continue;
        this.#flushPes(es, es.ended, 'ts_truncated');
        this.#pids.delete(pid);
      }
      if (choice.video !== undefined && !this.#pids.has(choice.video)) this.#pids.set(choice.video, elementary('video'));
      if (choice.audio !== undefined && !this.#pids.has(choice.audio)) this.#pids.set(choice.audio, elementary('audio'));
      const ended = this.#foreign.choose(choice.foreign);
      if (ended) {
        // A second change in the same push (a PMT flapping within a few packets): one ended stream, the first's codec.
        const earlier = this.#result.foreignAudioEnded;
        this.#result.foreignAudioEnded = earlier ? { codec: earlier.codec, packets: Buffer.concat([earlier.packets, ended.packets]), starts: [...earlier.starts, ...ended.starts] } : ended;
      }
    }
    this.#foreign.tables();
  }

  #pidOf(kind: 'video' | 'audio'): number | undefined {
    for (const [pid, es] of this.#pids) if (es.kind === kind) return pid;
    return undefined;
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
    // 0: unbounded (a video PES may leave its length unset), complete when `ended` says so.
    const declared = declaredLength(es.chunks);
    const complete = declared > 0 ? es.bytes >= 6 + declared : ended;
    const pes = es.chunks.length === 1 ? es.chunks[0]! : Buffer.concat(es.chunks);
    es.chunks = [];
    es.bytes = 0;
    if (!complete) {
      this.#drop(short);
      return;
    }
    const packets = this.#result.packets.length;
    try {
      this.#decodePes(es, pes, declared);
    } catch (error) {
      if (!(error instanceof MediaFormatError)) throw error;
      // Frames of a PES that broke part-way go with it: all or none.
      this.#result.packets.length = packets;
      this.#drop('ts_corrupt');
    }
  }

  #decodePes(es: Elementary, pes: Buffer, declared: number): void {
    const header = readPesHeader(pes, declared);
    if (!header) {
      this.#skip('PES packet without a PTS');
      return;
    }
    const dts = unwrapNear(header.dts ?? header.pts, es.lastDts);
    // PTS and DTS wrap at different moments (with B-frames the PTS runs ahead and wraps first): each is
    // unwrapped on its own, the PTS against its own access unit's DTS, which it is always within a few frames of.
    const pts = header.dts !== undefined ? unwrapNear(header.pts, dts) : dts;
    for (let i = skippedFrames(es, dts); i > 0; i--) this.#drop('ts_loss');
    es.lastDts = dts;
    es.lostSince = undefined;
    this.#timeline = dts;
    if (es.kind === 'video') this.#frames.videoAccessUnit(header.body, pts, dts, this.#sink);
    else this.#frames.audioFrames(header.body, pts, this.#sink);
  }
}
