/**
 * TsReader on what ffmpeg really writes for SRT (H.264 and AAC in MPEG-TS),
 * with one 1316-byte SRT packet (seven TS packets) lost at every position:
 * the reader never ends, and what it reads of the damaged stream is exactly
 * what it reads of the intact one less the PES the loss touched, each of
 * them counted once. The expectation comes from the intact clip itself:
 * which PES each TS packet belongs to, and which frames each PES holds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TsReader } from '../../media/mpegts.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';

const SRT_PACKET = 1316;
const TS = 188;
/** ffmpeg's mpegts muxer puts the first stream (video) on PID 0x100, the second (audio) on 0x101. */
const PIDS: Record<number, 'video' | 'audio'> = { 0x100: 'video', 0x101: 'audio' };

interface Read {
  frames: { kind: string; dts: number; key: string }[];
  drops: Record<string, number>;
  failed: boolean;
}

function read(bytes: Buffer): Read {
  const reader = new TsReader({ stream: 'ts' });
  const read: Read = { frames: [], drops: {}, failed: false };
  const results = [];
  for (let i = 0; i < bytes.length; i += SRT_PACKET) results.push(reader.push(bytes.subarray(i, i + SRT_PACKET)));
  results.push(reader.end());
  for (const result of results) {
    if (result.error) read.failed = true;
    read.frames.push(...result.packets.map((p) => ({ kind: p.track.kind, dts: p.dts, key: `${p.track.kind} ${p.dts} ${p.data.toString('hex')}` })));
    for (const [reason, count] of Object.entries(result.drops ?? {})) read.drops[reason] = (read.drops[reason] ?? 0) + count;
  }
  return read;
}

/** One PES of the intact clip: its PID, its DTS (the PTS when it has none) and the indexes of its TS packets. */
interface Pes {
  pid: number;
  dts: number;
  packets: number[];
}

/** The video and audio PES of a clip, from its TS headers (ffmpeg's packets carry no errors and no gaps). */
function pesOf(bytes: Buffer): Pes[] {
  const all: Pes[] = [];
  const open = new Map<number, Pes>();
  for (let index = 0; index * TS < bytes.length; index++) {
    const packet = bytes.subarray(index * TS, (index + 1) * TS);
    const pid = ((packet[1]! & 0x1f) << 8) | packet[2]!;
    if (!PIDS[pid]) continue;
    if (packet[1]! & 0x40) {
      const payload = packet.subarray((packet[3]! & 0x20 ? 5 + packet[4]! : 4));
      const at = payload[7]! & 0x40 ? 14 : 9;
      const dts = ((payload[at]! >> 1) & 7) * 2 ** 30 + (payload.readUInt16BE(at + 1) >> 1) * 2 ** 15 + (payload.readUInt16BE(at + 3) >> 1);
      const pes = { pid, dts, packets: [] };
      all.push(pes);
      open.set(pid, pes);
    }
    open.get(pid)?.packets.push(index);
  }
  return all;
}

/** The PES of `kind` a frame read from the clip came from: the last one starting at or before it. */
function pesOfFrame(all: Pes[], frame: { kind: string; dts: number }): Pes {
  let found: Pes | undefined;
  for (const pes of all) if (PIDS[pes.pid] === frame.kind && pes.dts <= frame.dts) found = pes;
  return found!;
}

function without(bytes: Buffer, lost: number): Buffer {
  return Buffer.concat([bytes.subarray(0, lost * SRT_PACKET), bytes.subarray((lost + 1) * SRT_PACKET)]);
}

const sum = (drops: Record<string, number>) => Object.values(drops).reduce((a, b) => a + b, 0);

describe('TsReader on an ffmpeg clip losing one SRT packet', () => {
  let dir: string;
  let bytes: Buffer;
  let intact: Read;
  let all: Pes[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ts-loss-'));
    const clip = join(dir, 'clip.ts');
    await runToEnd(
      FfmpegProcess.spawn({
        inputs: [
          { from: { url: 'testsrc2=size=320x240:rate=30:duration=3' }, options: ['-f', 'lavfi'] },
          { from: { url: 'sine=frequency=440:duration=3' }, options: ['-f', 'lavfi'] },
        ],
        outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac', '-f', 'mpegts', '-y'] }],
      }),
    );
    bytes = readFileSync(clip);
    intact = read(bytes);
    all = pesOf(bytes);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * What losing SRT packet `lost` must cost: the frames of every PES with a TS packet in it, and one drop for
   * each such PES, except what nothing on the wire can show: a PES lost whole with nothing after it on its PID,
   * and the last PES of a PID whose start went in the same gap as the end of the one before it (its tail reads as
   * more of that one; only the timestamp of a PES read after it would tell them apart, and none comes).
   */
  function expected(lost: number): { frames: string[]; drops: number } {
    const gone = new Set<number>();
    for (let index = lost * (SRT_PACKET / TS); index < (lost + 1) * (SRT_PACKET / TS); index++) gone.add(index);
    const touched = all.filter((pes) => pes.packets.some((index) => gone.has(index)));
    const unseen = touched.filter((pes) => {
      const last = pes.packets.at(-1)!;
      const after = all.filter((other) => other.pid === pes.pid && other.packets[0]! > last);
      if (pes.packets.every((index) => gone.has(index))) return !after.some((other) => other.packets.some((index) => !gone.has(index)));
      const before = all.filter((other) => other.pid === pes.pid && other.packets[0]! < pes.packets[0]!).at(-1);
      return gone.has(pes.packets[0]!) && before !== undefined && gone.has(before.packets.at(-1)!) && after.length === 0;
    });
    const frames = intact.frames.filter((frame) => !touched.includes(pesOfFrame(all, frame))).map((frame) => frame.key);
    return { frames: frames.sort(), drops: touched.length - unseen.length };
  }

  function check(lost: number): void {
    const damaged = read(without(bytes, lost));
    const want = expected(lost);
    expect(damaged.failed, `SRT packet ${lost}`).toBe(false);
    expect(damaged.frames.map((frame) => frame.key).sort(), `SRT packet ${lost}: the frames of the PES not touched, all of them`).toEqual(want.frames);
    expect(sum(damaged.drops), `SRT packet ${lost}: one drop per PES lost (${JSON.stringify(damaged.drops)})`).toBe(want.drops);
  }

  it('reads the intact clip whole, each frame from a PES of its own track', () => {
    expect(intact).toMatchObject({ drops: {}, failed: false });
    expect(intact.frames.filter((frame) => frame.kind === 'video')).toHaveLength(90);
    for (const frame of intact.frames) expect(pesOfFrame(all, frame)).toBeDefined();
  });

  it('keeps the PES before a lost one whole and counts exactly the PES lost, wherever the loss falls', () => {
    // Past the first second, so the loss cannot take the first keyframe (and the avcC with it), to the end.
    const from = Math.ceil(bytes.length / 3 / SRT_PACKET);
    for (let lost = from; lost < Math.ceil(bytes.length / SRT_PACKET) - 2; lost++) check(lost);
  });

  it('sees a loss in the last, unbounded video PES at the end of the stream, which no later packet shows', () => {
    const last = all.filter((pes) => PIDS[pes.pid] === 'video').at(-1)!;
    const lostAtEnd = [...new Set(last.packets.map((index) => Math.floor((index * TS) / SRT_PACKET)))];
    // A frame of 320x240 spans more than one SRT packet: its tail can be lost while its start arrives.
    expect(lostAtEnd.length).toBeGreaterThan(1);
    for (const lost of lostAtEnd) check(lost);
  });
});
