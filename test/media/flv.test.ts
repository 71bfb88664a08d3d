import { describe, expect, it } from 'vitest';
import { FLV_AUDIO, FLV_SCRIPT, FLV_VIDEO, FlvReader, FlvTagDecoder, FlvWriter, encodeTag, flvHeader, packetToTag, type FlvTag } from '../../media/flv.ts';
import type { MediaPacket } from '../../media/packet.ts';

const avcC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000f03c50aa801000468ce0fc8', 'hex');
const asc = Buffer.from('1210', 'hex');
const videoHeader: FlvTag = { type: FLV_VIDEO, timestamp: 0, body: Buffer.concat([Buffer.from('1700000000', 'hex'), avcC]) };
const audioHeader: FlvTag = { type: FLV_AUDIO, timestamp: 0, body: Buffer.concat([Buffer.from('af00', 'hex'), asc]) };
// A keyframe at 40 ms shown at 80 ms (composition time +40), then an inter frame with a negative offset (-33).
const keyframe: FlvTag = { type: FLV_VIDEO, timestamp: 40, body: Buffer.from('1701000028' + '000000026588', 'hex') };
const interFrame: FlvTag = { type: FLV_VIDEO, timestamp: 73, body: Buffer.from('2701ffffdf' + '000000024188', 'hex') };
const audioFrame: FlvTag = { type: FLV_AUDIO, timestamp: 0x1234567, body: Buffer.from('af01' + '2100', 'hex') };

function file(tags: FlvTag[]): Buffer {
  return Buffer.concat([flvHeader({ audio: true, video: true }), ...tags.map(encodeTag)]);
}

describe('FlvTagDecoder', () => {
  it('turns sequence headers into track configurations and frames into packets', () => {
    const decoder = new FlvTagDecoder('cam');
    expect(decoder.decode(keyframe)).toEqual({ kind: 'skip', reason: 'video frame before its sequence header' });
    const config = decoder.decode(videoHeader);
    expect(config).toMatchObject({ kind: 'config', track: { kind: 'video', codec: 'h264', codecString: 'avc1.42c00d', width: 320, height: 240, fps: 30, timescale: 1000 } });
    const key = decoder.decode(keyframe);
    expect(key).toMatchObject({ kind: 'packet', packet: { stream: 'cam', rendition: 'source', dts: 40, pts: 80, keyframe: true } });
    expect(key.kind === 'packet' && key.packet.data.toString('hex')).toBe('000000026588');
    expect(decoder.decode(interFrame)).toMatchObject({ kind: 'packet', packet: { dts: 73, pts: 40, keyframe: false } });
    expect(decoder.decode(audioHeader)).toMatchObject({ kind: 'config', track: { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 } });
    expect(decoder.decode(audioFrame)).toMatchObject({ kind: 'packet', packet: { dts: 0x1234567, pts: 0x1234567, keyframe: true } });
  });

  it('skips the empty AAC sequence header ffmpeg writes before the real one when it copies ADTS audio', () => {
    const decoder = new FlvTagDecoder('cam');
    expect(decoder.decode({ type: FLV_AUDIO, timestamp: 0, body: Buffer.from('af00', 'hex') })).toEqual({ kind: 'skip', reason: 'empty AAC sequence header' });
    expect(decoder.decode(audioHeader)).toMatchObject({ kind: 'config', track: { codecString: 'mp4a.40.2' } });
    expect(decoder.decode(audioFrame)).toMatchObject({ kind: 'packet' });
  });

  it('skips codecs it does not carry, with the reason', () => {
    const decoder = new FlvTagDecoder('cam');
    expect(decoder.decode({ type: FLV_AUDIO, timestamp: 0, body: Buffer.from('2f00', 'hex') })).toEqual({ kind: 'skip', reason: 'FLV sound format 2 is not supported (only 10, AAC)' });
    expect(decoder.decode({ type: FLV_VIDEO, timestamp: 0, body: Buffer.from('9068766331', 'hex') })).toMatchObject({ kind: 'skip', reason: expect.stringMatching(/enhanced RTMP/) });
    expect(decoder.decode({ type: FLV_SCRIPT, timestamp: 0, body: Buffer.from('02', 'hex') })).toEqual({ kind: 'skip', reason: 'script data' });
  });

  it('writes the tag bodies it reads', () => {
    const decoder = new FlvTagDecoder('cam');
    decoder.decode(videoHeader);
    decoder.decode(audioHeader);
    for (const tag of [keyframe, interFrame, audioFrame]) {
      const decoded = decoder.decode(tag);
      if (decoded.kind !== 'packet') throw new Error('expected a packet');
      expect(packetToTag(decoded.packet)).toEqual(tag);
    }
  });
});

