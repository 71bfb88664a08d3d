/**
 * The sample entries of an init segment's `stsd`: `avc1` + `avcC`,
 * `hvc1` + `hvcC` (the decoder configuration record copied as it is), and
 * `mp4a` + `esds` built around the AudioSpecificConfig.
 */
import type { TrackInfo } from '../packet.ts';
import type { BoxWriter } from './box-writer.ts';

/** A codec the fMP4 writer cannot put in a sample entry. */
export class UnsupportedCodecError extends Error {
  readonly code = 'unsupported_codec';
}

/** Writes the one sample entry `track` needs. */
export function writeSampleEntry(w: BoxWriter, track: TrackInfo): void {
  switch (track.codec) {
    case 'h264':
      return writeVisualEntry(w, 'avc1', 'avcC', track);
    case 'hevc':
      return writeVisualEntry(w, 'hvc1', 'hvcC', track);
    case 'aac':
      return writeMp4a(w, track);
    default:
      throw new UnsupportedCodecError(`codec \`${track.codec}\` cannot be packaged in fMP4 yet (h264, hevc and aac can)`);
  }
}

function writeVisualEntry(w: BoxWriter, type: string, configType: string, track: TrackInfo): void {
  const start = w.begin(type);
  w.zeros(6).u16(1); // reserved, data_reference_index
  w.zeros(16); // pre_defined, reserved, pre_defined[3]
  w.u16(track.width ?? 0).u16(track.height ?? 0);
  w.u32(0x00480000).u32(0x00480000); // 72 dpi
  w.u32(0).u16(1); // reserved, frame_count
  w.zeros(32); // compressorname
  w.u16(0x0018).u16(0xffff); // depth, pre_defined = -1
  w.box(configType, () => w.bytes(track.config));
  w.end(start);
}

/** The fields of an AudioSpecificConfig that `mp4a` repeats (ISO 14496-3 1.6.2.1). */
export interface AudioConfigFields {
  objectType: number;
  sampleRate: number;
  channels: number;
}

const sampleRates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** Reads object type, sample rate and channel configuration from an AudioSpecificConfig. */
export function parseAudioSpecificConfig(config: Buffer): AudioConfigFields {
  if (config.length < 2) throw new Error(`AudioSpecificConfig too short (${config.length} bytes)`);
  const bits = (config[0] << 24) | (config[1] << 16) | ((config[2] ?? 0) << 8) | (config[3] ?? 0);
  let at = 0;
  const read = (n: number): number => {
    const value = (bits >>> (32 - at - n)) & ((1 << n) - 1);
    at += n;
    return value;
  };
  let objectType = read(5);
  if (objectType === 31) objectType = 32 + read(6);
  const index = read(4);
  // An explicit 24-bit rate (index 15) is rare: the track's own fields then stand in.
  if (index === 15) return { objectType, sampleRate: 0, channels: 0 };
  const sampleRate = sampleRates[index] ?? 0;
  const channels = read(4);
  return { objectType, sampleRate, channels };
}

/** An MPEG-4 descriptor length in the 4-byte form, which every reader accepts. */
function descriptor(w: BoxWriter, tag: number, length: number): void {
  w.u8(tag).u8(0x80 | ((length >> 21) & 0x7f)).u8(0x80 | ((length >> 14) & 0x7f)).u8(0x80 | ((length >> 7) & 0x7f)).u8(length & 0x7f);
}

function writeMp4a(w: BoxWriter, track: TrackInfo): void {
  const fields = parseAudioSpecificConfig(track.config);
  const channels = track.channels ?? fields.channels;
  const sampleRate = track.sampleRate ?? fields.sampleRate;
  const start = w.begin('mp4a');
  w.zeros(6).u16(1); // reserved, data_reference_index
  w.zeros(8); // reserved
  w.u16(channels || 2).u16(16); // channelcount, samplesize
  w.u32(0); // pre_defined, reserved
  w.u32(sampleRate <= 0xffff ? sampleRate * 0x10000 : 0);
  const asc = track.config;
  const decoderSpecific = 5 + asc.length;
  const decoderConfig = 13 + decoderSpecific;
  const slConfig = 5 + 1;
  w.fullBox('esds', 0, 0, () => {
    descriptor(w, 0x03, 3 + 5 + decoderConfig + slConfig);
    w.u16(0).u8(0); // ES_ID, flags
    descriptor(w, 0x04, decoderConfig);
    w.u8(0x40).u8(0x15); // MPEG-4 audio, audio stream
    w.u24(0).u32(0).u32(0); // bufferSizeDB, maxBitrate, avgBitrate
    descriptor(w, 0x05, asc.length);
    w.bytes(asc);
    descriptor(w, 0x06, 1);
    w.u8(0x02);
  });
  w.end(start);
}
