import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, type Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FlvReader, FlvWriter } from '../../media/flv.ts';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import { ffprobe } from '../../native/ffmpeg/probe.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import encode from '../../nodes/media/encode.ts';
import type { LadderStats } from '../../nodes/media/ladder-stats.ts';
import { Ack, type Batch } from '../../runtime/api.ts';
import { fakeContext } from '../helpers/fake-context.ts';
import { childrenNamed, settleChildren } from './children.ts';

let dir: string;

/** Packets of an FLV that ffmpeg made from a test pattern and a tone, read with media/flv.ts. */
async function sourcePackets(name: string, size: string, rate: number, seconds: number): Promise<MediaPacket[]> {
  const file = join(dir, `${name}.flv`);
  await runToEnd(FfmpegProcess.spawn({
    inputs: [
      { from: { url: `testsrc2=size=${size}:rate=${rate}:duration=${seconds}` }, options: ['-f', 'lavfi'] },
      { from: { url: `sine=frequency=440:duration=${seconds}` }, options: ['-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: file }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(rate), '-c:a', 'aac', '-f', 'flv', '-y'] }],
  }));
  const read = new FlvReader({ stream: 'cam' }).push(readFileSync(file));
  expect(read.error).toBeUndefined();
  return read.packets;
}

let small: MediaPacket[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'encode-test-'));
  small = await sourcePackets('small', '640x360', 30, 3);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  // Every ffmpeg the node started has exited and been reaped.
  expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
});

/** Runs an encode node on a Subject; resolves the items once the output completes. */
function runNode(raw: unknown) {
  const ctx = fakeContext(encode, raw);
  const input = new Subject<Batch>();
  const items: MediaItem[] = [];
  let subscription: Subscription | undefined;
  const done = new Promise<void>((resolve, reject) => {
    subscription = encode.create(ctx)(input).subscribe({ next: (batch) => items.push(...(batch.items as MediaItem[])), error: reject, complete: resolve });
  });
  const send = (list: MediaItem[]) => input.next({ items: list, ack: Ack.none() });
  return { ctx, input, items, done, send, unsubscribe: () => subscription!.unsubscribe() };
}

function rendition(items: MediaItem[], name: string): MediaPacket[] {
  return items.filter((item): item is MediaPacket => !isMediaEnd(item) && item.rendition === name);
}

function keyframeTimes(packets: MediaPacket[]): number[] {
  return packets.filter((p) => p.keyframe).map((p) => p.dts);
}

/** Writes a rung's packets to an FLV and probes it, as a player would read it. */
async function probeRung(packets: MediaPacket[], name: string) {
  const writer = new FlvWriter({ audio: false, video: true });
  const file = join(dir, `${name}.out.flv`);
  writeFileSync(file, Buffer.concat(packets.map((p) => writer.write(p))));
  return ffprobe(file, { countFrames: true });
}