describe('FlvReader', () => {
  const bytes = file([videoHeader, audioHeader, keyframe, audioFrame, interFrame]);

  it('reads the same packets whatever the chunk sizes', () => {
    const whole = new FlvReader({ stream: 'cam' }).push(bytes);
    expect(whole.error).toBeUndefined();
    expect(whole.configs.map((t) => t.kind)).toEqual(['video', 'audio']);
    expect(whole.packets.map((p) => p.dts)).toEqual([40, 0x1234567, 73]);
    for (const size of [1, 7, 13, 50]) {
      const reader = new FlvReader({ stream: 'cam' });
      const packets: MediaPacket[] = [];
      for (let i = 0; i < bytes.length; i += size) {
        const result = reader.push(bytes.subarray(i, i + size));
        expect(result.error).toBeUndefined();
        packets.push(...result.packets);
      }
      expect(packets.map((p) => [p.dts, p.pts, p.data.toString('hex')])).toEqual(whole.packets.map((p) => [p.dts, p.pts, p.data.toString('hex')]));
      expect(reader.buffered).toBe(0);
    }
  });

  it('ends with an error on bytes that are not FLV, and ignores what follows', () => {
    const reader = new FlvReader({ stream: 'cam' });
    const result = reader.push(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(result.error?.message).toBe('not FLV: the bytes do not start with `FLV`');
    expect(reader.push(bytes).error).toBe(result.error);
    expect(new FlvReader({ stream: 'x' }).push(Buffer.from('FX')).error).toBeDefined();
  });

  it('reports a corrupt tag after good ones, keeping the good ones', () => {
    const corrupt = Buffer.from(bytes);
    corrupt.writeUInt32BE(999, 13 + 11 + videoHeader.body.length);
    const result = new FlvReader({ stream: 'cam' }).push(corrupt);
    expect(result.error?.message).toMatch(/PreviousTagSize 999/);
    const garbageType = Buffer.concat([flvHeader({ audio: true, video: true }), encodeTag(videoHeader), Buffer.from([0x55, 0, 0])]);
    const second = new FlvReader({ stream: 'cam' }).push(garbageType);
    expect(second.configs).toHaveLength(1);
    expect(second.error?.message).toBe('unknown FLV tag type 21');
  });

  it('turns a malformed sequence header into an error, not a throw', () => {
    const broken = file([{ type: FLV_VIDEO, timestamp: 0, body: Buffer.from('170000000001', 'hex') }]);
    expect(new FlvReader({ stream: 'cam' }).push(broken).error?.message).toMatch(/AVCDecoderConfigurationRecord/);
  });

  it('reports each skipped codec once', () => {
    const mp3 = { type: FLV_AUDIO, timestamp: 0, body: Buffer.from('2fff', 'hex') };
    const result = new FlvReader({ stream: 'cam' }).push(file([mp3, mp3, videoHeader]));
    expect(result.skipped).toEqual(['FLV sound format 2 is not supported (only 10, AAC)']);
  });
});

describe('FlvWriter', () => {
  it('writes the header and sequence headers before the first frames, and again when a configuration changes', () => {
    const decoder = new FlvTagDecoder('cam');
    decoder.decode(videoHeader);
    const first = decoder.decode(keyframe);
    if (first.kind !== 'packet') throw new Error('expected a packet');
    const writer = new FlvWriter({ audio: false, video: true });
    const out = writer.write(first.packet);
    expect(out.subarray(0, 13).equals(flvHeader({ audio: false, video: true }))).toBe(true);
    expect(out.subarray(13).equals(Buffer.concat([encodeTag({ ...videoHeader, timestamp: 40 }), encodeTag(keyframe)]))).toBe(true);
    expect(writer.write(first.packet).equals(encodeTag(keyframe))).toBe(true);
    const changed: MediaPacket = { ...first.packet, track: { ...first.packet.track, config: Buffer.concat([avcC.subarray(0, avcC.length - 1), Buffer.from([0xc9])]) } };
    const again = new FlvReader({ stream: 'cam' }).push(Buffer.concat([out, writer.write(changed)]));
    expect(again.configs).toHaveLength(2);
    expect(again.packets).toHaveLength(2);
  });

  it('converts timestamps of other timescales to milliseconds', () => {
    const decoder = new FlvTagDecoder('cam');
    decoder.decode(videoHeader);
    const result = decoder.decode(keyframe);
    if (result.kind !== 'packet') throw new Error('expected a packet');
    const tsPacket: MediaPacket = { ...result.packet, track: { ...result.packet.track, timescale: 90000 }, dts: 9000, pts: 12000 };
    expect(packetToTag(tsPacket)).toMatchObject({ timestamp: 100, body: Buffer.from('1701000021000000026588', 'hex') });
  });
});

describe('FlvReader.end', () => {
  it('is clean after whole tags, and an error when the input stops inside one', () => {
    const bytes = file([videoHeader, keyframe]);
    const whole = new FlvReader({ stream: 'cam' });
    whole.push(bytes);
    expect(whole.end().error).toBeUndefined();
    const cut = new FlvReader({ stream: 'cam' });
    cut.push(bytes.subarray(0, bytes.length - 3));
    expect(cut.end().error?.message).toMatch(/ends inside a tag/);
    expect(new FlvReader({ stream: 'cam' }).end().error?.message).toBe('FLV ends before its header');
  });
});
