import { describe, expect, it } from 'vitest';
import { buildAdtsHeader, buildAsc } from '../../media/aac.ts';
import { parseAvcC } from '../../media/avc.ts';
import { MAX_PES_BYTES, TsReader } from '../../media/mpegts.ts';
import { foreignAudioCodec } from '../../media/mpegts-psi.ts';
import { psiSection, readPmt } from '../../media/mpegts-program.ts';
import type { MediaPacket } from '../../media/packet.ts';
import { AUDIO_PID, VIDEO_PID, pes, programTables, programVersion } from './ts-builder.ts';

const sps = Buffer.from('6742c00dda0507ec0440000003004000000f03c50aa8', 'hex');
const pps = Buffer.from('68ce0fc8', 'hex');
const idr = Buffer.concat([Buffer.from([0x65, 0x88]), Buffer.alloc(300, 0x11)]);
const inter = Buffer.from([0x41, 0x9a, 0x22]);
const startCode = Buffer.from([0, 0, 0, 1]);
const aud = Buffer.from([0x09, 0xf0]);
const asc = buildAsc(2, 4, 2);
const raw = [Buffer.from('210049', 'hex'), Buffer.from('2100aa55', 'hex')];
const adts = Buffer.concat(raw.flatMap((frame) => [buildAdtsHeader(asc, frame.length), frame]));

function annexB(...nalus: Buffer[]): Buffer {
  return Buffer.concat(nalus.flatMap((nal) => [startCode, nal]));
}

function sample(): Buffer {
  const video = { n: 0 };
  return Buffer.concat([
    programTables(),
    pes(VIDEO_PID, annexB(aud, sps, pps, idr), 9000 + 3003, 9000, video),
    pes(AUDIO_PID, adts, 9000),
    pes(VIDEO_PID, annexB(aud, inter), 9000 + 6006, 9000 + 3003, video),
  ]);
}

/** The PID of each TS packet in `packets`. */
function pidsOf(packets: Buffer): number[] {
  return Array.from({ length: packets.length / 188 }, (_, i) => ((packets[i * 188 + 1]! & 0x1f) << 8) | packets[i * 188 + 2]!);
}

function readAll(bytes: Buffer, size: number): { packets: MediaPacket[]; reader: TsReader } {
  const reader = new TsReader({ stream: 'ts' });
  const packets: MediaPacket[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    const result = reader.push(bytes.subarray(i, i + size));
    if (result.error) throw result.error;
    packets.push(...result.packets);
  }
  packets.push(...reader.end().packets);
  return { packets, reader };
}

