/**
 * Media packets as Kafka messages between hosts: `media.pack` writes each
 * item as one self-contained message, `media.unpack` reads it back as it
 * was, and bytes that are not such a message go to the dead-letter port.
 */
import { describe, expect, it } from 'vitest';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import { decodeMediaItem, encodeMediaItem } from '../../media/packet-wire.ts';
import mediaPack from '../../nodes/media/media-pack.ts';
import mediaUnpack from '../../nodes/media/media-unpack.ts';
import { audioInfo, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';

const video: MediaPacket = { stream: 'cam', rendition: 'source', track: { ...videoInfo, timescale: 90000 }, pts: 2 ** 40 + 3003, dts: 2 ** 40, keyframe: true, data: Buffer.from([0, 0, 0, 2, 0x65, 0x88]), discontinuity: true, arrival: 1764700000123, renditions: ['source', '720p', '360p'] };
const audio: MediaPacket = { stream: 'cam', rendition: 'source', track: audioInfo, pts: 1024, dts: 1024, keyframe: true, data: Buffer.from([0x21, 0x10, 0x04]) };
const items: MediaItem[] = [video, audio, { stream: 'cam', rendition: 'source', end: true }, { stream: 'cam', end: true }];

describe('media packets on the wire', () => {
  it('round-trip every field, timestamps past 2^32 and the decoder configuration included', () => {
    for (const item of items) expect(decodeMediaItem(encodeMediaItem(item))).toEqual(item);
    expect(encodeMediaItem(video).subarray(0, 4).toString('latin1')).toBe('AMW1');
  });

  it('say what is wrong with bytes that are not a media message', () => {
    const good = encodeMediaItem(video);
    expect(String(decodeMediaItem(Buffer.from('{"stream":"cam"}')))).toMatch(/not a media message \(no `AMW1` mark\)/);
    expect(String(decodeMediaItem(good.subarray(0, 12)))).toMatch(/header of \d+ bytes runs past the message's 12/);
    const broken = Buffer.from(good);
    broken.write('}', 8, 'latin1');
    expect(String(decodeMediaItem(broken))).toMatch(/header is not JSON/);
    const header = (fields: object) => {
      const json = Buffer.from(JSON.stringify(fields));
      const prefix = Buffer.alloc(8);
      prefix.write('AMW1', 0, 'latin1');
      prefix.writeUInt32BE(json.length, 4);
      return Buffer.concat([prefix, json]);
    };
    expect(String(decodeMediaItem(header({ rendition: 'x' })))).toMatch(/no `stream`/);
    expect(String(decodeMediaItem(header({ stream: 's', rendition: 'x', track: { kind: 'video' }, pts: 1, dts: 1, keyframe: true })))).toMatch(/malformed `track`/);
    expect(String(decodeMediaItem(header({ stream: 's', rendition: 'x', track: {}, pts: 1.5, dts: 1, keyframe: true })))).toMatch(/integer `pts`\/`dts`/);
  });
});

describe('media.pack and media.unpack', () => {
  it('carry packets and ends through Bytes keyed by stream, unchanged', () => {
    const packCtx = fakeContext(mediaPack, {});
    const packed = drive(mediaPack.create(packCtx), [batchOf(items)]);
    const messages = packed.items() as Array<{ data: Buffer; meta: Record<string, unknown> }>;
    // The video keyframe is marked, for a producer to say what is lost when the broker refuses it.
    expect(messages.map((m) => m.meta)).toEqual([{ stream: 'cam', rendition: 'source', keyframe: true }, { stream: 'cam', rendition: 'source' }, { stream: 'cam', rendition: 'source' }, { stream: 'cam' }]);
    // As kafka.consume gives them: Bytes with the message's value and its own meta.
    const consumed = messages.map((m) => ({ data: Buffer.from(m.data), meta: { topic: 't', partition: 0, offset: '1' } }));
    const unpackCtx = fakeContext(mediaUnpack, {});
    const unpacked = drive(mediaUnpack.create(unpackCtx), [batchOf(consumed)]);
    expect(unpacked.items()).toEqual(items);
    expect(unpackCtx.failures).toEqual([]);
  });

  it('sends a message that is not a media message to the dead-letter port and goes on', () => {
    const ctx = fakeContext(mediaUnpack, {});
    const run = drive(mediaUnpack.create(ctx), [batchOf([{ data: Buffer.from('hello') }, { data: encodeMediaItem(audio) }])]);
    expect(run.items()).toEqual([audio]);
    expect(ctx.failures.map((f) => f.reason)).toEqual([expect.stringMatching(/^not a media message/)]);
  });
});
