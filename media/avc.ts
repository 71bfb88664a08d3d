/**
 * H.264 (AVC) codec configuration: the AVCDecoderConfigurationRecord
 * (`avcC`) that MP4 and FLV carry, the sequence parameter set (SPS) it
 * holds, and the two ways of framing NAL units (Annex B start codes, as
 * MPEG-TS carries them; 4-byte lengths, as MP4, FLV and `Media` edges do).
 */
import { BitReader } from './bit-reader.ts';
import { MediaFormatError } from './format-error.ts';

/** NAL unit types the formats care about. */
export const NAL_IDR = 5;
export const NAL_SEI = 6;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_AUD = 9;

/** The contents of an `avcC` box. */
export interface AvcConfig {
  profile: number;
  /** The constraint flags byte (`profile_compatibility`). */
  compat: number;
  level: number;
  /** Bytes in each NAL unit's length prefix (1, 2 or 4; 4 in practice). */
  lengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
}

/** What the first SPS says about the picture. */
export interface SpsInfo {
  profile: number;
  compat: number;
  level: number;
  /** Displayed size, after cropping, in pixels (sample aspect ratio not applied). */
  width: number;
  height: number;
  /** Frames per second from the VUI timing, when the encoder wrote it. */
  fps?: number;
}

/** Parses an AVCDecoderConfigurationRecord; throws MediaFormatError when malformed. */
export function parseAvcC(data: Buffer): AvcConfig {
  if (data.length < 7 || data[0] !== 1) throw new MediaFormatError('not an AVCDecoderConfigurationRecord (version must be 1)');
  const lengthSize = (data[4]! & 3) + 1;
  if (lengthSize === 3) throw new MediaFormatError('avcC NAL length size 3 is not allowed');
  let offset = 5;
  const readSets = (count: number): Buffer[] => {
    const sets: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      if (offset + 2 > data.length) throw new MediaFormatError('avcC truncated in its parameter sets');
      const size = data.readUInt16BE(offset);
      offset += 2;
      if (offset + size > data.length) throw new MediaFormatError('avcC truncated in its parameter sets');
      sets.push(data.subarray(offset, offset + size));
      offset += size;
    }
    return sets;
  };
  const sps = readSets(data[offset++]! & 0x1f);
  if (offset >= data.length) throw new MediaFormatError('avcC truncated before its picture parameter sets');
  const pps = readSets(data[offset++]!);
  return { profile: data[1]!, compat: data[2]!, level: data[3]!, lengthSize, sps, pps };
}

/** Builds an `avcC` (4-byte NAL lengths) from parameter sets, as a demuxer of Annex B streams must. */
export function buildAvcC(sps: Buffer[], pps: Buffer[]): Buffer {
  const first = sps[0];
  if (!first || first.length < 4) throw new MediaFormatError('an avcC needs at least one SPS');
  const parts: Buffer[] = [Buffer.from([1, first[1]!, first[2]!, first[3]!, 0xff, 0xe0 | sps.length])];
  const sized = (nal: Buffer): void => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(nal.length);
    parts.push(length, nal);
  };
  sps.forEach(sized);
  parts.push(Buffer.from([pps.length]));
  pps.forEach(sized);
  // High profiles carry chroma format and bit depths after the sets (ISO 14496-15 5.3.3.1.2).
  if (isHighProfile(first[1]!)) {
    const chroma = readSpsFields(first);
    parts.push(Buffer.from([0xfc | chroma.chromaFormat, 0xf8 | chroma.bitDepthLuma, 0xf8 | chroma.bitDepthChroma, 0]));
  }
  return Buffer.concat(parts);
}

/** The RFC 6381 codec string of a configuration: `avc1.64001f`. */
export function avcCodecString(config: Pick<AvcConfig, 'profile' | 'compat' | 'level'>): string {
  const hex = (value: number): string => value.toString(16).padStart(2, '0');
  return `avc1.${hex(config.profile)}${hex(config.compat)}${hex(config.level)}`;
}

/** Parses an SPS NAL unit (with its header byte, emulation prevention still in); throws MediaFormatError. */
export function parseSps(nal: Buffer): SpsInfo {
  const fields = readSpsFields(nal);
  return {
    profile: nal[1]!,
    compat: nal[2]!,
    level: nal[3]!,
    width: fields.width,
    height: fields.height,
    ...(fields.fps !== undefined ? { fps: fields.fps } : {}),
  };
}

/** What a track needs from an `avcC`: its codec string, size and frame rate. */
export function avcTrackFields(avcC: Buffer): { codecString: string; width: number; height: number; fps?: number } {
  const config = parseAvcC(avcC);
  const first = config.sps[0];
  if (!first) throw new MediaFormatError('avcC holds no SPS');
  const sps = parseSps(first);
  return { codecString: avcCodecString(config), width: sps.width, height: sps.height, ...(sps.fps !== undefined ? { fps: sps.fps } : {}) };
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function isHighProfile(profile: number): boolean {
  return HIGH_PROFILES.has(profile);
}

/** Removes emulation prevention bytes (00 00 03 → 00 00) from a NAL unit's payload. */
export function unescapeRbsp(data: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  let length = 0;
  let zeros = 0;
  for (const byte of data) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    out[length++] = byte;
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, length);
}

