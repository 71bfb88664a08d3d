import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import segmentHls from '../../nodes/media/segment-hls.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import type { CmafInit, CmafItem, CmafPart, CmafSegment } from '../../media/segment.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';
import { patternPackets, probeFile } from './flv-packets.ts';

const dir = mkdtempSync(join(tmpdir(), 'cmaf-'));
let packets: MediaPacket[] = [];
let items: CmafItem[] = [];

/** Runs the packager over `input` in batches of 7 packets, as a live source would hand them over. */
function packageAll(input: MediaItem[], settings: Record<string, unknown>): CmafItem[] {
  const batches = [];
  for (let i = 0; i < input.length; i += 7) batches.push(batchOf(input.slice(i, i + 7)));
  const run = drive(segmentHls.create(fakeContext(segmentHls, settings)), batches);
  expect(run.completed).toBe(true);
  return run.items() as CmafItem[];
}

function trackFile(track: string, pieces: 'segment' | 'part'): string {
  const init = items.find((i): i is CmafInit => i.type === 'init' && i.track === track)!;
  const body = items.filter((i): i is CmafSegment | CmafPart => i.type === pieces && i.track === track).map((i) => i.data);
  const file = join(dir, `${track}-${pieces}.mp4`);
  writeFileSync(file, Buffer.concat([init.data, ...body]));
  return file;
}

beforeAll(async () => {
  // 4 s at 30 fps with a keyframe every second; B-frames, so composition offsets matter.
  packets = await patternPackets(join(dir, 'in.flv'), { seconds: 4, gop: 30 });
  items = packageAll([...packets, { stream: 'test', end: true }], { segment: '2s', part: '200ms' });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('segment.hls muxing real H.264 and AAC into CMAF, read back by ffprobe', () => {
  it('writes a video track that ffprobe decodes frame for frame, at the source size', async () => {
    const probe = await probeFile(trackFile('source', 'segment'));
    expect(probe.streams).toHaveLength(1);
    const [stream] = probe.streams;
    expect(stream.codec_name).toBe('h264');
    expect(stream.width).toBe(320);
    expect(stream.height).toBe(240);
    const fed = packets.filter((p) => p.track.kind === 'video');
    expect(Number(stream.nb_read_frames)).toBe(fed.length);
    // Presentation times survive the trip: composition offsets were written signed and right.
    const shown = probe.packets.map((p) => Math.round(Number(p.pts_time) * 1000));
    expect(shown).toEqual(fed.map((p) => p.pts));
    expect(probe.packets.filter((p) => p.flags.startsWith('K')).length).toBe(fed.filter((p) => p.keyframe).length);
  });

  it('writes an audio track with every AAC frame', async () => {
    const probe = await probeFile(trackFile('audio', 'segment'));
    const [stream] = probe.streams;
    expect(stream.codec_name).toBe('aac');
    expect(Number(stream.sample_rate)).toBe(44100);
    expect(Number(stream.channels)).toBe(1);
    expect(Number(stream.nb_read_frames)).toBe(packets.filter((p) => p.track.kind === 'audio').length);
  });

  it('cuts 2 s video segments on keyframes, with segment durations that add up to the media', () => {
    const segments = items.filter((i): i is CmafSegment => i.type === 'segment' && i.track === 'source');
    expect(segments.map((s) => s.msn)).toEqual([0, 1]);
    expect(segments[0].duration).toBeCloseTo(2, 1);
    const fed = packets.filter((p) => p.track.kind === 'video');
    const total = segments.reduce((sum, s) => sum + s.duration, 0);
    expect(total).toBeCloseTo((fed.at(-1)!.dts - fed[0].dts) / 1000 + 1 / 30, 1);
    expect(segments[1].startTime).toBe(fed.find((p, i) => i > 0 && p.keyframe && p.dts >= 2000)!.dts);
  });

  it('makes parts of at most 200 ms whose bytes are the segment\'s, readable on their own', async () => {
    const parts = items.filter((i): i is CmafPart => i.type === 'part' && i.track === 'source');
    for (const part of parts) expect(part.duration).toBeLessThanOrEqual(0.2 + 1e-9);
    const segments = items.filter((i): i is CmafSegment => i.type === 'segment' && i.track === 'source');
    for (const segment of segments) {
      const own = parts.filter((p) => p.msn === segment.msn);
      expect(Buffer.concat(own.map((p) => p.data)).equals(segment.data)).toBe(true);
      expect(own[0].independent).toBe(true);
    }
    const probe = await probeFile(trackFile('source', 'part'));
    expect(Number(probe.streams[0].nb_read_frames)).toBe(packets.filter((p) => p.track.kind === 'video').length);
  });

  it('ffprobe reads the segments without parts as well', async () => {
    items = packageAll([...packets, { stream: 'test', end: true }], { segment: '2s' });
    expect(items.some((i) => i.type === 'part')).toBe(false);
    const probe = await probeFile(trackFile('source', 'segment'));
    expect(Number(probe.streams[0].nb_read_frames)).toBe(packets.filter((p) => p.track.kind === 'video').length);
  });
});
