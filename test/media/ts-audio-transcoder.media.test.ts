/**
 * The transcoder `ingest.srt` runs for audio that is not AAC, driven
 * directly: a clip's MP2 through ffmpeg and back, its AAC placed on the
 * video's timeline even where the source's 33-bit clock wraps.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TsReader } from '../../media/mpegts.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import { TsAudioTranscoder } from '../../nodes/media/live/ts-audio-transcoder.ts';
import { settleChildren } from './children.ts';

const WRAP = 2 ** 33;

/** A 3 s clip of H.264 and MP2 whose timestamps start `before` 90 kHz ticks short of the 33-bit wrap. */
async function wrappingClip(dir: string, before: number): Promise<Buffer> {
  const clip = join(dir, 'clip.ts');
  // ffmpeg's MPEG-TS starts at 1.4 s; the offset moves that to `before` ticks short of 2^33.
  const offset = (WRAP - before) / 90_000 - 1.4;
  await runToEnd(
    FfmpegProcess.spawn({
      inputs: [
        { from: { url: 'testsrc2=size=160x120:rate=30:duration=3' }, options: ['-f', 'lavfi'] },
        { from: { url: 'sine=frequency=440:sample_rate=48000:duration=3' }, options: ['-f', 'lavfi'] },
      ],
      outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'mp2', '-output_ts_offset', offset.toFixed(6), '-f', 'mpegts', '-y'] }],
    }),
  );
  return readFileSync(clip);
}

describe('TsAudioTranscoder', () => {
  it('puts the AAC on the video\'s turn of the 33-bit clock when the source wraps between the first video and the first AAC', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-transcoder-'));
    try {
      // The wrap falls 10 ms in: the video's reader starts before it, the AAC's reader (its first frame
      // a little later, the first MP2 frame going to the decoder's start) after it.
      const bytes = await wrappingClip(dir, 900);
      const reader = new TsReader({ stream: 's', passForeignAudio: true });
      const video: number[] = [];
      const audio: number[] = [];
      const transcoder = new TsAudioTranscoder({
        stream: 's',
        codec: 'MPEG audio (MP2)',
        timeline: () => reader.timeline,
        events: {
          result: (result) => audio.push(...result.packets.map((packet) => packet.pts)),
          failed: (exit) => expect.fail(exit.error?.message),
          dropped: () => expect.fail('nothing is dropped'),
        },
      });
      for (let i = 0; i < bytes.length; i += 1316) {
        const result = reader.push(bytes.subarray(i, i + 1316));
        video.push(...result.packets.filter((packet) => packet.track.kind === 'video').map((packet) => packet.pts));
        if (result.foreignAudio) transcoder.write(result.foreignAudio.packets);
      }
      video.push(...reader.end().packets.map((packet) => packet.pts));
      await transcoder.end(5000);
      expect(video.length).toBeGreaterThan(80);
      expect(audio.length).toBeGreaterThan(130);
      // Both on the same turn: the AAC within a frame or two of the video at each end, never a whole turn away.
      const minVideo = Math.min(...video);
      expect(minVideo).toBeLessThan(WRAP);
      expect(Math.abs(audio[0]! - minVideo)).toBeLessThan(0.1 * 90_000);
      expect(Math.abs(audio.at(-1)! - Math.max(...video))).toBeLessThan(0.2 * 90_000);
      for (let i = 1; i < audio.length; i++) expect(audio[i]!).toBeGreaterThan(audio[i - 1]!);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
  });
});
