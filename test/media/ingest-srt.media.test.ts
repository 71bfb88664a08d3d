import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Subscription } from 'rxjs';
import { NEVER } from 'rxjs';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import ingestSrt from '../../nodes/media/ingest-srt.ts';
import { fakeContext } from '../helpers/fake-context.ts';
import { settleChildren } from './children.ts';
import { collected, startYaml, take } from '../helpers/pipeline.ts';

const passphrase = 'correct-horse-battery';
let subscription: Subscription | undefined;

afterEach(async () => {
  subscription?.unsubscribe();
  subscription = undefined;
  expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
});

/** Starts an ingest.srt node; `items` fills as it emits, `at` records when each arrived. */
function startNode(port: number, extra: Record<string, unknown> = {}) {
  const ctx = fakeContext(ingestSrt, { listen: `127.0.0.1:${port}`, passphrase, streamid: 'cam1', ...extra });
  const items: MediaItem[] = [];
  const at: number[] = [];
  subscription = ingestSrt.create(ctx)(NEVER).subscribe((batch) => {
    for (const item of batch.items as MediaItem[]) {
      items.push(item);
      at.push(Date.now());
    }
  });
  return { ctx, items, at };
}

/** ffmpeg publishing a test pattern and a tone over SRT (MPEG-TS, GOP of 30); resolves when it exits. */
async function publish(port: number, seconds: number, key = passphrase, audioCodec = 'aac'): Promise<{ exitedAt: number; code: number | null }> {
  const process = FfmpegProcess.spawn({
    inputs: [
      { from: { url: `testsrc2=size=320x240:rate=30:duration=${seconds}` }, options: ['-re', '-f', 'lavfi'] },
      { from: { url: `sine=frequency=440:duration=${seconds}` }, options: ['-re', '-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: `srt://127.0.0.1:${port}?pkt_size=1316&passphrase=${key}&connect_timeout=2000` }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', audioCodec, '-f', 'mpegts'] }],
  });
  const exit = await process.exited;
  return { exitedAt: Date.now(), code: exit.exitCode };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await wait(25);
}

const packets = (items: MediaItem[]) => items.filter((item): item is MediaPacket => !isMediaEnd(item));

