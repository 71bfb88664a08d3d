import { describe, expect, it } from 'vitest';
import {
  annexBToAvcc,
  annexBToNalus,
  avcCodecString,
  avcTrackFields,
  avccToAnnexB,
  avccToNalus,
  buildAvcC,
  parseAvcC,
  parseSps,
  unescapeRbsp,
} from '../../media/avc.ts';
import { MediaFormatError } from '../../media/format-error.ts';

// What ffmpeg's libx264 wrote: 320x240 baseline at 30 fps (from an FLV), 1920x1080 High at 25 fps (cropped from 1088).
const baselineAvcC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000f03c50aa801000468ce0fc8', 'hex');
const highSps = Buffer.from('67640028acd940780227e5c044000003000400000300c83c60c658', 'hex');
const highPps = Buffer.from('68ef8fcb', 'hex');

describe('avcC', () => {
  it('parses profile, level and the parameter sets', () => {
    const config = parseAvcC(baselineAvcC);
    expect(config).toMatchObject({ profile: 0x42, compat: 0xc0, level: 0x0d, lengthSize: 4 });
    expect(config.sps.map((b) => b.toString('hex'))).toEqual(['6742c00dda0507ec0440000003004000000f03c50aa8']);
    expect(config.pps.map((b) => b.toString('hex'))).toEqual(['68ce0fc8']);
    expect(avcCodecString(config)).toBe('avc1.42c00d');
  });

  it('gives the track fields: codec string, dimensions and the VUI frame rate', () => {
    expect(avcTrackFields(baselineAvcC)).toEqual({ codecString: 'avc1.42c00d', width: 320, height: 240, fps: 30 });
  });

  it('applies the SPS cropping of a 1088-line High profile picture', () => {
    expect(parseSps(highSps)).toEqual({ profile: 0x64, compat: 0, level: 0x28, width: 1920, height: 1080, fps: 25 });
  });

  it('builds an avcC that parses back, with the High profile chroma trailer', () => {
    const built = buildAvcC([highSps], [highPps]);
    const parsed = parseAvcC(built);
    expect(parsed.sps[0]!.equals(highSps)).toBe(true);
    expect(parsed.pps[0]!.equals(highPps)).toBe(true);
    expect(avcCodecString(parsed)).toBe('avc1.640028');
    // chroma_format_idc 1, 8-bit luma and chroma, no SPS extensions.
    expect(built.subarray(-4).toString('hex')).toBe('fdf8f800');
    const baseline = parseAvcC(baselineAvcC);
    expect(buildAvcC(baseline.sps, baseline.pps).equals(Buffer.from('0142c00dffe1' + baselineAvcC.subarray(6).toString('hex'), 'hex'))).toBe(true);
  });

  it('refuses malformed records with a MediaFormatError', () => {
    expect(() => parseAvcC(Buffer.from([0, 1, 2]))).toThrow(MediaFormatError);
    expect(() => parseAvcC(Buffer.from('0142c00dffe100166742', 'hex'))).toThrow(/truncated/);
    expect(() => parseSps(Buffer.from('68ce0fc8', 'hex'))).toThrow(/not an SPS/);
    expect(() => parseSps(Buffer.from('6742c00d', 'hex'))).toThrow(/truncated/);
    expect(() => buildAvcC([], [])).toThrow(MediaFormatError);
  });
});

describe('NAL framing', () => {
  const annexB = Buffer.from('00000001' + '6742' + '000001' + '68ce' + '00000001' + '6588aa00', 'hex');

  it('splits Annex B on 3- and 4-byte start codes', () => {
    expect(annexBToNalus(annexB).map((b) => b.toString('hex'))).toEqual(['6742', '68ce', '6588aa']);
  });

  it('converts Annex B to AVCC and back', () => {
    const avcc = annexBToAvcc(annexB);
    expect(avcc.toString('hex')).toBe('00000002674200000002' + '68ce' + '00000003' + '6588aa');
    expect(avccToNalus(avcc).map((b) => b.toString('hex'))).toEqual(['6742', '68ce', '6588aa']);
    expect(avccToAnnexB(avcc).toString('hex')).toBe('000000016742' + '0000000168ce' + '000000016588aa');
  });

  it('reports a NAL length that overruns the packet', () => {
    expect(() => avccToNalus(Buffer.from('0000000967', 'hex'))).toThrow(/overruns/);
  });

  it('removes emulation prevention bytes', () => {
    expect(unescapeRbsp(Buffer.from('0000030100000300', 'hex')).toString('hex')).toBe('000001000000');
  });
});
