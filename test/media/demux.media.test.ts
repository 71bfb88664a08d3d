import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import { runYaml, take } from '../helpers/pipeline.ts';
import { batchOf, drive, fakeContext, probeAck, VirtualClock } from '../helpers/fake-context.ts';
import demux from '../../nodes/media/demux.ts';
import { childrenNamed, settleChildren } from './children.ts';
import type { CmafItem } from '../../media/segment.ts';
import { ffprobe } from '../../native/ffmpeg/probe.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'demux-media-'));
  const input = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac'];
  await run('nice', ['-n', '10', 'ffmpeg', ...input, '-f', 'flv', join(dir, 'x.flv')]);
  await run('nice', ['-n', '10', 'ffmpeg', ...input, '-f', 'mpegts', join(dir, 'x.ts')]);
  // 8 s: more audio than the transcoder may hold (2 s), so demux must wait for it as it reads.
  const long = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30'];
  await run('nice', ['-n', '10', 'ffmpeg', ...long, '-c:a', 'mp2', '-f', 'mpegts', join(dir, 'mp2.ts')]);
  await run('nice', ['-n', '10', 'ffmpeg', ...long, '-c:a', 'ac3', '-f', 'mpegts', join(dir, 'ac3.ts')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function probeCounts(file: string): Promise<{ video: number; audio: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type', '-of', 'csv=p=0', file]);
  const types = stdout.split('\n').map((line) => line.split(',')[0]);
  return { video: types.filter((t) => t === 'video').length, audio: types.filter((t) => t === 'audio').length };
}

describe.each([
  ['flv', 'x.flv', 1000],
  ['mpegts', 'x.ts', 90000],
])('demux %s from ffmpeg, read by file.read', (format, name, timescale) => {
  it('gives every packet ffprobe counts, with codec configuration and keyframes every 30 frames, then the end', async () => {
    const file = join(dir, name);
    await runYaml(`
streams: 1
name: demux
nodes:
  read: { op: file.read, with: { path: ${JSON.stringify(file)}, format: bytes, chunk_size: 5000 } }
  media: { op: demux, in: read, with: { format: ${format}, stream: cam } }
  out: { op: test.collect, in: media, with: { into: demux-${format} } }
`);
    const items = take(`demux-${format}`) as MediaItem[];
    const packets = items.filter((item): item is MediaPacket => !isMediaEnd(item));
    const video = packets.filter((p) => p.track.kind === 'video');
    const audio = packets.filter((p) => p.track.kind === 'audio');
    const probed = await probeCounts(file);
    expect(video).toHaveLength(probed.video);
    expect(video).toHaveLength(60);
    expect(audio).toHaveLength(probed.audio);
    expect(video.flatMap((p, i) => (p.keyframe ? [i] : []))).toEqual([0, 30]);
    expect(video[0]!.track).toMatchObject({ codecString: expect.stringMatching(/^avc1\.42c0/), width: 320, height: 240, fps: 30, timescale });
    expect(audio[0]!.track).toMatchObject({ codecString: 'mp4a.40.2', sampleRate: 44100, timescale });
    expect(new Set(video.map((p) => p.dts)).size).toBe(60);
    expect(items.at(-1)).toEqual({ stream: 'cam', end: true });
  });
});

/** The audio's first timestamp and its length in seconds, as ffprobe reads them (90 kHz ticks). */
async function probeAudio(file: string): Promise<{ start: number; seconds: number; video: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type,pts,duration', '-of', 'csv=p=0', file]);
  const rows = stdout.trim().split('\n').map((line) => line.split(','));
  const audio = rows.filter((row) => row[0] === 'audio');
  return { start: Number(audio[0]![1]), seconds: audio.reduce((sum, row) => sum + Number(row[2]), 0) / 90000, video: rows.filter((row) => row[0] === 'video').length };
}

describe.each([
  ['MP2', 'mp2.ts'],
  ['AC-3', 'ac3.ts'],
])('demux mpegts with %s audio, read by file.read', (codec, name) => {
  it('gives every video frame and AAC of the source audio\'s length, in time order, then the end; no ffmpeg left', async () => {
    const file = join(dir, name);
    await runYaml(`
streams: 1
name: demux
nodes:
  read: { op: file.read, with: { path: ${JSON.stringify(file)}, format: bytes, chunk_size: 65536 } }
  media: { op: demux, in: read, with: { format: mpegts, stream: cam } }
  out: { op: test.collect, in: media, with: { into: demux-${name} } }
`);
    const items = take(`demux-${name}`) as MediaItem[];
    const packets = items.filter((item): item is MediaPacket => !isMediaEnd(item));
    const video = packets.filter((p) => p.track.kind === 'video');
    const audio = packets.filter((p) => p.track.kind === 'audio');
    const source = await probeAudio(file);
    expect(video).toHaveLength(source.video);
    expect(video).toHaveLength(240);
    expect(audio[0]!.track).toMatchObject({ codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 48000, channels: 1, timescale: 90000 });
    // Every AAC frame (1024 samples) of the source's audio, within one frame at either end.
    const frame = (1024 / 48000) * 90000;
    expect(Math.abs(audio.length * 1024 / 48000 - source.seconds)).toBeLessThanOrEqual(1024 / 48000 + 1e-6);
    expect(Math.abs(audio[0]!.pts - source.start)).toBeLessThanOrEqual(frame);
    for (let i = 1; i < audio.length; i++) expect(audio[i]!.dts - audio[i - 1]!.dts).toBeCloseTo(frame, -1);
    // Audio and video in time order, as one stream.
    const order = packets.map((p) => p.dts);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(items.at(-1)).toEqual({ stream: 'cam', end: true });
    expect(items.filter(isMediaEnd)).toHaveLength(1);
    expect(await settleChildren('ffmpeg')).toEqual([]);
  });
});

describe('demux mpegts with MP2 audio into segment.hls', () => {
  it('packages every video frame and AAC as long as the source audio, both tracks ended', async () => {
    const file = join(dir, 'mp2.ts');
    await runYaml(`
streams: 1
name: demux-hls
nodes:
  read: { op: file.read, with: { path: ${JSON.stringify(file)}, format: bytes, chunk_size: 65536 } }
  media: { op: demux, in: read, with: { format: mpegts, stream: cam } }
  hls: { op: segment.hls, in: media, with: { segment: 2s } }
  out: { op: test.collect, in: hls, with: { into: demux-hls } }
`);
    const items = take('demux-hls') as CmafItem[];
    const tracks = [...new Set(items.flatMap((item) => (item.type === 'end' ? [] : [item.track])))].sort();
    expect(tracks).toEqual(['audio', 'source']);
    const probes = Object.fromEntries(
      await Promise.all(
        tracks.map(async (track) => {
          // The track's init and segments, one after another: a fragmented MP4 ffprobe reads whole.
          const data = items.flatMap((item) => (item.type !== 'end' && item.type !== 'part' && item.track === track ? [item.data] : []));
          const path = join(dir, `hls-${track}.mp4`);
          await writeFile(path, Buffer.concat(data));
          return [track, (await ffprobe(path, { countFrames: true })).streams[0]!] as const;
        }),
      ),
    );
    const source = await probeAudio(file);
    expect(probes.source).toMatchObject({ codec_name: 'h264', nb_read_frames: String(source.video) });
    expect(probes.audio).toMatchObject({ codec_name: 'aac', sample_rate: '48000' });
    expect(Math.abs(Number(probes.audio!.nb_read_frames) * 1024 / 48000 - source.seconds)).toBeLessThanOrEqual(1024 / 48000 + 1e-6);
    expect(items.filter((item) => item.type === 'end' && item.track === undefined)).toHaveLength(1);
    expect(await settleChildren('ffmpeg')).toEqual([]);
  });
});

describe('demux mpegts with MP2 audio, a stream ended by `meta.end` and sent again', () => {
  it('sends each run\'s last AAC before its end, the second run marked as a discontinuity; every input ack released once the output is', async () => {
    const bytes = await readFile(join(dir, 'mp2.ts'));
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    const probes = [...chunks, ...chunks].map(() => probeAck());
    const ctx = fakeContext(demux, { format: 'mpegts', stream: 'cam' });
    const run = drive(
      demux.create(ctx),
      [...chunks, ...chunks].map((data, i) => batchOf([{ data, meta: i === chunks.length - 1 ? { end: true } : {} }], probes[i]!.ack)),
    );
    const until = Date.now() + 30_000;
    while (!run.completed && !run.error && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(run.error).toBeUndefined();
    expect(run.completed).toBe(true);
    const items = run.items() as MediaItem[];
    const ends = items.flatMap((item, i) => (isMediaEnd(item) ? [i] : []));
    expect(ends).toEqual([ends[0], items.length - 1]);
    const source = await probeAudio(join(dir, 'mp2.ts'));
    for (const part of [items.slice(0, ends[0]), items.slice(ends[0]! + 1, -1)] as MediaPacket[][]) {
      expect(part.filter((p) => p.track.kind === 'video')).toHaveLength(source.video);
      const audio = part.filter((p) => p.track.kind === 'audio');
      expect(Math.abs(audio.length * 1024 / 48000 - source.seconds)).toBeLessThanOrEqual(1024 / 48000 + 1e-6);
      const order = part.map((p) => p.dts);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    expect((items[ends[0]! + 1] as MediaPacket).discontinuity).toBe(true);
    expect(ctx.logs.filter((log) => log.level === 'error' || log.level === 'warn')).toEqual([]);
    // Nothing acknowledged upstream before what it gave was acknowledged downstream.
    expect(probes.filter((probe) => probe.done > 0).length).toBeLessThan(probes.length);
    run.releaseAll();
    expect(probes.map((probe) => probe.done)).toEqual(probes.map(() => 1));
    expect(await settleChildren('ffmpeg')).toEqual([]);
  });
});

describe('demux mpegts whose PMT announces MP2 that never comes', () => {
  it('sends every video frame before the end and releases every input ack, though no AAC comes back', async () => {
    const bytes = await readFile(join(dir, 'mp2.ts'));
    // The audio PID's packets stripped: the program table still lists MP2 on 0x101.
    const kept: Buffer[] = [];
    for (let i = 0; i + 188 <= bytes.length; i += 188) if ((((bytes[i + 1]! & 0x1f) << 8) | bytes[i + 2]!) !== 0x101) kept.push(bytes.subarray(i, i + 188));
    const stripped = Buffer.concat(kept);
    const chunks = Array.from({ length: Math.ceil(stripped.length / 65536) }, (_, i) => stripped.subarray(i * 65536, (i + 1) * 65536));
    const probes = chunks.map(() => probeAck());
    const ctx = fakeContext(demux, { format: 'mpegts', stream: 'cam' });
    const run = drive(demux.create(ctx), chunks.map((data, i) => batchOf([{ data }], probes[i]!.ack)));
    // No audio PES, no transcoder: none was started for the PMT alone.
    expect(childrenNamed('ffmpeg')).toEqual([]);
    expect(ctx.logs.filter((log) => /transcoding it to AAC/.test(log.message))).toEqual([]);
    const until = Date.now() + 30_000;
    while (!run.completed && !run.error && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(run.completed).toBe(true);
    const items = run.items() as MediaItem[];
    expect(isMediaEnd(items.at(-1)!)).toBe(true);
    const source = await probeAudio(join(dir, 'mp2.ts'));
    expect(items.filter((item): item is MediaPacket => !isMediaEnd(item) && item.track.kind === 'video')).toHaveLength(source.video);
    run.releaseAll();
    expect(probes.map((probe) => probe.done)).toEqual(probes.map(() => 1));
    expect(await settleChildren('ffmpeg')).toEqual([]);
  });
});

describe('demux mpegts with MP2 audio, stopped while its transcoder finishes', () => {
  it('kills the finishing transcoder at once (not after 5 s), counts the audio it held as cut, and sends nothing after the stop', async () => {
    // Under a second of the clip: under the 2 s demux lets the transcoder hold, so it is read without a wait.
    const bytes = (await readFile(join(dir, 'mp2.ts'))).subarray(0, 64 * 188);
    const ctx = fakeContext(demux, { format: 'mpegts', stream: 'cam' });
    const run = drive(demux.create(ctx), [batchOf([{ data: bytes }])]);
    // The input ended: the stream ends, its transcoder finishing (its input closed). Stalled, it cannot.
    expect(run.completed).toBe(false);
    const [ffmpeg] = childrenNamed('ffmpeg');
    process.kill(ffmpeg!.pid, 'SIGSTOP');
    const sent = run.batches.length;
    const stopped = Date.now();
    run.unsubscribe();
    expect(await settleChildren('ffmpeg', 4000)).toEqual([]);
    expect(Date.now() - stopped).toBeLessThan(1000);
    // Its `end` sees the kill: the audio written and never read back is counted, not lost silently.
    const until = Date.now() + 5000;
    while (!ctx.drops.audio_transcode_cut && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ctx.drops.audio_transcode_cut).toBeGreaterThan(0);
    expect(run.batches).toHaveLength(sent);
    expect(run.completed).toBe(false);
  });
});

describe('demux mpegts with MP2 audio whose transcoder stalls', () => {
  it('stops the transcoder after 20 s without progress (logged, counted) and goes on with every video frame', async () => {
    const bytes = await readFile(join(dir, 'mp2.ts'));
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    const clock = new VirtualClock();
    const ctx = fakeContext(demux, { format: 'mpegts', stream: 'cam' }, { clock });
    const run = drive(demux.create(ctx), chunks.map((data) => batchOf([{ data }])));
    // Over 2 s of audio went to ffmpeg before it could answer: demux waits for it.
    expect(run.completed).toBe(false);
    const [ffmpeg] = childrenNamed('ffmpeg');
    process.kill(ffmpeg!.pid, 'SIGSTOP');
    const stalled = (): boolean => ctx.logs.some((log) => log.level === 'error' && /made no progress for 20 s/.test(log.message));
    const until = Date.now() + 30_000;
    // AAC ffmpeg wrote before it stopped may still arrive (and re-arm the wait): move time on until it gives up.
    while (!stalled() && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      clock.advance(20_000);
    }
    expect(ctx.drops.audio_transcode_stalled).toBe(1);
    while (!run.completed && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(run.completed).toBe(true);
    const items = run.items() as MediaItem[];
    const video = items.filter((item): item is MediaPacket => !isMediaEnd(item) && item.track.kind === 'video');
    expect(video).toHaveLength(240);
    expect(items.at(-1)).toEqual({ stream: 'cam', end: true });
    expect(await settleChildren('ffmpeg')).toEqual([]);
  });
});
