/**
 * The program tables of an MPEG-TS stream as the demuxer (`mpegts.ts`)
 * reads them: PSI sections, the PAT's PMT PID, the PMT's streams, and which
 * of them it reads (one H.264, one audio) when a PMT (or a new version of
 * it) arrives. Pure: bytes in, choices out.
 */
import { MediaFormatError } from './format-error.ts';
import { foreignAudioCodec } from './mpegts-psi.ts';

const STREAM_H264 = 0x1b;
const STREAM_AAC = 0x0f;

/** One elementary stream a PMT lists. */
export interface PmtStream {
  type: number;
  pid: number;
  /** Its ES descriptors (what names AC-3 or Opus carried as private data). */
  descriptors: Buffer;
}

/** A PMT: its program, version (0-31, changed by the muxer when the streams change) and streams in order. */
export interface Pmt {
  program: number;
  version: number;
  streams: PmtStream[];
}

/** The section after the pointer field, up to its CRC; sections spanning packets are not needed for PAT/PMT of a few streams. */
export function psiSection(payload: Buffer): Buffer {
  const pointer = payload[0]!;
  const section = payload.subarray(1 + pointer);
  if (section.length < 3) throw new MediaFormatError('PSI section truncated');
  const length = ((section[1]! & 0x0f) << 8) | section[2]!;
  if (3 + length > section.length) throw new MediaFormatError('a PAT or PMT longer than one packet is not supported');
  if (length < 9) throw new MediaFormatError('PSI section truncated');
  return section.subarray(0, 3 + length - 4);
}

/** The PMT PID of the first program a PAT names (program 0 is the network PID), if any. */
export function readPat(section: Buffer): number | undefined {
  for (let i = 8; i + 4 <= section.length; i += 4) {
    if (section.readUInt16BE(i) !== 0) return section.readUInt16BE(i + 2) & 0x1fff;
  }
  return undefined;
}

/** A PMT section's program, version and streams. */
export function readPmt(section: Buffer): Pmt {
  if (section.length < 12) throw new MediaFormatError('PMT section truncated');
  const infoLength = section.readUInt16BE(10) & 0x0fff;
  const streams: PmtStream[] = [];
  for (let i = 12 + infoLength; i + 5 <= section.length; ) {
    const esInfo = section.readUInt16BE(i + 3) & 0x0fff;
    streams.push({ type: section[i]!, pid: section.readUInt16BE(i + 1) & 0x1fff, descriptors: section.subarray(i + 5, i + 5 + esInfo) });
    i += 5 + esInfo;
  }
  return { program: section.readUInt16BE(3), version: (section[5]! >> 1) & 0x1f, streams };
}

/** Audio the reader hands on for a transcoder (see `TsReader`'s `passForeignAudio`). */
export interface ForeignStream extends PmtStream {
  codec: string;
}

/** The streams a reader reads: at most one video and one audio, AAC or foreign (never both). */
export interface ProgramChoice {
  video: number | undefined;
  audio: number | undefined;
  foreign: ForeignStream | undefined;
  /** Why each stream not read is not, for a warning. */
  skipped: string[];
}

/**
 * The streams to read from `pmt`, given those read so far (`current`): each
 * one still listed with the same type is kept (a repeated or re-versioned
 * PMT never moves a track it need not), else the first of its kind. AAC is
 * the audio whenever the program has it; audio ffmpeg can make AAC
 * (`foreignAudioCodec`) only without it and with `passForeignAudio`.
 *
 * @example
 * chooseStreams(readPmt(section), { video: undefined, audio: undefined, foreign: undefined }, true);
 */
export function chooseStreams(pmt: Pmt, current: Omit<ProgramChoice, 'skipped'>, passForeignAudio: boolean): ProgramChoice {
  const listed = (pid: number | undefined, type: number): boolean => pmt.streams.some((stream) => stream.pid === pid && stream.type === type);
  const video = listed(current.video, STREAM_H264) ? current.video : pmt.streams.find((stream) => stream.type === STREAM_H264)?.pid;
  const audio = listed(current.audio, STREAM_AAC) ? current.audio : pmt.streams.find((stream) => stream.type === STREAM_AAC)?.pid;
  let foreign: ForeignStream | undefined;
  if (audio === undefined && passForeignAudio) {
    const candidates = pmt.streams.flatMap((stream) => {
      const codec = foreignAudioCodec(stream.type, stream.descriptors);
      return codec ? [{ ...stream, codec }] : [];
    });
    foreign = candidates.find((stream) => stream.pid === current.foreign?.pid && stream.codec === current.foreign.codec) ?? candidates[0];
  }
  const skipped: string[] = [];
  for (const { type, pid, descriptors } of pmt.streams) {
    if (type === STREAM_H264 || type === STREAM_AAC || pid === foreign?.pid) continue;
    const codec = foreignAudioCodec(type, descriptors);
    skipped.push(`MPEG-TS stream type 0x${type.toString(16).padStart(2, '0')}${codec ? ` (${codec})` : ''} is not supported (only 0x1b H.264 and 0x0f AAC${passForeignAudio ? ', and one audio stream transcoded to AAC' : ''})`);
  }
  return { video, audio, foreign, skipped };
}
