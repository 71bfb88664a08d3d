import { describe, expect, it } from 'vitest';
import { adtsToAsc, buildAdtsHeader, buildAsc, parseAdts, parseAsc, splitAdts } from '../../media/aac.ts';
import { MediaFormatError } from '../../media/format-error.ts';

describe('AudioSpecificConfig', () => {
  it('parses what ffmpeg writes for 44.1 kHz mono AAC-LC', () => {
    expect(parseAsc(Buffer.from('120856e500', 'hex'))).toEqual({ objectType: 2, sampleRate: 44100, channels: 1, codecString: 'mp4a.40.2' });
  });

  it('reads escaped object types and explicit sample rates', () => {
    // Object type 32 (escaped: 31, then 32 - 32 in 6 bits), rate index 15 with 24-bit 44100, channel config 2.
    const value = [0, 0, 0, 0, 0, 0];
    let bits = '11111' + '000000' + '1111' + (44100).toString(2).padStart(24, '0') + '0010';
    bits = bits.padEnd(48, '0');
    for (let i = 0; i < 6; i++) value[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
    expect(parseAsc(Buffer.from(value))).toEqual({ objectType: 32, sampleRate: 44100, channels: 2, codecString: 'mp4a.40.32' });
  });

  it('builds the 2-byte form', () => {
    expect(buildAsc(2, 4, 2).toString('hex')).toBe('1210');
    expect(parseAsc(buildAsc(5, 3, 7))).toMatchObject({ objectType: 5, sampleRate: 48000, channels: 8 });
  });

  it('refuses short and reserved configurations', () => {
    expect(() => parseAsc(Buffer.from([0x12]))).toThrow(MediaFormatError);
    expect(() => parseAsc(Buffer.from([0x16, 0x80]))).toThrow(/reserved sample rate/);
  });
});

describe('ADTS', () => {
  const raw = Buffer.from('21002f', 'hex');
  const asc = buildAsc(2, 4, 2);
  const frame = Buffer.concat([buildAdtsHeader(asc, raw.length), raw]);

  it('writes and parses a header, and gives the equivalent ASC', () => {
    const header = parseAdts(frame);
    expect(header).toEqual({ objectType: 2, sampleRateIndex: 4, sampleRate: 44100, channelConfig: 2, headerLength: 7, frameLength: 10 });
    expect(adtsToAsc(header).equals(asc)).toBe(true);
  });

  it('splits consecutive frames into raw frames', () => {
    const frames = splitAdts(Buffer.concat([frame, frame]));
    expect(frames).toHaveLength(2);
    expect(frames[1]!.frame.equals(raw)).toBe(true);
  });

  it('reports a missing sync word and a truncated frame', () => {
    expect(() => parseAdts(Buffer.from('00112233445566', 'hex'))).toThrow(/sync word/);
    expect(() => splitAdts(frame.subarray(0, 8))).toThrow(/truncated/);
  });
});
