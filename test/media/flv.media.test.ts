import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvReader, FlvWriter } from '../../media/flv.ts';
import type { MediaPacket } from '../../media/packet.ts';

const run = promisify(execFile);
let dir: string;
let original: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flv-media-'));
  const file = join(dir, 'x.flv');
  await run('nice', ['-n', '10', 'ffmpeg', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine', '-t', '2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac', '-f', 'flv', file]);
  original = await readFile(file);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function probePackets(file: string): Promise<{ video: number; audio: number; streams: { codec_name: string; width?: number; height?: number; sample_rate?: string }[] }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type:stream=codec_name,width,height,sample_rate', '-of', 'json', file]);
  const parsed = JSON.parse(stdout) as { packets: { codec_type: string }[]; streams: { codec_name: string }[] };
  return {
    video: parsed.packets.filter((p) => p.codec_type === 'video').length,
    audio: parsed.packets.filter((p) => p.codec_type === 'audio').length,
    streams: parsed.streams,
  };
}

function readAll(bytes: Buffer, chunk: (i: number) => number): MediaPacket[] {
  const reader = new FlvReader({ stream: 'file' });
  const packets: MediaPacket[] = [];
  for (let i = 0, n = 0; i < bytes.length; n++) {
    const size = chunk(n);
    const result = reader.push(bytes.subarray(i, i + size));
    if (result.error) throw result.error;
    packets.push(...result.packets);
    i += size;
  }
  return packets;
}

describe('FLV from ffmpeg', () => {
  it('reads every packet of a real file, with codec strings, size and keyframes every 30 frames', async () => {
    const probed = await probePackets(join(dir, 'x.flv'));
    // Chunks of varying odd sizes, so tags straddle chunk boundaries everywhere.
    const packets = readAll(original, (n) => 1 + ((n * 7919) % 4096));
    const video = packets.filter((p) => p.track.kind === 'video');
    const audio = packets.filter((p) => p.track.kind === 'audio');
    expect(video).toHaveLength(probed.video);
    expect(video).toHaveLength(60);
    expect(audio).toHaveLength(probed.audio);
    expect(video[0]!.track).toMatchObject({ codecString: expect.stringMatching(/^avc1\.42c0[0-9a-f]{2}$/), width: 320, height: 240, fps: 30 });
    expect(audio[0]!.track).toMatchObject({ codecString: 'mp4a.40.2', sampleRate: 44100, channels: 1 });
    expect(video.flatMap((p, i) => (p.keyframe ? [i] : []))).toEqual([0, 30]);
    const dts = video.map((p) => p.dts);
    expect(dts).toEqual([...dts].sort((a, b) => a - b));
    expect(new Set(dts).size).toBe(60);
  });

  it('writes packets back into a file ffprobe reads the same, and that reads back to the same packets', async () => {
    const packets = readAll(original, () => 65536);
    const writer = new FlvWriter();
    const copy = Buffer.concat(packets.map((p) => writer.write(p)));
    const file = join(dir, 'copy.flv');
    await writeFile(file, copy);
    const [before, after] = await Promise.all([probePackets(join(dir, 'x.flv')), probePackets(file)]);
    expect(after.video).toBe(before.video);
    expect(after.audio).toBe(before.audio);
    expect(after.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(after.streams.find((s) => s.codec_name === 'h264')).toMatchObject({ width: 320, height: 240 });
    const again = readAll(copy, () => 1000);
    expect(again.map((p) => [p.track.kind, p.dts, p.pts, p.keyframe, p.data.toString('base64')])).toEqual(
      packets.map((p) => [p.track.kind, p.dts, p.pts, p.keyframe, p.data.toString('base64')]),
    );
  });
});