interface SpsFields {
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  width: number;
  height: number;
  fps?: number;
}

function readSpsFields(nal: Buffer): SpsFields {
  if (nal.length < 4 || (nal[0]! & 0x1f) !== NAL_SPS) throw new MediaFormatError('not an SPS NAL unit');
  const r = new BitReader(unescapeRbsp(nal.subarray(4)));
  const profile = nal[1]!;
  r.ue(); // seq_parameter_set_id
  let chromaFormat = 1;
  let separateColourPlanes = false;
  let bitDepthLuma = 0;
  let bitDepthChroma = 0;
  if (isHighProfile(profile)) {
    chromaFormat = r.ue();
    if (chromaFormat === 3) separateColourPlanes = r.bit() === 1;
    bitDepthLuma = r.ue();
    bitDepthChroma = r.ue();
    r.bit(); // qpprime_y_zero_transform_bypass_flag
    if (r.bit()) {
      for (let i = 0; i < (chromaFormat === 3 ? 12 : 8); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) r.ue();
  else if (pocType === 1) {
    r.bit();
    r.se();
    r.se();
    const cycle = r.ue();
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.bit(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.bit();
  if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
  r.bit(); // direct_8x8_inference_flag
  let crop = [0, 0, 0, 0];
  if (r.bit()) crop = [r.ue(), r.ue(), r.ue(), r.ue()];
  // Crop units per H.264 7.4.2.1.1: chroma subsampling, and two fields per frame when interlaced.
  const chromaArrayType = separateColourPlanes ? 0 : chromaFormat;
  const cropX = chromaArrayType === 0 || chromaArrayType === 3 ? 1 : 2;
  const cropY = (chromaArrayType === 1 ? 2 : 1) * (2 - frameMbsOnly);
  const width = widthMbs * 16 - cropX * (crop[0]! + crop[1]!);
  const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (crop[2]! + crop[3]!);
  const fields: SpsFields = { chromaFormat, bitDepthLuma, bitDepthChroma, width, height };
  if (r.remaining > 0 && r.bit()) {
    const fps = readVuiFps(r);
    if (fps !== undefined) fields.fps = fps;
  }
  return fields;
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Reads the VUI up to its timing info; the frame rate is time_scale / (2 * num_units_in_tick). */
function readVuiFps(r: BitReader): number | undefined {
  if (r.bit() && r.bits(8) === 255) r.bits(32); // aspect_ratio_idc, Extended_SAR
  if (r.bit()) r.bit(); // overscan
  if (r.bit()) {
    r.bits(4); // video_format, full_range
    if (r.bit()) r.bits(24); // colour description
  }
  if (r.bit()) {
    r.ue();
    r.ue();
  }
  if (!r.bit()) return undefined;
  const unitsInTick = r.bits(32);
  const timeScale = r.bits(32);
  if (unitsInTick === 0 || timeScale === 0) return undefined;
  return Math.round((timeScale / (2 * unitsInTick)) * 1000) / 1000;
}

/** Splits Annex B bytes (start codes `00 00 01` / `00 00 00 01`) into NAL units. */
export function annexBToNalus(data: Buffer): Buffer[] {
  const nalus: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) nalus.push(trimTrailingZeros(data.subarray(start, i)));
      i += 3;
      start = i;
    } else i++;
  }
  if (start >= 0 && start < data.length) nalus.push(trimTrailingZeros(data.subarray(start)));
  return nalus.filter((nal) => nal.length > 0);
}

// A 4-byte start code leaves its leading zero at the end of the previous NAL unit.
function trimTrailingZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

/** Prefixes each NAL unit with its 4-byte length (the AVCC form). */
export function nalusToAvcc(nalus: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const nal of nalus) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(nal.length);
    parts.push(length, nal);
  }
  return Buffer.concat(parts);
}

/** Annex B bytes to length-prefixed (AVCC) bytes. */
export function annexBToAvcc(data: Buffer): Buffer {
  return nalusToAvcc(annexBToNalus(data));
}

/** Splits length-prefixed (AVCC) bytes into NAL units; throws MediaFormatError when a length overruns. */
export function avccToNalus(data: Buffer, lengthSize = 4): Buffer[] {
  const nalus: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + lengthSize > data.length) throw new MediaFormatError('AVCC data truncated in a NAL length');
    const size = data.readUIntBE(offset, lengthSize);
    offset += lengthSize;
    if (offset + size > data.length) throw new MediaFormatError(`AVCC NAL length ${size} overruns the packet`);
    nalus.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return nalus;
}

/** Length-prefixed (AVCC) bytes to Annex B bytes with 4-byte start codes. */
export function avccToAnnexB(data: Buffer, lengthSize = 4): Buffer {
  const startCode = Buffer.from([0, 0, 0, 1]);
  return Buffer.concat(avccToNalus(data, lengthSize).flatMap((nal) => [startCode, nal]));
}

/** The NAL unit type of a NAL unit. */
export function nalType(nal: Buffer): number {
  return nal[0]! & 0x1f;
}