describe('encode', () => {
  it('encodes a 360p source into a 360p/240p ladder with aligned keyframes, copies audio, passes the source through', async () => {
    const run = runNode({ ladder: ['720p', '360p', '240p'], preset: 'ultrafast', segment: '1s', passthrough: true });
    run.send(small);
    run.input.next({ items: [{ stream: 'cam', end: true }], ack: Ack.none() });
    run.input.complete();
    await run.done;

    expect(run.ctx.logs.some((l) => l.message === 'node `encode` (test): stream ****: rungs `720p` skipped (above the source\'s 360p)')).toBe(true);
    expect(rendition(run.items, '720p')).toEqual([]);
    const video = small.filter((p) => p.track.kind === 'video');
    const audio = small.filter((p) => p.track.kind === 'audio');
    expect(rendition(run.items, 'source')).toHaveLength(video.length);
    expect(rendition(run.items, 'audio')).toHaveLength(audio.length);
    expect(rendition(run.items, 'audio')[0].data).toBe(audio[0].data);

    const r360 = rendition(run.items, '360p');
    const r240 = rendition(run.items, '240p');
    expect(r360).toHaveLength(90);
    expect(r240).toHaveLength(90);
    expect(r360[0].track).toMatchObject({ codec: 'h264', width: 640, height: 360 });
    expect(r240[0].track).toMatchObject({ codec: 'h264', width: 426, height: 240 });
    // Keyframes on the same frames in both rungs, one per 1 s segment, and no others (no scene cuts).
    const keys = keyframeTimes(r360);
    expect(keyframeTimes(r240)).toEqual(keys);
    expect(keys).toHaveLength(3);
    expect(keys.map((t, i) => t - keys[0] - i * 1000).every((d) => Math.abs(d) < 40)).toBe(true);
    // Timestamps follow the source's (ffmpeg keeps them), so the copied audio lines up.
    expect(Math.abs(r360[0].dts - video[0].dts)).toBeLessThan(40);

    // Bitrates plausible for their targets (800k, 400k) over 3 s; the smaller rung is smaller.
    const bits = (packets: MediaPacket[]) => (packets.reduce((n, p) => n + p.data.length, 0) * 8) / 3;
    expect(bits(r360)).toBeGreaterThan(800_000 * 0.3);
    expect(bits(r360)).toBeLessThan(800_000 * 2);
    expect(bits(r240)).toBeLessThan(bits(r360));

    const probed = await probeRung(r240, '240p');
    expect(probed.streams[0]).toMatchObject({ codec_name: 'h264', width: 426, height: 240, nb_read_frames: '90' });
    expect(run.items.at(-1)).toEqual({ stream: 'cam', end: true });
  });

  it('skips rungs above max_height for a 1080p source', async () => {
    const big = await sourcePackets('big', '1920x1080', 10, 1);
    const run = runNode({ ladder: 'default', max_height: 720, preset: 'ultrafast', segment: '1s' });
    run.send(big);
    run.input.complete();
    await run.done;
    expect(run.ctx.logs.some((l) => l.message.includes('rungs `1080p` skipped (above the source\'s 1080p or max_height 720)'))).toBe(true);
    expect(rendition(run.items, '1080p')).toEqual([]);
    expect(rendition(run.items, '720p')[0].track).toMatchObject({ width: 1280, height: 720 });
    expect(rendition(run.items, '480p')[0].track).toMatchObject({ width: 854, height: 480 });
    expect(rendition(run.items, '720p')).toHaveLength(10);
  });

  it('restarts ffmpeg killed mid-stream: the stream goes on, each rung marks a discontinuity, stats say so', async () => {
    const run = runNode({ ladder: ['360p', '240p'], preset: 'ultrafast', segment: '1s' });
    const video = small.filter((p) => p.track.kind === 'video');
    // Real time, a frame per 33 ms: the kill lands while the stream is live.
    const pace = (from: number, to: number) =>
      new Promise<void>((resolve) => {
        let i = from;
        const timer = setInterval(() => {
          run.send([video[i++]]);
          if (i >= to) {
            clearInterval(timer);
            resolve();
          }
        }, 33);
      });
    await pace(0, 45);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = rendition(run.items, '360p').length;
    expect(before).toBeGreaterThan(0);
    const ffmpeg = childrenNamed('ffmpeg');
    expect(ffmpeg).toHaveLength(1);
    process.kill(ffmpeg[0].pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pace(45, 90);
    run.input.next({ items: [{ stream: 'cam', end: true }], ack: Ack.none() });
    run.input.complete();
    await run.done;

    const error = run.ctx.logs.find((l) => l.level === 'error')!;
    expect(error.message).toMatch(/^node `encode` \(test\): stream \*\*\*\*: ffmpeg was killed by SIGKILL: .*; restarting at the next keyframe$/);
    for (const name of ['360p', '240p']) {
      const packets = rendition(run.items, name);
      const marked = packets.filter((p) => p.discontinuity);
      expect(marked).toHaveLength(1);
      // The restart begins at the source's next keyframe (t = 2 s), and goes on to the end.
      expect(marked[0].keyframe).toBe(true);
      expect(packets.at(-1)!.dts).toBeGreaterThan(2900);
    }
    expect(run.items.at(-1)).toEqual({ stream: 'cam', end: true });
    const stats = run.ctx.portItems('stats') as LadderStats[];
    expect(stats.length).toBeGreaterThanOrEqual(2);
    expect(stats.at(-1)).toMatchObject({ stream: 'cam', restarts: 1 });
    expect(Object.keys(stats[1].rungs).sort()).toEqual(['240p', '360p']);
    expect(stats.some((s) => s.bitrate > 0 && s.fps > 10)).toBe(true);
    expect(run.ctx.drops.encoder_restarting).toBeGreaterThan(0);
  });

  it('backs off when ffmpeg dies again soon after a restart (a crash loop)', async () => {
    const run = runNode({ ladder: ['240p'], preset: 'ultrafast', segment: '1s' });
    const video = small.filter((p) => p.track.kind === 'video');
    const killAt = new Set([40, 70]);
    for (let i = 0; i < video.length; i++) {
      if (killAt.has(i)) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        for (const child of childrenNamed('ffmpeg')) process.kill(child.pid, 'SIGKILL');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      run.send([video[i]]);
      await new Promise((resolve) => setTimeout(resolve, 33));
    }
    run.input.complete();
    await run.done;
    const errors = run.ctx.logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(2);
    // The first death restarts at the next keyframe; the second, quick one waits first (250 ms doubled, with jitter).
    expect(errors[0].fields).toMatchObject({ restarts: 1, wait_ms: 0 });
    expect((errors[1].fields as { wait_ms: number }).wait_ms).toBeGreaterThanOrEqual(250);
  });

  it('stops its ffmpeg when unsubscribed mid-stream (the afterEach finds no child left)', async () => {
    const run = runNode({ ladder: ['240p'], preset: 'ultrafast' });
    run.send(small.slice(0, 40));
    const until = Date.now() + 5000;
    while (rendition(run.items, '240p').length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(childrenNamed('ffmpeg')).toHaveLength(1);
    run.unsubscribe();
  });

  it('stops the ffmpeg of a stream that is ending when unsubscribed, without waiting for it to finish', async () => {
    const run = runNode({ ladder: ['240p'], preset: 'ultrafast' });
    run.send(small.slice(0, 40));
    const until = Date.now() + 5000;
    while (rendition(run.items, '240p').length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    const [ffmpeg] = childrenNamed('ffmpeg');
    expect(ffmpeg).toBeDefined();
    // Stopped, ffmpeg cannot finish the stream on its own: only the node's stop (SIGTERM, then SIGKILL) ends it.
    process.kill(ffmpeg!.pid, 'SIGSTOP');
    run.send([{ stream: 'cam', end: true }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    run.unsubscribe();
    expect(await settleChildren('ffmpeg', 6000)).toEqual([]);
  });
});
