/**
 * AAC configuration: the AudioSpecificConfig (ASC) that MP4 and FLV carry,
 * and the ADTS headers that MPEG-TS puts before each raw AAC frame.
 */
import { BitReader } from './bit-reader.ts';
import { MediaFormatError } from './format-error.ts';

/** Sample rates by their 4-bit index (ISO 14496-3 1.6.3.4). */
export const AAC_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350] as const;

/** What an AudioSpecificConfig says. */
export interface AacConfig {
  /** Audio object type: 2 AAC-LC, 5 SBR (HE-AAC), 29 PS. */
  objectType: number;
  sampleRate: number;
  /** Channel count (channel configuration 7 is 8 channels); 0: defined in the stream. */
  channels: number;
  /** RFC 6381 codec string: `mp4a.40.2`. */
  codecString: string;
}

/** One ADTS header. */
export interface AdtsHeader {
  objectType: number;
  sampleRateIndex: number;
  sampleRate: number;
  channelConfig: number;
  /** Header length in bytes: 7, or 9 with a CRC. */
  headerLength: number;
  /** The whole frame, header included. */
  frameLength: number;
}

function channelsOf(config: number): number {
  return config === 7 ? 8 : config;
}

/** Parses an AudioSpecificConfig; throws MediaFormatError when malformed. */
export function parseAsc(data: Buffer): AacConfig {
  if (data.length < 2) throw new MediaFormatError('AudioSpecificConfig shorter than 2 bytes');
  const r = new BitReader(data);
  let objectType = r.bits(5);
  if (objectType === 31) objectType = 32 + r.bits(6);
  const index = r.bits(4);
  const sampleRate = index === 15 ? r.bits(24) : AAC_SAMPLE_RATES[index];
  if (sampleRate === undefined || sampleRate === 0) throw new MediaFormatError(`AudioSpecificConfig has a reserved sample rate index ${index}`);
  const channelConfig = r.bits(4);
  if (objectType === 0) throw new MediaFormatError('AudioSpecificConfig has object type 0');
  return { objectType, sampleRate, channels: channelsOf(channelConfig), codecString: `mp4a.40.${objectType}` };
}

/** Builds the 2-byte AudioSpecificConfig of a plain (object type < 31, indexed rate) stream. */
export function buildAsc(objectType: number, sampleRateIndex: number, channelConfig: number): Buffer {
  const value = (objectType << 11) | (sampleRateIndex << 7) | (channelConfig << 3);
  return Buffer.from([value >> 8, value & 0xff]);
}

/** Parses the ADTS header at `offset`; throws MediaFormatError when there is none. */
export function parseAdts(data: Buffer, offset = 0): AdtsHeader {
  if (offset + 7 > data.length) throw new MediaFormatError('ADTS header truncated');
  if (data[offset] !== 0xff || (data[offset + 1]! & 0xf6) !== 0xf0) throw new MediaFormatError('no ADTS sync word');
  const protectionAbsent = data[offset + 1]! & 1;
  const objectType = (data[offset + 2]! >> 6) + 1;
  const sampleRateIndex = (data[offset + 2]! >> 2) & 0x0f;
  const sampleRate = AAC_SAMPLE_RATES[sampleRateIndex];
  if (sampleRate === undefined) throw new MediaFormatError(`ADTS header has a reserved sample rate index ${sampleRateIndex}`);
  const channelConfig = ((data[offset + 2]! & 1) << 2) | (data[offset + 3]! >> 6);
  const frameLength = ((data[offset + 3]! & 3) << 11) | (data[offset + 4]! << 3) | (data[offset + 5]! >> 5);
  const headerLength = protectionAbsent ? 7 : 9;
  if (frameLength < headerLength) throw new MediaFormatError(`ADTS frame length ${frameLength} is shorter than its header`);
  return { objectType, sampleRateIndex, sampleRate, channelConfig, headerLength, frameLength };
}

/** The AudioSpecificConfig equivalent to an ADTS header. */
export function adtsToAsc(header: AdtsHeader): Buffer {
  return buildAsc(header.objectType, header.sampleRateIndex, header.channelConfig);
}

/** Splits ADTS bytes into headers and raw frames; throws MediaFormatError on a broken frame. */
export function splitAdts(data: Buffer): { header: AdtsHeader; frame: Buffer }[] {
  const frames: { header: AdtsHeader; frame: Buffer }[] = [];
  let offset = 0;
  while (offset < data.length) {
    const header = parseAdts(data, offset);
    if (offset + header.frameLength > data.length) throw new MediaFormatError('ADTS frame truncated');
    frames.push({ header, frame: data.subarray(offset + header.headerLength, offset + header.frameLength) });
    offset += header.frameLength;
  }
  return frames;
}

/** An ADTS header for a raw frame of `frameLength` bytes under `asc` (for writers of MPEG-TS or .aac files). */
export function buildAdtsHeader(asc: Buffer, frameLength: number): Buffer {
  const r = new BitReader(asc);
  const objectType = r.bits(5);
  const index = r.bits(4);
  const channelConfig = r.bits(4);
  if (objectType > 4 || index > 12) throw new MediaFormatError('this AudioSpecificConfig cannot be written as ADTS');
  const total = frameLength + 7;
  return Buffer.from([
    0xff,
    0xf1,
    ((objectType - 1) << 6) | (index << 2) | (channelConfig >> 2),
    ((channelConfig & 3) << 6) | (total >> 11),
    (total >> 3) & 0xff,
    ((total & 7) << 5) | 0x1f,
    0xfc,
  ]);
}
