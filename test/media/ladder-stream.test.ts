import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encoderCandidates, type EncoderChoice } from '../../native/ffmpeg/encoders.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import { FlvReader } from '../../media/flv.ts';
import { LadderStream, type LadderStreamOptions } from '../../nodes/media/ladder-stream.ts';
import { syntheticStream } from './synthetic-media.ts';

type Line = { fields: object; message: string };

/** A ladder of one 240p rung whose log lines and output land in `lines` and `emitted`. */
function ladderWith(options: Partial<LadderStreamOptions>, lines: Line[], emitted: MediaItem[] = []): LadderStream {
  const keep = (fields: object, message: string) => void lines.push({ fields, message });
  return new LadderStream({
    stream: 'cam-1',
    label: 'node `encode`',
    log: { debug: keep, info: keep, warn: keep, error: keep },
    rungs: [{ name: '240p', width: 320, height: 240, bitrate: 400_000 } as never],
    preset: 'ultrafast',
    segmentSeconds: 2,
    passthrough: false,
    encoder: new Promise<EncoderChoice>(() => {}),
    emit: (items) => void emitted.push(...items),
    dropped: () => {},
    now: () => 0,
    ...options,
  });
}

function packet(stream: string, kind: 'video' | 'audio'): MediaPacket {
  const track = kind === 'video'
    ? { kind, codec: 'h264' as const, codecString: 'avc1.42c00d', timescale: 1000, config: Buffer.alloc(0), height: 240 }
    : { kind, codec: 'opus' as const, codecString: 'opus', timescale: 1000, config: Buffer.alloc(0) };
  return { stream, rendition: 'source', track, pts: 0, dts: 0, keyframe: true, data: Buffer.alloc(4) };
}

