import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import { runYaml, take } from '../helpers/pipeline.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'demux-media-'));
  const input = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac'];
  await run('nice', ['-n', '10', 'ffmpeg', ...input, '-f', 'flv', join(dir, 'x.flv')]);
  await run('nice', ['-n', '10', 'ffmpeg', ...input, '-f', 'mpegts', join(dir, 'x.ts')]);
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
