import { describe, expect, it } from 'vitest';
import { BoxWriter, readBoxes } from '../../media/fmp4/box-writer.ts';
import { writeInitSegment } from '../../media/fmp4/init-segment.ts';
import { nonSyncSampleFlags, syncSampleFlags, writeFragment } from '../../media/fmp4/fragment.ts';
import { UnsupportedCodecError } from '../../media/fmp4/sample-entry.ts';
import { aacConfig, audioTrack, avcConfig, videoTrack } from './synthetic-media.ts';

/** The box at `path` (`moov/trak/mdia`), descending through containers. */
function boxAt(data: Buffer, path: string): Buffer {
  let body = data;
  for (const type of path.split('/')) {
    const found = readBoxes(body).find((box) => box.type === type);
    if (found === undefined) throw new Error(`no \`${type}\` in ${path}`);
    body = found.body;
  }
  return body;
}

const typesOf = (data: Buffer): string[] => readBoxes(data).map((box) => box.type);

describe('BoxWriter', () => {
  it('patches nested box sizes and grows past its first capacity', () => {
    const w = new BoxWriter(8);
    const outer = w.begin('moov');
    w.box('free', () => w.zeros(100));
    w.fullBox('mvhd', 1, 0x000003, () => w.u64(2 ** 40 + 5));
    w.end(outer);
    const data = w.finish();
    expect(data.length).toBe(8 + 108 + 12 + 8);
    expect(typesOf(data)).toEqual(['moov']);
    expect(typesOf(boxAt(data, 'moov'))).toEqual(['free', 'mvhd']);
    const mvhd = boxAt(data, 'moov/mvhd');
    expect(mvhd.readUInt32BE(0)).toBe(0x01000003);
    expect(Number(mvhd.readBigUInt64BE(4))).toBe(2 ** 40 + 5);
  });
});

describe('writeInitSegment', () => {
  it('writes ftyp with the CMAF brands and a moov with one track', () => {
    const init = writeInitSegment(videoTrack());
    expect(typesOf(init)).toEqual(['ftyp', 'moov']);
    const ftyp = boxAt(init, 'ftyp');
    expect(ftyp.toString('latin1', 0, 4)).toBe('iso6');
    expect(ftyp.toString('latin1', 8)).toContain('cmfc');
    expect(typesOf(boxAt(init, 'moov'))).toEqual(['mvhd', 'trak', 'mvex']);
    expect(typesOf(boxAt(init, 'moov/trak'))).toEqual(['tkhd', 'mdia']);
    expect(typesOf(boxAt(init, 'moov/trak/mdia'))).toEqual(['mdhd', 'hdlr', 'minf']);
    expect(typesOf(boxAt(init, 'moov/trak/mdia/minf'))).toEqual(['vmhd', 'dinf', 'stbl']);
    expect(typesOf(boxAt(init, 'moov/trak/mdia/minf/stbl'))).toEqual(['stsd', 'stts', 'stsc', 'stsz', 'stco']);
    expect(boxAt(init, 'moov/mvex/trex').readUInt32BE(4)).toBe(1);
  });

  it('puts the track timescale in mdhd and the picture size in tkhd and avc1, with the avcC as given', () => {
    const init = writeInitSegment(videoTrack({ timescale: 90000, width: 1280, height: 720 }));
    expect(boxAt(init, 'moov/trak/mdia/mdhd').readUInt32BE(12)).toBe(90000);
    const tkhd = boxAt(init, 'moov/trak/tkhd');
    expect(tkhd.readUInt32BE(tkhd.length - 8) / 0x10000).toBe(1280);
    expect(tkhd.readUInt32BE(tkhd.length - 4) / 0x10000).toBe(720);
    expect(boxAt(init, 'moov/trak/mdia/hdlr').toString('latin1', 8, 12)).toBe('vide');
    const stsd = boxAt(init, 'moov/trak/mdia/minf/stbl/stsd');
    expect(stsd.readUInt32BE(4)).toBe(1);
    const [avc1] = readBoxes(stsd, 8);
    expect(avc1.type).toBe('avc1');
    expect(avc1.body.readUInt16BE(24)).toBe(1280);
    expect(avc1.body.readUInt16BE(26)).toBe(720);
    const [avcC] = readBoxes(avc1.body, 78);
    expect(avcC.type).toBe('avcC');
    expect(avcC.body.equals(avcConfig)).toBe(true);
  });

  it('writes hvc1 with the hvcC for HEVC', () => {
    const config = Buffer.from('01016000000090000000000000f000fcfdf8f800000f', 'hex');
    const stsd = boxAt(writeInitSegment(videoTrack({ codec: 'hevc', config })), 'moov/trak/mdia/minf/stbl/stsd');
    const [hvc1] = readBoxes(stsd, 8);
    expect(hvc1.type).toBe('hvc1');
    expect(readBoxes(hvc1.body, 78)[0].body.equals(config)).toBe(true);
  });

  it('takes rate and channels from the AudioSpecificConfig when the track does not say', () => {
    const stsd = boxAt(writeInitSegment(audioTrack({ sampleRate: undefined, channels: undefined, config: Buffer.from('1208', 'hex') })), 'moov/trak/mdia/minf/stbl/stsd');
    const [mp4a] = readBoxes(stsd, 8);
    expect(mp4a.body.readUInt16BE(16)).toBe(1);
    expect(mp4a.body.readUInt32BE(24) / 0x10000).toBe(44100);
  });

  it('writes mp4a with an esds that carries the AudioSpecificConfig, and a sound handler', () => {
    const init = writeInitSegment(audioTrack());
    expect(typesOf(boxAt(init, 'moov/trak/mdia/minf'))).toEqual(['smhd', 'dinf', 'stbl']);
    expect(boxAt(init, 'moov/trak/mdia/hdlr').toString('latin1', 8, 12)).toBe('soun');
    const stsd = boxAt(init, 'moov/trak/mdia/minf/stbl/stsd');
    const [mp4a] = readBoxes(stsd, 8);
    expect(mp4a.type).toBe('mp4a');
    expect(mp4a.body.readUInt16BE(16)).toBe(2);
    expect(mp4a.body.readUInt32BE(24) / 0x10000).toBe(48000);
    const [esds] = readBoxes(mp4a.body, 28);
    expect(esds.type).toBe('esds');
    // ES_Descriptor (3) > DecoderConfigDescriptor (4, MPEG-4 audio) > DecoderSpecificInfo (5) = the ASC.
    expect(esds.body[4]).toBe(0x03);
    const decoderConfig = esds.body.indexOf(Buffer.from([0x04, 0x80, 0x80, 0x80]));
    expect(esds.body[decoderConfig + 5]).toBe(0x40);
    const specific = esds.body.indexOf(Buffer.from([0x05, 0x80, 0x80, 0x80, aacConfig.length]));
    expect(esds.body.subarray(specific + 5, specific + 5 + aacConfig.length).equals(aacConfig)).toBe(true);
  });

  it('refuses a codec it has no sample entry for', () => {
    expect(() => writeInitSegment(audioTrack({ codec: 'opus' }))).toThrow(UnsupportedCodecError);
  });
});