describe('TsReader', () => {
  it('turns H.264 PES into AVCC access units with an avcC built from the in-band SPS and PPS', () => {
    const { packets, reader } = readAll(sample(), 188 * 7);
    const video = packets.filter((p) => p.track.kind === 'video');
    expect(video.map((p) => [p.dts, p.pts, p.keyframe])).toEqual([
      [9000, 12003, true],
      [12003, 15006, false],
    ]);
    // SPS, PPS and the delimiter travel in the track, not in the frames.
    expect(video[0]!.data.equals(Buffer.concat([Buffer.from([0, 0, 1, 46]), idr]))).toBe(true);
    expect(video[1]!.data.toString('hex')).toBe('00000003419a22');
    expect(reader.video).toMatchObject({ codecString: 'avc1.42c00d', width: 320, height: 240, fps: 30, timescale: 90000 });
    expect(parseAvcC(reader.video!.config).sps[0]!.equals(sps)).toBe(true);
  });

  it('splits ADTS PES into raw frames with the ASC, timing frames after the first from the sample rate', () => {
    const { packets, reader } = readAll(sample(), 100);
    const audio = packets.filter((p) => p.track.kind === 'audio');
    expect(audio.map((p) => p.data.toString('hex'))).toEqual(raw.map((b) => b.toString('hex')));
    expect(audio.map((p) => p.pts)).toEqual([9000, 9000 + Math.round((1024 * 90000) / 44100)]);
    expect(reader.audio).toMatchObject({ codecString: 'mp4a.40.2', sampleRate: 44100, channels: 2 });
    expect(reader.audio!.config.equals(asc)).toBe(true);
  });

  it('gives the same packets whatever the chunk size', () => {
    const reference = readAll(sample(), 1 << 20).packets.map((p) => [p.track.kind, p.dts, p.data.toString('hex')]);
    for (const size of [1, 187, 189, 1000]) expect(readAll(sample(), size).packets.map((p) => [p.track.kind, p.dts, p.data.toString('hex')])).toEqual(reference);
  });

  it('unwraps 33-bit timestamps', () => {
    const wrap = 2 ** 33;
    const audio = { n: 0 };
    const bytes = Buffer.concat([programTables(), pes(AUDIO_PID, adts.subarray(0, 10), wrap - 1000, wrap - 1000, audio), pes(AUDIO_PID, adts.subarray(0, 10), 1000, 1000, audio)]);
    expect(readAll(bytes, 188).packets.map((p) => p.pts)).toEqual([wrap - 1000, wrap + 1000]);
  });

  it('unwraps PTS and DTS each on its own when B-frames make the PTS wrap first', () => {
    const wrap = 2 ** 33;
    const video = { n: 0 };
    // DTS every 3003, PTS two frames ahead: the PTS passes 2^33 two frames before the DTS does.
    const dts = [wrap - 9009, wrap - 6006, wrap - 3003, wrap, wrap + 3003];
    const frames = dts.map((d, index) => pes(VIDEO_PID, index === 0 ? annexB(sps, pps, idr) : annexB(inter), d + 6006, d, video));
    const { packets } = readAll(Buffer.concat([programTables(), ...frames]), 188);
    expect(packets.map((p) => [p.dts, p.pts])).toEqual(dts.map((d) => [d, d + 6006]));
  });

  it('drops a PES that grows past the bound without a next start, counts it, and resyncs at the next start', () => {
    const reader = new TsReader({ stream: 'ts' });
    const video = { n: 0 };
    reader.push(Buffer.concat([programTables(), pes(VIDEO_PID, annexB(sps, pps, idr), 0, 0, video)]));
    // Continuation packets (no start flag) on the video PID: 9 MB of them.
    const continuation = Buffer.alloc(188, 0xff);
    // Their continuity counters follow on from the PES's own (a header, an SPS, a PPS and an IDR: 2 packets).
    let counter = 2;
    const next = (): Buffer => {
      const packet = Buffer.from(continuation);
      packet.set([0x47, (VIDEO_PID >> 8) & 0x1f, VIDEO_PID & 0xff, 0x10 | (counter++ & 0x0f)]);
      return packet;
    };
    let dropped = 0;
    const skipped: string[] = [];
    for (let i = 0; i < 50; i++) {
      const result = reader.push(Buffer.concat(Array.from({ length: 1000 }, next)));
      dropped += result.drops?.oversized_pes ?? 0;
      expect(result.drops?.ts_loss).toBeUndefined();
      skipped.push(...result.skipped);
      expect(result.error).toBeUndefined();
    }
    expect(dropped).toBe(1);
    expect(skipped).toEqual([`a PES packet over ${MAX_PES_BYTES} bytes was dropped`]);
    video.n = counter;
    const after = reader.push(Buffer.concat([pes(VIDEO_PID, annexB(sps, pps, idr), 3003, 3003, video), pes(VIDEO_PID, annexB(inter), 6006, 6006, video)]));
    expect(after.error).toBeUndefined();
    expect(after.packets.map((p) => [p.dts, p.keyframe])).toEqual([[3003, true]]);
  });

  it('reports unsupported stream types once and skips video before its parameter sets', () => {
    const reader = new TsReader({ stream: 'ts' });
    const result = reader.push(Buffer.concat([programTables([0x24]), pes(VIDEO_PID, annexB(inter), 0)]));
    const end = reader.end();
    expect(result.skipped).toEqual(['MPEG-TS stream type 0x24 is not supported (only 0x1b H.264 and 0x0f AAC)']);
    expect(end.skipped).toEqual(['video before its first SPS and PPS']);
    expect(end.packets).toHaveLength(0);
  });

  it('passes the TS packets of MP2 or AC-3 audio on for a transcoder, behind a PAT of its own, and reads the video as ever', () => {
    const mp2 = Buffer.alloc(400, 0x5a);
    const video = { n: 0 };
    const bytes = Buffer.concat([programTables([], 0x03), pes(VIDEO_PID, annexB(aud, sps, pps, idr), 9000, 9000, video), pes(AUDIO_PID, mp2, 9000), pes(VIDEO_PID, annexB(aud, inter), 12003, 12003, video)]);
    const reader = new TsReader({ stream: 'ts', passForeignAudio: true });
    const result = reader.push(bytes);
    const end = reader.end();
    expect(result.skipped).toEqual([]);
    expect(result.foreignAudio?.codec).toBe('MPEG audio (MP2)');
    const packets = result.foreignAudio!.packets;
    // A PAT and a PMT of its own, then the audio's three packets, moved to the forwarded PID.
    expect(pidsOf(packets)).toEqual([0, 0x1000, 0x100, 0x100, 0x100]);
    expect(packets.subarray(5, 5 + 16).toString('hex')).toBe('00b00d0001c100000001f0002ab104b2');
    expect(readPmt(psiSection(packets.subarray(188 + 4, 2 * 188))).streams).toEqual([{ type: 0x03, pid: 0x100, descriptors: Buffer.alloc(0) }]);
    // The audio as it came but for its PID (the last video PES is one packet).
    const source = bytes.subarray(bytes.length - 4 * 188, bytes.length - 188);
    for (let i = 0; i < 3; i++) {
      const [sent, came] = [packets.subarray((2 + i) * 188, (3 + i) * 188), source.subarray(i * 188, (i + 1) * 188)];
      expect(Buffer.concat([sent.subarray(0, 1), sent.subarray(3)]).equals(Buffer.concat([came.subarray(0, 1), came.subarray(3)]))).toBe(true);
    }
    expect(result.foreignAudio!.starts).toEqual([9000]);
    expect([...result.packets, ...end.packets].map((p) => [p.track.kind, p.dts])).toEqual([
      ['video', 9000],
      ['video', 12003],
    ]);
    // Without a transcoder, the same audio is skipped with its name.
    expect(new TsReader({ stream: 'ts' }).push(bytes).skipped).toEqual(['MPEG-TS stream type 0x03 (MPEG audio (MP2)) is not supported (only 0x1b H.264 and 0x0f AAC)']);
    // With AAC in the program too, the AAC is the audio and the MP2 is skipped.
    const both = new TsReader({ stream: 'ts', passForeignAudio: true }).push(programTables([0x03]));
    expect(both.foreignAudio).toBeUndefined();
    expect(both.skipped).toEqual(['MPEG-TS stream type 0x03 (MPEG audio (MP2)) is not supported (only 0x1b H.264 and 0x0f AAC, and one audio stream transcoded to AAC)']);
  });

  it('hands on nothing of the foreign audio before its first PES (so no transcoder starts for audio that never comes), then the PES behind the latest tables', () => {
    const reader = new TsReader({ stream: 'ts', passForeignAudio: true });
    const mp2 = (pts: number) => pes(AUDIO_PID, Buffer.alloc(400, 0x5a), pts);
    // The PMT names MP2: announced, nothing to hand on.
    const tables = reader.push(programTables([], 0x03));
    expect(reader.foreignAudio).toBe('MPEG audio (MP2)');
    expect(tables.foreignAudio).toBeUndefined();
    // The tail of a PES that began before the reader did, and the PMT again: still nothing.
    const tail = reader.push(Buffer.concat([mp2(6000).subarray(188), programTables([], 0x03)]));
    expect(tail.foreignAudio).toBeUndefined();
    // The first PES: one PAT and PMT before it (the latest, not one per repeat), then its three packets.
    const first = reader.push(mp2(9000));
    expect(pidsOf(first.foreignAudio!.packets)).toEqual([0, 0x1000, 0x100, 0x100, 0x100]);
    expect(first.foreignAudio!.starts).toEqual([9000]);
    // A PMT that swaps MP2 for AC-3 before any AC-3 came: the MP2 ends (its transcoder finishes); nothing of the AC-3 yet.
    const ac3 = reader.push(programVersion([[0x1b, VIDEO_PID], [0x81, AUDIO_PID]], 1, 1));
    expect(ac3.foreignAudioEnded?.codec).toBe('MPEG audio (MP2)');
    expect(ac3.foreignAudio).toBeUndefined();
    // Swapped again, to MP2, before any AC-3 came: the AC-3 never began, so nothing ends.
    const back = reader.push(programVersion([[0x1b, VIDEO_PID], [0x03, AUDIO_PID]], 2, 2));
    expect(back.foreignAudioEnded).toBeUndefined();
    expect(back.foreignAudio).toBeUndefined();
  });

  it('hands on only the audio it chose, whatever the PMT lists before it (SMPTE 302M, private data)', () => {
    // Private data without a descriptor naming it (SMPTE 302M, DTS...) first, MP2 second: a transcoder told
    // "the first audio" would take the first, get no packets and write no AAC.
    const reader = new TsReader({ stream: 'ts', passForeignAudio: true });
    const result = reader.push(Buffer.concat([programTables([0x03], 0x06), pes(0x200, Buffer.alloc(300, 0x5a), 9000)]));
    expect(result.foreignAudio?.codec).toBe('MPEG audio (MP2)');
    const packets = result.foreignAudio!.packets;
    expect(pidsOf(packets)).toEqual([0, 0x1000, 0x100, 0x100]);
    expect(readPmt(psiSection(packets.subarray(188 + 4, 2 * 188)))).toEqual({ program: 1, version: 0, streams: [{ type: 0x03, pid: 0x100, descriptors: Buffer.alloc(0) }] });
    expect(result.skipped).toEqual(['MPEG-TS stream type 0x06 is not supported (only 0x1b H.264 and 0x0f AAC, and one audio stream transcoded to AAC)']);
  });

  it('re-maps on a new PMT version: audio moving PID goes on, AAC arriving ends the foreign audio, a moved AAC or video track is read where it went', () => {
    const reader = new TsReader({ stream: 'ts', passForeignAudio: true });
    const video = { n: 0 };
    const frame = (pts: number) => pes(VIDEO_PID, annexB(aud, sps, pps, idr), pts, pts, video);
    const mp2 = (pid: number, pts: number) => pes(pid, Buffer.alloc(300, 0x5a), pts);
    const first = reader.push(Buffer.concat([programVersion([[0x1b, VIDEO_PID], [0x03, 0x101]], 0), frame(0), mp2(0x101, 0)]));
    expect(first.foreignAudio?.starts).toEqual([0]);
    // Version 1: the MP2 moved to 0x102. The same transcoder goes on, its packets still on the forwarded PID; no warning.
    const moved = reader.push(Buffer.concat([programVersion([[0x1b, VIDEO_PID], [0x03, 0x102]], 1, 1), mp2(0x101, 3000), mp2(0x102, 6000), frame(3000)]));
    expect(moved.skipped).toEqual([]);
    expect(moved.foreignAudioEnded).toBeUndefined();
    expect(moved.foreignAudio?.starts).toEqual([6000]);
    expect(pidsOf(moved.foreignAudio!.packets)).toEqual([0, 0x1000, 0x100, 0x100]);
    // Version 2: AAC joins. It is the audio now; the MP2 ends (its transcoder should finish) and is skipped from here.
    const aac = reader.push(Buffer.concat([programVersion([[0x1b, VIDEO_PID], [0x03, 0x102], [0x0f, 0x103]], 2, 2), mp2(0x102, 9000), pes(0x103, adts, 9000), frame(6000)]));
    expect(aac.foreignAudioEnded?.codec).toBe('MPEG audio (MP2)');
    expect(aac.foreignAudio).toBeUndefined();
    expect(aac.skipped).toEqual(['MPEG-TS stream type 0x03 (MPEG audio (MP2)) is not supported (only 0x1b H.264 and 0x0f AAC, and one audio stream transcoded to AAC)']);
    // Version 3: AAC and video both move; the old PIDs are no longer read.
    const video2 = { n: 0 };
    const last = reader.push(Buffer.concat([
      programVersion([[0x1b, 0x105], [0x0f, 0x104]], 3, 3),
      pes(0x103, adts, 12000),
      pes(0x104, adts, 15000),
      pes(VIDEO_PID, annexB(aud, inter), 9000, 9000, video),
      pes(0x105, annexB(aud, sps, pps, idr), 12000, 12000, video2),
      pes(0x105, annexB(aud, inter), 15000, 15000, video2),
    ]));
    const end = reader.end();
    expect([...aac.packets, ...last.packets, ...end.packets].map((p) => [p.track.kind, p.dts])).toEqual([
      // Each PES is complete at the next start on its PID, or, for the PIDs the new PMT dropped, at that PMT.
      ['video', 3000],
      ['video', 6000],
      ['audio', 9000],
      ['audio', 9000 + 2090],
      ['video', 12000],
      ['video', 15000],
      ['audio', 15000],
      ['audio', 15000 + 2090],
    ]);
  });

  it('names the audio codecs ffmpeg decodes from their stream type or descriptors, and nothing else', () => {
    const none = Buffer.alloc(0);
    expect(foreignAudioCodec(0x04, none)).toBe('MPEG audio (MP2)');
    expect(foreignAudioCodec(0x81, none)).toBe('AC-3');
    expect(foreignAudioCodec(0x87, none)).toBe('E-AC-3');
    expect(foreignAudioCodec(0x06, Buffer.from([0x6a, 0x01, 0x00]))).toBe('AC-3');
    expect(foreignAudioCodec(0x06, Buffer.from([0x7a, 0x01, 0x00]))).toBe('E-AC-3');
    expect(foreignAudioCodec(0x06, Buffer.from([0x0a, 0x04, 0x65, 0x6e, 0x67, 0x00, 0x05, 0x04, ...Buffer.from('Opus')]))).toBe('Opus');
    // Teletext and DVB subtitles are private data too.
    expect(foreignAudioCodec(0x06, Buffer.from([0x56, 0x05, 0x65, 0x6e, 0x67, 0x09, 0x00]))).toBeUndefined();
    expect(foreignAudioCodec(0x06, none)).toBeUndefined();
    expect(foreignAudioCodec(0x24, none)).toBeUndefined();
  });

  it('ends with an error on bytes that are not MPEG-TS, and resyncs past a few stray bytes', () => {
    const garbage = new TsReader({ stream: 'ts' }).push(Buffer.alloc(70_000, 0x55));
    expect(garbage.error?.message).toBe('not MPEG-TS: no sync byte 0x47 every 188 bytes');
    const stray = readAll(Buffer.concat([Buffer.from([1, 2, 3]), sample()]), 500);
    expect(stray.packets).toHaveLength(4);
    const brokenAudio = Buffer.concat([programTables(), pes(AUDIO_PID, Buffer.from('00112233445566', 'hex'), 0)]);
    const reader = new TsReader({ stream: 'ts' });
    // Bytes that are MPEG-TS but whose PES does not parse cost that PES only (counted), never the reader.
    expect(reader.push(brokenAudio).error).toBeUndefined();
    const end = reader.end();
    expect(end.error).toBeUndefined();
    expect(end.drops).toEqual({ ts_corrupt: 1 });
  });

  describe('on a lossy link (whole 188-byte packets lost, as SRT loses them)', () => {
    // Each frame's bytes differ, so a frame with a gap in it could not pass for an intact one.
    const fill = (length: number, seed: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (seed * 31 + i * 7) & 0xff));
    const FRAMES = 12;
    /** A clip of FRAMES video PES (3 TS packets each, an IDR with SPS/PPS every 4th) and as many audio PES (3 ADTS frames, 3 packets). */
    function clip(padded = -1): { bytes: Buffer; pesOf: { pid: number; pes: number }[] } {
      const video = { n: 0 };
      const audio = { n: 0 };
      const parts: Buffer[] = [programTables()];
      const pesOf: { pid: number; pes: number }[] = [{ pid: 0, pes: -1 }, { pid: 0x1000, pes: -1 }];
      for (let f = 0; f < FRAMES; f++) {
        const dts = 9000 + f * 3003;
        const body = f % 4 === 0 ? annexB(aud, sps, pps, Buffer.concat([Buffer.from([0x65]), fill(400, f)])) : annexB(aud, Buffer.concat([Buffer.from([0x41]), fill(420, f)]));
        const frames = [0, 1, 2].map((k) => fill(150, 100 + f * 3 + k));
        const audioBody = Buffer.concat(frames.flatMap((frame) => [buildAdtsHeader(asc, frame.length), frame]));
        for (const [pid, bytes] of [
          [VIDEO_PID, pes(VIDEO_PID, body, dts, dts, video, f === padded ? 40 : 184)],
          [AUDIO_PID, pes(AUDIO_PID, audioBody, dts, dts, audio)],
        ] as const) {
          parts.push(bytes);
          for (let i = 0; i < bytes.length / 188; i++) pesOf.push({ pid, pes: f });
        }
      }
      return { bytes: Buffer.concat(parts), pesOf };
    }
    const key = (p: MediaPacket): string => `${p.track.kind} ${p.dts} ${p.data.toString('hex')}`;
    /** Reads `bytes` in SRT-sized chunks; never expects an error. */
    function read(bytes: Buffer): { packets: string[]; drops: Record<string, number> } {
      const reader = new TsReader({ stream: 'ts' });
      const packets: string[] = [];
      const drops: Record<string, number> = {};
      const chunks = Array.from({ length: Math.ceil(bytes.length / 1316) }, (_, i) => bytes.subarray(i * 1316, (i + 1) * 1316));
      for (const result of [...chunks.map((chunk) => reader.push(chunk)), reader.end()]) {
        expect(result.error).toBeUndefined();
        packets.push(...result.packets.map(key));
        for (const [reason, count] of Object.entries(result.drops ?? {})) drops[reason] = (drops[reason] ?? 0) + count;
      }
      return { packets, drops };
    }

    it('drops only the PES that lost a packet, counts it, and reads on intact', () => {
      const { bytes, pesOf } = clip();
      const reference = read(bytes);
      expect(reference.drops).toEqual({});
      expect(reference.packets).toHaveLength(FRAMES * 4);
      // The PES each packet came from: video PES hold one access unit, audio ones three frames.
      const owner = new Map<string, string>();
      for (const kind of ['video', 'audio']) {
        const ofKind = reference.packets.filter((p) => p.startsWith(`${kind} `));
        ofKind.forEach((p, i) => owner.set(p, `${kind} ${kind === 'video' ? i : Math.floor(i / 3)}`));
      }
      const frameOf = (packet: string, kind: string, f: number): boolean => owner.get(packet) === `${kind} ${f}`;
      // Every TS packet of every PES, audio and video, but the first of each track: a loss there is a join
      // mid-PES, no counter to compare with yet. Nor video PES 1's start: the first keyframe would go with it,
      // and without it there is no avcC for the rest of the first GOP. A loss of the last packet of a track shows
      // at the end as a PES left unfinished: short of its length (audio), or without the stuffing that ends it (video).
      for (let lost = 2; lost < pesOf.length; lost++) {
        const { pid, pes: f } = pesOf[lost]!;
        if (f === 0 || (pid === VIDEO_PID && f === 1 && pesOf[lost - 1]!.pid !== VIDEO_PID)) continue;
        const kind = pid === VIDEO_PID ? 'video' : 'audio';
        const damaged = Buffer.concat([bytes.subarray(0, lost * 188), bytes.subarray((lost + 1) * 188)]);
        const { packets, drops } = read(damaged);
        const lastOfTrack = !pesOf.slice(lost + 1).some((other) => other.pid === pid);
        expect(drops, `TS packet ${lost}`).toEqual(lastOfTrack ? { ts_truncated: 1 } : { ts_loss: 1 });
        // Nothing corrupt gets through: every packet read is one of the intact clip's.
        for (const packet of packets) expect(reference.packets).toContain(packet);
        expect(packets.some((p) => frameOf(p, kind, f))).toBe(false);
        // The rest is all there: the other track whole, this one but for the damaged PES. A lost video start
        // costs that PES only: the one before it ended in its own stuffed packet, so it is whole.
        const missing = reference.packets.filter((p) => !packets.includes(p));
        expect(missing, `TS packet ${lost}`).toEqual(reference.packets.filter((p) => frameOf(p, kind, f)));
      }
    });

    it('never passes on cut short a video PES whose first packet a muxer stuffed, when the packet after it is lost', () => {
      // Video PES 5's first packet carries 40 bytes and stuffing, and three more follow: its stuffing is not its end.
      const { bytes, pesOf } = clip(5);
      const reference = read(bytes);
      expect(reference.drops).toEqual({});
      expect(reference.packets).toHaveLength(FRAMES * 4);
      const video5 = pesOf.flatMap((p, index) => (p.pid === VIDEO_PID && p.pes === 5 ? [index] : []));
      expect(video5).toHaveLength(4);
      const fifth = reference.packets.filter((p) => p.startsWith('video '))[5]!;
      const damaged = Buffer.concat([bytes.subarray(0, video5[1]! * 188), bytes.subarray((video5[1]! + 1) * 188)]);
      const { packets, drops } = read(damaged);
      expect(drops).toEqual({ ts_loss: 1 });
      expect(reference.packets.filter((p) => !packets.includes(p))).toEqual([fifth]);
      for (const packet of packets) expect(reference.packets).toContain(packet);
      // Its first packet and the next both flagged in error: that one PES lost, counted once.
      const flagged = Buffer.from(bytes);
      for (const index of video5.slice(0, 2)) flagged[index * 188 + 1]! |= 0x80;
      const both = read(flagged);
      expect(both.drops).toEqual({ ts_loss: 1 });
      expect(reference.packets.filter((p) => !both.packets.includes(p))).toEqual([fifth]);
    });

    it('drops an audio PES 16 packets short (a gap its counter wraps round) though its header\'s length spans two packets', () => {
      // ADTS frames enough for 20 packets; the first packet carries 4 bytes of the PES, short of its length field.
      const frames = Array.from({ length: 24 }, (_, k) => fill(150, k));
      const body = Buffer.concat(frames.flatMap((frame) => [buildAdtsHeader(asc, frame.length), frame]));
      const counter = { n: 0 };
      const whole = pes(AUDIO_PID, body, 9000, 9000, counter, 4);
      const next = pes(AUDIO_PID, adts, 9000 + 24 * 2090, 9000 + 24 * 2090, counter);
      expect(read(Buffer.concat([programTables(), whole, next])).drops).toEqual({});
      // 16 packets gone from its middle: the counters still run on, only the declared length tells.
      const cut = Buffer.concat([programTables(), whole.subarray(0, 2 * 188), whole.subarray(18 * 188), next]);
      const { packets, drops } = read(cut);
      expect(drops).toEqual({ ts_loss: 1 });
      expect(packets.map((p) => p.split(' ')[1])).toEqual([String(9000 + 24 * 2090), String(9000 + 25 * 2090)]);
    });

    it('counts two PES lost when a gap takes the end of one video PES and the start of the next, and whole PES between two others', () => {
      const { bytes, pesOf } = clip();
      const reference = read(bytes).packets;
      const videoPackets = (f: number) => pesOf.flatMap((p, index) => (p.pid === VIDEO_PID && p.pes === f ? [index] : []));
      const cut = (indexes: number[]) => Buffer.concat(Array.from({ length: pesOf.length }, (_, index) => (indexes.includes(index) ? Buffer.alloc(0) : bytes.subarray(index * 188, (index + 1) * 188))));
      // The last packet of video PES 5 and the first of PES 6: the packet after the gap continues PES 6.
      const straddle = read(cut([videoPackets(5).at(-1)!, videoPackets(6)[0]!]));
      expect(straddle.drops).toEqual({ ts_loss: 2 });
      expect(reference.filter((p) => !straddle.packets.includes(p))).toEqual(reference.filter((p) => frameOf(p, 5) || frameOf(p, 6)));
      // Video PES 7 and 8 whole: only their DTS gap says two frames went.
      const whole = read(cut([...videoPackets(7), ...videoPackets(8)]));
      expect(whole.drops).toEqual({ ts_loss: 2 });
      expect(reference.filter((p) => !whole.packets.includes(p))).toEqual(reference.filter((p) => frameOf(p, 7) || frameOf(p, 8)));
      function frameOf(packet: string, f: number): boolean {
        return packet.startsWith('video ') && reference.filter((p) => p.startsWith('video ')).indexOf(packet) === f;
      }
    });

    it('drops an unbounded video PES the input ends in before its stuffed last packet', () => {
      const { bytes, pesOf } = clip();
      const reference = read(bytes).packets;
      const lastVideo = pesOf.findLastIndex((p) => p.pid === VIDEO_PID);
      // Cut just before the last video packet: everything else of the PES arrived, but not its end.
      const { packets, drops } = read(bytes.subarray(0, lastVideo * 188));
      expect(drops).toEqual({ ts_truncated: 1 });
      expect(packets).toEqual(reference.filter((p) => p !== reference.filter((q) => q.startsWith('video ')).at(-1) && !reference.slice(-3).includes(p)));
    });

    it('drops the unfinished last PES quietly when the input ends mid-packet or mid-PES', () => {
      const { bytes } = clip();
      const reference = read(bytes).packets;
      // Cut inside the last audio PES (its last 3 TS packets), at and between packet boundaries.
      for (const cut of [100, 188, 188 + 100, 2 * 188]) {
        const { packets, drops } = read(bytes.subarray(0, bytes.length - cut));
        expect(drops, `cut ${cut}`).toEqual({ ts_truncated: 1 });
        expect(packets).toEqual(reference.slice(0, -3));
      }
    });

    it('treats a packet flagged in error as lost, and follows a counter the muxer resets on purpose', () => {
      const { bytes, pesOf } = clip();
      const reference = read(bytes).packets;
      const flagged = Buffer.from(bytes);
      const audioPacket = pesOf.findIndex((p) => p.pid === AUDIO_PID && p.pes === 5) + 1;
      flagged[audioPacket * 188 + 1]! |= 0x80;
      const result = read(flagged);
      expect(result.drops).toEqual({ ts_loss: 1 });
      expect(reference.filter((p) => !result.packets.includes(p))).toHaveLength(3);
      // Two audio PES each counting from 0: a jump, unless the second says its counter restarts (discontinuity indicator).
      const counter = { n: 0 };
      const first = Buffer.concat([pes(AUDIO_PID, adts.subarray(0, 10), 0, 0, counter), pes(AUDIO_PID, adts.subarray(0, 10), 900, 900, counter)]);
      const second = pes(AUDIO_PID, adts.subarray(0, 10), 1800);
      expect(read(Buffer.concat([programTables(), first, second])).drops).toEqual({ ts_loss: 1 });
      const restarted = Buffer.from(second);
      restarted[5]! |= 0x80;
      const intact = read(Buffer.concat([programTables(), first, restarted]));
      expect(intact.drops).toEqual({});
      expect(intact.packets).toHaveLength(3);
    });
  });
});