describe('LadderStream', () => {
  it('logs a stream named by its key with only the first four characters', () => {
    const lines: Line[] = [];
    const ladder = ladderWith({ stream: 'sup3r-secret-key' }, lines);
    ladder.push(packet('sup3r-secret-key', 'audio'));
    expect(lines.map((line) => line.message)).toEqual(['node `encode`: stream sup3…: opus audio is dropped (only AAC is carried)']);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('logs a start that throws, and still ends the stream (no rejected promise left behind)', async () => {
    const lines: Line[] = [];
    const emitted: MediaItem[] = [];
    // An encoder choice without a spec: building the ffmpeg command throws inside the start.
    const ladder = ladderWith({ encoder: Promise.resolve({ spec: undefined } as unknown as EncoderChoice) }, lines, emitted);
    ladder.push(packet('cam-1', 'video'));
    await expect(ladder.end()).resolves.toBeUndefined();
    expect(emitted).toEqual([{ stream: 'cam-1', end: true }]);
    expect(lines.map((line) => line.message)).toEqual([expect.stringMatching(/^node `encode`: stream cam-…: ffmpeg could not start: .+; trying again at a later keyframe$/)]);
    expect(ladder.restarts).toBe(1);
  });

  it('logs output that is not FLV once, and restarts ffmpeg, however many chunks follow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ladder-garbage-'));
    // A stand-in for an ffmpeg whose output is broken: it writes text on every pipe it has, many times.
    const binary = join(dir, 'broken-ffmpeg');
    writeFileSync(binary, '#!/bin/sh\nfor i in $(seq 40); do for fd in 3 4 5; do printf "not flv at all" 2>/dev/null >&$fd; done; sleep 0.01; done\nsleep 5\n', { mode: 0o755 });
    const lines: Line[] = [];
    const ladder = ladderWith({ binary, encoder: Promise.resolve({ spec: encoderCandidates.find((spec) => spec.name === 'libx264')! }) }, lines);
    try {
      ladder.push(packet('cam-1', 'video'));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(lines.filter((line) => line.message.includes('output is not FLV:')).map((line) => line.message)).toEqual(['node `encode`: stream cam-…: rung `240p` output is not FLV: not FLV: the bytes do not start with `FLV`']);
      expect(lines.filter((line) => line.message.includes('ffmpeg restarted'))).toHaveLength(1);
      expect(ladder.pid).toBeUndefined();
    } finally {
      await ladder.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['without B-frames', false],
    ['with a B-frame shown before the predecessor\'s last frame', true],
  ])('hands its last GOP to a successor, which decodes it again, forces a keyframe on the next frame shown and drops what its predecessor emitted (%s)', async (_, late) => {
    const dir = mkdtempSync(join(tmpdir(), 'ladder-splice-'));
    // A stand-in for ffmpeg that passes its FLV input through as the rung (fd 4), keeping a copy of its input and its arguments.
    const binary = join(dir, 'echo-ffmpeg');
    writeFileSync(binary, `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args-$$"\nexec tee "${dir}/in-$$.flv" >&4\n`, { mode: 0o755 });
    const encoder = Promise.resolve({ spec: encoderCandidates.find((spec) => spec.name === 'libx264')! });
    // 25 fps, a keyframe every second: frames 0-74 at 0, 40, ... 2960 ms, keyframes at 0, 1000, 2000.
    const packets = syntheticStream({ stream: 'cam-1', duration: 3000, frame: 40, gop: 25 });
    const until = async (what: string, done: () => boolean) => {
      const deadline = Date.now() + 20_000; // a bound, not a pace: a stand-in ffmpeg spawned on a busy machine can take seconds
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const lines: Line[] = [];
    const first: MediaItem[] = [];
    const second: MediaItem[] = [];
    const old = ladderWith({ binary, encoder }, lines, first);
    let successor: LadderStream | undefined;
    try {
      for (const packet of packets.slice(0, 35)) old.push(packet);
      await until('the first run to pass 35 frames through', () => first.length === 35);
      const handover = old.handover();
      expect(handover.rungs).toEqual(['240p']);
      expect(handover.gop.map((p) => p.pts)).toEqual([1000, 1040, 1080, 1120, 1160, 1200, 1240, 1280, 1320, 1360]);
      expect(handover.offsetMs).toBe(0);
      await old.end(true);
      // Handed over: no end goes downstream.
      expect(first.some((item) => 'end' in item)).toBe(false);

      successor = ladderWith({ binary, encoder, continues: handover }, lines, second);
      // A B-frame source: after the predecessor's last packet (shown at 1360 ms) comes one shown before it.
      const next = late ? [{ ...packets[34], pts: 1340, dts: 1361, data: Buffer.alloc(100, 0xbb) }, ...packets.slice(35)] : packets.slice(35);
      for (const packet of next) successor.push(packet);
      await until('the successor to reach the last frame', () => second.some((item) => 'pts' in item && item.pts === 2960));
      // Its ffmpeg decoded the handed-over GOP again, then every new frame.
      const expected = [...packets.slice(25, 35), ...next].map((p) => p.pts);
      const fedOf = () =>
        readdirSync(dir)
          .filter((name) => name.startsWith('in-'))
          .map((name) => new FlvReader({ stream: 'cam-1' }).push(readFileSync(join(dir, name))).packets.map((p) => p.pts))
          .find((pts) => pts[0] === 1000);
      // tee writes a chunk to its output (the rung) before its copy: the copy may lag what came out.
      await until('the stand-in to keep its whole input', () => (fedOf()?.length ?? 0) >= expected.length);
      expect(fedOf()).toEqual(expected);
      // The splice frame: the first shown after 1360 ms, counted in presentation order (the late B-frame is one more before it).
      const args = readdirSync(dir).filter((name) => name.startsWith('args-')).map((name) => readFileSync(join(dir, name), 'utf8'));
      expect(args.some((text) => text.includes(`+eq(n,${late ? 11 : 10}))`))).toBe(true);
      // This stand-in keeps the input's keyframes, so the splice lands on the next one (2000 ms); nothing at or before 1360 ms comes out twice.
      const emitted = second.filter((item): item is MediaPacket => 'pts' in item);
      expect(emitted[0]).toMatchObject({ pts: 2000, keyframe: true, discontinuity: true, rendition: '240p', renditions: ['240p'] });
      expect(emitted.map((p) => p.pts)).toEqual(packets.slice(50).map((p) => p.pts));
      // The rung carries the source's frame rate.
      expect(emitted[0].track.fps).toBe(25);
    } finally {
      await old.stop();
      await successor?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('at a shutdown, cuts the input of an ffmpeg working through a backlog: it stops within its grace, what it never encoded is counted and logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ladder-backlog-'));
    // A stand-in for an encoder slower than real time: it passes its FLV input through as the rung, 4 KiB every 100 ms.
    const binary = join(dir, 'slow-ffmpeg');
    writeFileSync(binary, '#!/bin/sh\nwhile head -c 4096 >&4; do sleep 0.1; done\n', { mode: 0o755 });
    const encoder = Promise.resolve({ spec: encoderCandidates.find((spec) => spec.name === 'libx264')! });
    const lines: Line[] = [];
    const emitted: MediaItem[] = [];
    const drops: [number, string][] = [];
    const ladder = ladderWith({ binary, encoder, dropped: (count, reason) => void drops.push([count, reason]) }, lines, emitted);
    // 2 MB of video: about 50 s of work for the stand-in.
    const packets = syntheticStream({ stream: 'cam-1', duration: 20_000, frame: 40, gop: 25, size: 4000 });
    try {
      for (const packet of packets) ladder.push(packet);
      const deadline = Date.now() + 20_000; // a bound, not a pace: a stand-in spawned on a busy machine can take seconds
      while (ladder.pid === undefined || !emitted.some((item) => 'pts' in item)) {
        if (Date.now() > deadline) throw new Error('timed out waiting for the stand-in to start');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const pid = ladder.pid;
      const started = Date.now();
      const ended = ladder.end();
      ladder.hurry(300);
      await ended;
      const took = Date.now() - started;
      // The grace (300 ms), then SIGTERM (the stand-in's shell exits at once); the backlog alone would take tens of seconds.
      expect(took).toBeLessThan(3_000);
      expect(() => process.kill(pid, 0)).toThrow();
      const out = emitted.filter((item): item is MediaPacket => 'pts' in item);
      expect(out.length).toBeGreaterThan(0);
      expect(out.length).toBeLessThan(packets.length);
      expect(emitted.at(-1)).toEqual({ stream: 'cam-1', end: true });
      // Every frame is either out or counted.
      expect(drops).toEqual([[packets.length - out.length, 'shutdown']]);
      expect(lines.map((line) => line.message)).toContain(`node \`encode\`: stream cam-…: stopping: ${packets.length - out.length} frames still waiting for ffmpeg were not encoded (dropped)`);
    } finally {
      await ladder.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts a successor on the keyframe of a handed-over GOP as long as the longest kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ladder-long-gop-'));
    // A stand-in for ffmpeg that keeps a copy of its FLV input.
    const binary = join(dir, 'echo-ffmpeg');
    writeFileSync(binary, `#!/bin/sh\nexec tee "${dir}/in-$$.flv" >&4\n`, { mode: 0o755 });
    const encoder = Promise.resolve({ spec: encoderCandidates.find((spec) => spec.name === 'libx264')! });
    // One GOP of 1000 frames: the predecessor kept its first 600 (the most it keeps) and hands them over.
    const packets = syntheticStream({ stream: 'cam-1', duration: 6_200, frame: 10, gop: 1000 });
    const fed = () => readdirSync(dir).filter((name) => name.startsWith('in-')).map((name) => new FlvReader({ stream: 'cam-1' }).push(readFileSync(join(dir, name))).packets)[0] ?? [];
    const successor = ladderWith({ binary, encoder, continues: { rungs: ['240p'], gop: packets.slice(0, 600), offsetMs: 0 } }, []);
    try {
      for (const packet of packets.slice(600)) successor.push(packet);
      const deadline = Date.now() + 20_000; // a bound, not a pace: a stand-in ffmpeg spawned on a busy machine can take seconds
      while (fed().length < packets.length) {
        if (Date.now() > deadline) throw new Error(`timed out: ffmpeg was fed ${fed().length} of ${packets.length} frames`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const input = fed();
      expect(input[0]).toMatchObject({ pts: 0, keyframe: true });
      expect(input.map((p) => p.pts)).toEqual(packets.map((p) => p.pts));
    } finally {
      await successor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