describe('writeFragment', () => {
  const samples = [
    { duration: 40, compositionOffset: 80, sync: true, data: Buffer.from('aaaa') },
    { duration: 40, compositionOffset: -40, sync: false, data: Buffer.from('bbbbbb') },
    { duration: 41, compositionOffset: 0, sync: false, data: Buffer.from('c') },
  ];

  it('writes moof (mfhd, traf: tfhd, tfdt, trun) and an mdat holding the samples in order', () => {
    const fragment = writeFragment({ sequence: 7, baseDecodeTime: 2 ** 33 + 1 }, samples);
    expect(typesOf(fragment)).toEqual(['moof', 'mdat']);
    expect(typesOf(boxAt(fragment, 'moof'))).toEqual(['mfhd', 'traf']);
    expect(boxAt(fragment, 'moof/mfhd').readUInt32BE(4)).toBe(7);
    expect(typesOf(boxAt(fragment, 'moof/traf'))).toEqual(['tfhd', 'tfdt', 'trun']);
    const tfhd = boxAt(fragment, 'moof/traf/tfhd');
    expect(tfhd.readUInt32BE(0)).toBe(0x00020000); // default-base-is-moof
    expect(tfhd.readUInt32BE(4)).toBe(1);
    const tfdt = boxAt(fragment, 'moof/traf/tfdt');
    expect(tfdt[0]).toBe(1);
    expect(Number(tfdt.readBigUInt64BE(4))).toBe(2 ** 33 + 1);
    expect(boxAt(fragment, 'mdat').toString()).toBe('aaaabbbbbbc');
  });

  it('writes a version 1 trun with duration, size, flags and signed composition offsets, and a data offset to the mdat body', () => {
    const fragment = writeFragment({ sequence: 1, baseDecodeTime: 0 }, samples);
    const trun = boxAt(fragment, 'moof/traf/trun');
    expect(trun.readUInt32BE(0)).toBe(0x01000f01);
    expect(trun.readUInt32BE(4)).toBe(3);
    const moofSize = readBoxes(fragment)[0].size;
    expect(trun.readUInt32BE(8)).toBe(moofSize + 8);
    const rows = [0, 1, 2].map((i) => [0, 4, 8, 12].map((field) => (field === 12 ? trun.readInt32BE(12 + i * 16 + field) : trun.readUInt32BE(12 + i * 16 + field))));
    expect(rows).toEqual([
      [40, 4, syncSampleFlags, 80],
      [40, 6, nonSyncSampleFlags, -40],
      [41, 1, nonSyncSampleFlags, 0],
    ]);
  });

  it('leaves flags and offsets out when every sample is sync and presented at its decode time (audio)', () => {
    const audio = [1, 2].map((n) => ({ duration: 21, compositionOffset: 0, sync: true, data: Buffer.alloc(n) }));
    const trun = boxAt(writeFragment({ sequence: 1, baseDecodeTime: 0 }, audio), 'moof/traf/trun');
    expect(trun.readUInt32BE(0)).toBe(0x01000301);
    expect(trun.length).toBe(12 + 2 * 8);
  });
});
