import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encoderCandidates, type EncoderChoice } from '../../native/ffmpeg/encoders.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import { LadderStream, type LadderStreamOptions } from '../../nodes/media/ladder-stream.ts';

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
});