describe('ingest.srt', () => {
  it('receives a publish as H.264 and AAC packets of the stream, and its end within a second', async () => {
    const node = startNode(19542);
    await wait(500);
    const { exitedAt, code } = await publish(19542, 2);
    expect(code).toBe(0);
    await until(() => node.items.some(isMediaEnd), 3000);
    const endIndex = node.items.findIndex(isMediaEnd);
    expect(endIndex).toBeGreaterThan(0);
    expect(node.items[endIndex]).toEqual({ stream: 'cam1', end: true });
    expect(node.at[endIndex] - exitedAt).toBeLessThan(1000);
    const got = packets(node.items);
    const video = got.filter((p) => p.track.kind === 'video');
    const audio = got.filter((p) => p.track.kind === 'audio');
    expect(video[0]).toMatchObject({ stream: 'cam1', rendition: 'source', keyframe: true, track: { codec: 'h264', width: 320, height: 240 } });
    expect(audio[0].track).toMatchObject({ codec: 'aac', sampleRate: 44100 });
    // Two seconds at 30 fps; a few frames may go before the listener has probed the stream.
    expect(video.length).toBeGreaterThan(45);
    expect(video.length).toBeLessThanOrEqual(60);
    expect(video.filter((p) => p.keyframe).length).toBeGreaterThanOrEqual(1);
    expect(node.ctx.logs.some((l) => l.message === 'node `ingest-srt` (test): stream `cam1`: publisher connected')).toBe(true);
    // Once a second while connected: about 30 fps, a keyframe a second, a bitrate.
    const stats = node.ctx.portItems('stats') as { stream: string; fps: number; bitrate: number; keyframe_interval: number; publishes: number }[];
    expect(stats.length).toBeGreaterThanOrEqual(1);
    expect(stats[0]).toMatchObject({ stream: 'cam1', publishes: 1, dropped: 0 });
    // The schema ingest.rtmp shares.
    expect(Object.keys(stats[0]!).sort()).toEqual(['bitrate', 'dropped', 'fps', 'keyframe_interval', 'publishes', 'stream']);
    expect(stats.some((s) => s.fps >= 20 && s.fps <= 40 && s.bitrate > 50_000)).toBe(true);
  });

  it('survives random bytes on its port and a wrong passphrase, then takes the next publisher as the same stream with a discontinuity', async () => {
    const node = startNode(19543);
    await wait(500);
    const socket = createSocket('udp4');
    for (let i = 0; i < 50; i++) socket.send(randomBytes(200 + i * 20), 19543, '127.0.0.1');
    await wait(300);
    socket.close();
    const refused = await publish(19543, 1, 'wrong-passphrase-here');
    expect(refused.code).not.toBe(0);
    expect(packets(node.items)).toEqual([]);
    await wait(300);
    await publish(19543, 1);
    await until(() => node.items.filter(isMediaEnd).length === 1, 3000);
    await publish(19543, 1);
    await until(() => node.items.filter(isMediaEnd).length === 2, 3000);
    const ends = node.items.map((item, i) => (isMediaEnd(item) ? i : -1)).filter((i) => i >= 0);
    expect(ends).toHaveLength(2);
    const first = packets(node.items.slice(0, ends[0]));
    const second = packets(node.items.slice(ends[0] + 1, ends[1]));
    expect(first.length).toBeGreaterThan(10);
    expect(first.some((p) => p.discontinuity)).toBe(false);
    expect(second[0]).toMatchObject({ stream: 'cam1', discontinuity: true });
    expect(second.filter((p) => p.discontinuity)).toHaveLength(1);
    // The passphrase is in no log line, whatever ffmpeg wrote.
    expect(JSON.stringify(node.ctx.logs)).not.toContain(passphrase);
  });

  it('warns at start when no passphrase is set', async () => {
    const node = startNode(19548, { passphrase: undefined });
    await until(() => node.ctx.logs.some((l) => l.level === 'warn'), 3000);
    expect(node.ctx.logs.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([expect.stringContaining('no `passphrase`: anyone who can reach 127.0.0.1:19548 may publish')]);
  });

  it('retries with backoff and a located message when the port is taken, and stops cleanly', async () => {
    const first = startNode(19544);
    const firstSubscription = subscription!;
    await wait(500);
    const second = startNode(19544);
    await until(() => second.ctx.logs.some((l) => l.level === 'warn'), 5000);
    const warning = second.ctx.logs.find((l) => l.level === 'warn')!;
    expect(warning.message).toMatch(/^node `ingest-srt` \(test\): SRT listener on 127\.0\.0\.1:19544: ffmpeg exited with code 1: /);
    expect(warning.message).not.toContain(passphrase);
    firstSubscription.unsubscribe();
    expect(first.items).toEqual([]);
  });

  it('starts a publisher that joins mid-GOP at its first keyframe, its frames before it dropped', async () => {
    // A clip with a keyframe every 30 frames, cut at a TS packet boundary about half a second in, sent with
    // its leading non-key frames (`-copyinkf`), as a publisher whose SRT connection came up mid-GOP. Its
    // SPS and PPS go with every frame (`dump_extra`, as some encoders send them), so the decoder
    // configuration is known before the first keyframe: only the node's own wait for it drops those frames.
    const dir = mkdtempSync(join(tmpdir(), 'srt-midgop-'));
    try {
      const clip = join(dir, 'clip.ts');
      await runToEnd(
        FfmpegProcess.spawn({
          inputs: [{ from: { url: 'testsrc2=size=320x240:rate=30:duration=3' }, options: ['-f', 'lavfi'] }],
          outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-sc_threshold', '0', '-an', '-f', 'mpegts', '-y'] }],
        }),
      );
      const bytes = readFileSync(clip);
      const cut = join(dir, 'cut.ts');
      writeFileSync(cut, bytes.subarray(Math.floor(bytes.length / 6 / 188) * 188));
      const node = startNode(19545);
      await wait(500);
      const sender = FfmpegProcess.spawn({
        inputs: [{ from: { url: cut }, options: ['-re'] }],
        outputs: [{ to: { url: `srt://127.0.0.1:19545?pkt_size=1316&passphrase=${passphrase}&connect_timeout=2000` }, options: ['-c', 'copy', '-copyinkf', '-bsf:v', 'dump_extra=freq=all', '-f', 'mpegts'] }],
      });
      expect((await sender.exited).exitCode).toBe(0);
      await until(() => node.items.some(isMediaEnd), 3000);
      const video = packets(node.items).filter((p) => p.track.kind === 'video');
      expect(video[0]).toMatchObject({ keyframe: true, track: { codec: 'h264', width: 320, height: 240 } });
      // From the first keyframe (1 s into the 3 s clip, the cut being about 0.5 s in) to the end: about two seconds
      // of frames (the last few may be lost as the publisher closes), none of the half GOP before it.
      expect(video.length).toBeGreaterThan(45);
      expect(video.length).toBeLessThanOrEqual(60);
      expect(video.filter((p) => p.keyframe)).toHaveLength(2);
      // The half GOP before the first keyframe (about 15 frames) is counted as dropped, not lost silently.
      expect(node.ctx.drops.before_keyframe).toBeGreaterThanOrEqual(10);
      expect(node.ctx.drops.before_keyframe).toBeLessThanOrEqual(30);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries MP2 audio as AAC from a second ffmpeg, saying so once, with no warning', async () => {
    const node = startNode(19546);
    await wait(500);
    expect((await publish(19546, 1, passphrase, 'mp2')).code).toBe(0);
    await until(() => node.items.some(isMediaEnd), 3000);
    const got = packets(node.items);
    const audio = got.filter((p) => p.track.kind === 'audio');
    const video = got.filter((p) => p.track.kind === 'video');
    expect(video.length).toBeGreaterThan(15);
    // About a second of 44.1 kHz audio in AAC frames of 1024 samples, all before the stream's end.
    expect(audio.length).toBeGreaterThan(30);
    expect(audio[0]!.track).toMatchObject({ codec: 'aac', sampleRate: 44100, timescale: 90000 });
    expect(node.items.findIndex(isMediaEnd)).toBe(node.items.length - 1);
    expect(node.ctx.logs.filter((l) => l.level === 'warn')).toEqual([]);
    expect(node.ctx.logs.filter((l) => l.message.includes('transcoding')).map((l) => l.message)).toEqual(['node `ingest-srt` (test): stream `cam1`: audio is MPEG audio (MP2): transcoding it to AAC']);
  });

  it('feeds encode in a pipeline on the engine: SRT in, a two-rung ladder out, the end passed on, no ffmpeg left after the drain', async () => {
    process.env.M_SRT_PASS = passphrase;
    const engine = startYaml(`streams: 1
name: srt-ladder
nodes:
  srt:
    op: ingest.srt
    with: { listen: "127.0.0.1:19547", passphrase: "\${env:M_SRT_PASS}", streamid: cam9 }
  ladder:
    op: encode
    in: srt
    with: { ladder: [240p, { name: small, height: 180, bitrate: 200k }], preset: ultrafast, segment: 1s }
  rungs:
    op: test.collect
    in: ladder
    with: { into: srt-ladder }
  stats:
    op: test.collect
    in: ladder.stats
    with: { into: srt-ladder-stats }
`);
    await wait(700);
    await publish(19547, 3);
    // The stream's end (the publisher left) reaches the sink through encode, after its last frames.
    await until(() => (collected.get('srt-ladder') ?? []).some((item) => isMediaEnd(item as MediaItem)), 5000);
    await engine.drain({ deadlineMs: 5000 });
    const items = take('srt-ladder') as MediaItem[];
    const rung = (name: string) => packets(items).filter((p) => p.rendition === name);
    expect(rung('240p').length).toBeGreaterThan(40);
    expect(rung('small').length).toBe(rung('240p').length);
    expect(rung('small')[0].track).toMatchObject({ width: 240, height: 180 });
    expect(rung('audio').length).toBeGreaterThan(40);
    expect(items.filter(isMediaEnd)).toEqual([{ stream: 'cam9', end: true }]);
    expect((take('srt-ladder-stats') as { stream: string }[]).some((s) => s.stream === 'cam9')).toBe(true);
  });
});
