import { describe, expect, it } from 'vitest';
import { FLV_AUDIO, FLV_VIDEO, encodeTag, flvHeader, type FlvTag } from '../../media/flv.ts';
import { buildAdtsHeader, buildAsc } from '../../media/aac.ts';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import demux from '../../nodes/media/demux.ts';
import { batchOf, drive, fakeContext, probeAck } from '../helpers/fake-context.ts';
import { checkYaml } from '../helpers/pipeline.ts';
import { AUDIO_PID, pes, programTables } from './ts-builder.ts';

const avcC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000f03c50aa801000468ce0fc8', 'hex');
const tags: FlvTag[] = [
  { type: FLV_VIDEO, timestamp: 0, body: Buffer.concat([Buffer.from('1700000000', 'hex'), avcC]) },
  { type: FLV_AUDIO, timestamp: 0, body: Buffer.from('af001210', 'hex') },
  { type: FLV_VIDEO, timestamp: 0, body: Buffer.from('1701000000000000026588', 'hex') },
  { type: FLV_AUDIO, timestamp: 23, body: Buffer.from('af012100', 'hex') },
];
const flv = Buffer.concat([flvHeader({ audio: true, video: true }), ...tags.map(encodeTag)]);

function summary(items: unknown[]): string[] {
  return (items as MediaItem[]).map((item) => (isMediaEnd(item) ? `end ${item.stream}` : `${item.stream} ${item.track.kind} ${item.dts}${item.discontinuity ? ' discontinuity' : ''}`));
}

describe('demux', () => {
  it('reads FLV split anywhere into packets, named by the node, and ends the stream when the input ends', () => {
    const ctx = fakeContext(demux, { format: 'flv' }, { node: 'cam' });
    const chunks = [flv.subarray(0, 5), flv.subarray(5, 40), flv.subarray(40)];
    const run = drive(demux.create(ctx), chunks.map((data) => batchOf([{ data }])));
    expect(run.completed).toBe(true);
    expect(summary(run.items())).toEqual(['cam video 0', 'cam audio 23', 'end cam']);
    expect((run.items()[0] as MediaPacket).track.codecString).toBe('avc1.42c00d');
    expect(ctx.bytes).toBe(flv.length);
  });

  it('keeps streams apart by meta.stream, ends one on meta.end and restarts it with a discontinuity', () => {
    const ctx = fakeContext(demux, { format: 'flv' });
    const run = drive(demux.create(ctx), [
      batchOf([{ data: flv.subarray(0, 30), meta: { stream: 'a' } }, { data: flv, meta: { stream: 'b' } }]),
      batchOf([{ data: flv.subarray(30), meta: { stream: 'a', end: true } }]),
      batchOf([{ data: flv, meta: { stream: 'a' } }]),
    ]);
    expect(summary(run.items())).toEqual(['b video 0', 'b audio 23', 'a video 0', 'a audio 23', 'end a', 'a video 0 discontinuity', 'a audio 23', 'end b', 'end a']);
  });

  it('ends a stream whose bytes are not the container, with a dead letter and a log line, and goes on with the others', () => {
    const ctx = fakeContext(demux, { format: 'flv' });
    const bad = { data: Buffer.from('<html>not flv</html>'), meta: { stream: 'badsecret' } };
    const probe = probeAck();
    const run = drive(demux.create(ctx), [batchOf([bad, { data: flv, meta: { stream: 'good' } }], probe.ack), batchOf([{ data: flv, meta: { stream: 'badsecret' } }])]);
    expect(summary(run.items())).toEqual(['end badsecret', 'good video 0', 'good audio 23', 'end good']);
    expect(ctx.failures.map((f) => [f.item, f.reason])).toEqual([[bad, 'not FLV: the bytes do not start with `FLV`']]);
    // A stream may be named by its secret key: logs show only its first four characters.
    expect(ctx.logs.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([expect.stringContaining('stream bads…: not FLV')]);
    expect(JSON.stringify(ctx.logs)).not.toContain('badsecret');
    run.releaseAll();
    expect(probe.done).toBe(1);
  });

  it('reads at most max_streams streams at once: bytes of another are dead-lettered and counted', () => {
    const ctx = fakeContext(demux, { format: 'flv', max_streams: 2 });
    const third = { data: flv, meta: { stream: 'third-stream' } };
    const run = drive(demux.create(ctx), [
      batchOf([{ data: flv.subarray(0, 30), meta: { stream: 'a' } }, { data: flv.subarray(0, 30), meta: { stream: 'b' } }, third]),
      batchOf([{ data: flv.subarray(30), meta: { stream: 'a', end: true } }]),
      batchOf([{ data: flv, meta: { stream: 'c' } }]),
    ]);
    expect(summary(run.items())).toEqual(['a video 0', 'a audio 23', 'end a', 'c video 0', 'c audio 23', 'end b', 'end c']);
    expect(ctx.drops).toEqual({ max_streams: 1 });
    expect(ctx.failures.map((f) => [f.item, f.reason])).toEqual([[third, 'stream thir…: `max_streams` (2) streams are being read']]);
  });

  it('remembers a bounded number of ended streams', () => {
    const ctx = fakeContext(demux, { format: 'flv' });
    const batches = Array.from({ length: 1100 }, (_, index) => batchOf([{ data: flv, meta: { stream: `s${index}`, end: true } as { stream: string; end?: boolean } }]));
    batches.push(batchOf([{ data: flv, meta: { stream: 's0' } }]), batchOf([{ data: flv, meta: { stream: 's1099' } }]));
    const run = drive(demux.create(ctx), batches);
    const packets = run.items().filter((item): item is MediaPacket => !isMediaEnd(item as MediaItem)) as MediaPacket[];
    // s0 was forgotten (no discontinuity), s1099 is remembered.
    expect(packets.filter((p) => p.discontinuity).map((p) => p.stream)).toEqual(['s1099']);
  });

  it('acknowledges at once a batch that completes no packet', () => {
    const probe = probeAck();
    const run = drive(demux.create(fakeContext(demux, { format: 'flv' })), [batchOf([{ data: flv.subarray(0, 20) }], probe.ack)]);
    expect(probe.done).toBe(1);
    expect(run.batches).toHaveLength(1);
  });

  it('reads MPEG-TS at 90 kHz', () => {
    const asc = buildAsc(2, 3, 2);
    const frame = Buffer.from('2100', 'hex');
    const ts = Buffer.concat([programTables(), pes(AUDIO_PID, Buffer.concat([buildAdtsHeader(asc, 2), frame]), 90_000)]);
    const run = drive(demux.create(fakeContext(demux, { format: 'mpegts', stream: 'srt' })), [batchOf([{ data: ts }])]);
    const [packet, end] = run.items() as [MediaPacket, MediaItem];
    expect(packet).toMatchObject({ stream: 'srt', dts: 90_000, track: { timescale: 90_000, codecString: 'mp4a.40.2', sampleRate: 48_000 } });
    expect(isMediaEnd(end)).toBe(true);
  });

  it('needs a format, and types its output as media', () => {
    expect(() => checkYaml('streams: 1\nname: d\nnodes:\n  f: { op: file.read, with: { path: x.flv, format: bytes } }\n  d: { op: demux, in: f }\n')).toThrow(/format/);
    expect(() => checkYaml('streams: 1\nname: d\nnodes:\n  f: { op: file.read, with: { path: x.flv, format: bytes } }\n  d: { op: demux, in: f, with: { format: mp4 } }\n')).toThrow(/flv.*mpegts|mpegts.*flv/);
  });
});
