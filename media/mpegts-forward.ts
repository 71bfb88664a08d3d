/**
 * The audio an MPEG-TS reader hands on for a transcoder (`TsReader`'s
 * `passForeignAudio`): made MPEG-TS of its own, a PAT and a PMT listing only
 * this audio, on `FORWARD_AUDIO_PID` whatever PID the source used, then its
 * TS packets as they came. So the transcoder's demuxer has one stream to
 * take, and a PID move in the source does not reach it. Nothing is handed
 * on before the audio's first PES: a PMT that lists audio which never comes
 * starts no transcoder.
 */
import type { ForeignStream } from './mpegts-program.ts';
import { readTimestamp, unwrapNear } from './mpegts-pes.ts';
import { FORWARD_AUDIO_PID, FORWARD_PMT_PID, FORWARD_PROGRAM, patPacket, pmtPacket } from './mpegts-psi.ts';

/**
 * Audio handed on for a transcoder: MPEG-TS of its own, a PAT and a PMT
 * listing only this audio (on `FORWARD_AUDIO_PID`, whatever PID the source
 * used), then its TS packets as they came, in input order: what an ffmpeg
 * can turn into AAC with the same timestamps.
 */
export interface ForeignAudio {
  /** The audio's codec, e.g. `MPEG audio (MP2)`. */
  codec: string;
  packets: Buffer;
  /** The PTS of each audio PES begun in these packets (90 kHz, unwrapped near the reader's timeline): how far the audio handed on has got. */
  starts: number[];
}

/** Gathers the forwarded audio's packets between two takes; one stream at a time (`choose`). */
export class ForeignForwarder {
  #stream: ForeignStream | undefined;
  #packets: Buffer[] = [];
  #starts: number[] = [];
  /**
   * A PES of the audio has begun: its packets are handed on. Until then only the latest tables are kept,
   * to go before it (the packets of a PES whose start came before the reader are nothing to decode).
   */
  #begun = false;
  /** The version of the PMT written (bumped when the audio changes) and the tables' continuity counter. */
  #version = 0;
  #counter = 0;

  /** The audio handed on, if one is. */
  get chosen(): ForeignStream | undefined {
    return this.#stream;
  }

  /** Its PID in the source. */
  get pid(): number | undefined {
    return this.#stream?.pid;
  }

  /**
   * Makes `next` the audio handed on (a new PMT chose it). The one before goes on if `next` has its codec
   * (a PID move only); otherwise it has ended: its packets not yet taken are returned, for its transcoder to finish.
   */
  choose(next: ForeignStream | undefined): ForeignAudio | undefined {
    const before = this.#stream;
    this.#stream = next;
    if (!before || next?.codec === before.codec) return undefined;
    // Nothing was handed on: no transcoder has begun, none to finish.
    const ended = this.#begun ? this.#drain(before.codec) : undefined;
    this.#packets = [];
    this.#begun = false;
    this.#version = (this.#version + 1) & 0x1f;
    return ended;
  }

  /** The source's PMT came by: the tables of the audio's own stream, before its next packets (none without audio). */
  tables(): void {
    const stream = this.#stream;
    if (!stream) return;
    const counter = this.#counter++;
    if (!this.#begun) this.#packets = [];
    this.#packets.push(
      patPacket(FORWARD_PROGRAM, FORWARD_PMT_PID, counter),
      pmtPacket({ program: FORWARD_PROGRAM, pmtPid: FORWARD_PMT_PID, version: this.#version, type: stream.type, pid: FORWARD_AUDIO_PID, descriptors: stream.descriptors, counter }),
    );
  }

  /**
   * A TS packet of the audio, handed on under the forwarded PID. The PTS of a PES it begins (`start`, not
   * flagged in error) is noted, unwrapped near `timeline`: how far the audio handed on has got.
   */
  packet(packet: Buffer, start: boolean, payload: Buffer, timeline: number | undefined): void {
    if (!this.#begun && !start) return;
    this.#begun = true;
    const copy = Buffer.from(packet);
    copy[1] = (copy[1]! & 0xe0) | (FORWARD_AUDIO_PID >> 8);
    copy[2] = FORWARD_AUDIO_PID & 0xff;
    this.#packets.push(copy);
    if (start && payload.length >= 14 && payload[0] === 0 && payload[1] === 0 && payload[2] === 1 && payload[7]! & 0x80) {
      this.#starts.push(unwrapNear(readTimestamp(payload, 9), timeline));
    }
  }

  /** The packets gathered since the last take, if any (none before the audio's first PES). */
  take(): ForeignAudio | undefined {
    if (!this.#begun || !this.#packets.length || !this.#stream) return undefined;
    return this.#drain(this.#stream.codec);
  }

  /** The packets and PES starts gathered, as audio of `codec`; both lists start again empty. */
  #drain(codec: string): ForeignAudio {
    const audio: ForeignAudio = { codec, packets: Buffer.concat(this.#packets), starts: this.#starts };
    this.#packets = [];
    this.#starts = [];
    return audio;
  }
}
