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
import type { ForeignAudio } from '../../media/mpegts-forward.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import { TsAudioTranscoder } from '../../nodes/media/live/ts-audio-transcoder.ts';
import { childrenNamed, settleChildren } from './children.ts';

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

/** An audio-only MPEG-TS clip of `seconds` of sine, its streams encoded as `codecs` say (`-c:a:N` each), all from one source. */
async function audioClip(dir: string, seconds: number, codecs: string[]): Promise<Buffer> {
  const clip = join(dir, 'audio.ts');
  await runToEnd(
    FfmpegProcess.spawn({
      inputs: [{ from: { url: `sine=frequency=440:sample_rate=48000:duration=${seconds}` }, options: ['-f', 'lavfi'] }],
      // SMPTE 302M's encoder is marked experimental.
      outputs: [{ to: { url: clip }, options: [...codecs.flatMap((codec, i) => ['-map', '0:a', `-c:a:${i}`, codec]), '-ac', '2', '-strict', '-2', '-f', 'mpegts', '-y'] }],
    }),
  );
  return readFileSync(clip);
}

/** `clip` read in SRT-sized pieces by a reader that passes its foreign audio on: the reader and that audio. */
function foreignAudioOf(clip: Buffer): { reader: TsReader; audio: ForeignAudio[] } {
  const reader = new TsReader({ stream: 's', passForeignAudio: true });
  const audio = Array.from({ length: Math.ceil(clip.length / 1316) }, (_, i) => reader.push(clip.subarray(i * 1316, (i + 1) * 1316)).foreignAudio).filter((foreign) => foreign !== undefined);
  return { reader, audio };
}

/** Waits for `check`, at most `ms`. */
async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The seconds of audio one PES of `audio` holds, from their timestamps. */
function pesSeconds(audio: ForeignAudio[]): number {
  const starts = audio.flatMap((foreign) => foreign.starts);
  return (starts.at(-1)! - starts[0]!) / 90_000 / (starts.length - 1);
}

interface Seen {
  aac: number[];
  dropped: { reason: string; pes: number }[];
  silent: number[];
}

/** A transcoder for `reader`'s foreign audio, what it reports gathered in `seen`. */
function transcoderOf(reader: TsReader, seen: Seen, live = true): TsAudioTranscoder {
  return new TsAudioTranscoder({
    stream: 's',
    live,
    codec: 'MPEG audio (MP2)',
    timeline: () => reader.timeline,
    events: {
      result: (result) => {
        expect(result.error).toBeUndefined();
        seen.aac.push(...result.packets.map((packet) => packet.pts));
      },
      failed: (exit) => expect.fail(exit.error?.message),
      dropped: (loss) => seen.dropped.push(loss),
      silent: (seconds) => seen.silent.push(seconds),
    },
  });
}

describe('TsAudioTranscoder', () => {
  it('transcodes the audio the reader chose though the PMT lists a stream ffmpeg would take first (SMPTE 302M)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-transcoder-'));
    try {
      const bytes = await audioClip(dir, 2, ['s302m', 'mp2']);
      const reader = new TsReader({ stream: 's', passForeignAudio: true });
      const seen: Seen = { aac: [], dropped: [], silent: [] };
      const transcoder = transcoderOf(reader, seen);
      let starts = 0;
      for (let i = 0; i < bytes.length; i += 1316) {
        const { foreignAudio } = reader.push(bytes.subarray(i, i + 1316));
        if (foreignAudio) {
          transcoder.write(foreignAudio);
          starts += foreignAudio.starts.length;
        }
      }
      await transcoder.end(5000);
      expect(starts).toBeGreaterThan(20);
      // 2 s at 48 kHz: 93 AAC frames; a few at the edges may go to the encoder's priming.
      expect(seen.aac.length).toBeGreaterThan(85);
      expect(seen).toMatchObject({ dropped: [], silent: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
  });

  it('drops audio, counted in PES, once ffmpeg is 2 s of it behind, never calling it silent once AAC came; counts what a kill at the end cut', async () => {
    let transcoder: TsAudioTranscoder | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'ts-transcoder-'));
    try {
      const bytes = await audioClip(dir, 12, ['mp2']);
      const { reader, audio } = foreignAudioOf(bytes);
      const total = audio.reduce((sum, foreign) => sum + foreign.starts.length, 0);
      const seconds = pesSeconds(audio);
      const seen: Seen = { aac: [], dropped: [], silent: [] };
      transcoder = transcoderOf(reader, seen);
      const [ffmpeg] = childrenNamed('ffmpeg');
      // The first second goes through; then ffmpeg stalls (SIGSTOP) and the rest keeps coming.
      const firstSecond = audio.findIndex((foreign) => foreign.starts.some((pts) => pts > audio[0]!.starts[0]! + 90_000));
      for (const foreign of audio.slice(0, firstSecond)) transcoder.write(foreign);
      await until(() => seen.aac.length > 0, 20_000);
      expect(seen.aac.length).toBeGreaterThan(0);
      await until(() => transcoder!.backlogSeconds < 0.5, 20_000);
      process.kill(ffmpeg!.pid, 'SIGSTOP');
      for (const foreign of audio.slice(firstSecond)) transcoder.write(foreign);
      const backlog = seen.dropped.filter((loss) => loss.reason === 'backlog').reduce((sum, loss) => sum + loss.pes, 0);
      const written = total - backlog;
      // About 9.5 of the 11 s after the first went: what was written reaches at most 2 s (and a chunk) past what came back.
      expect(transcoder.backlogSeconds).toBeLessThanOrEqual(2.1);
      expect(transcoder.backlogSeconds).toBeGreaterThan(1.5);
      expect(backlog * seconds).toBeGreaterThan(8);
      expect(seen.silent).toEqual([]);
      // Still stopped at the end: killed past the deadline, the audio it held counted as cut.
      await transcoder.end(300);
      const cut = seen.dropped.filter((loss) => loss.reason === 'cut').reduce((sum, loss) => sum + loss.pes, 0);
      expect(cut * seconds).toBeGreaterThan(1.5);
      expect(cut).toBeLessThanOrEqual(written);
    } finally {
      // A stopped ffmpeg takes SIGKILL only: it goes past the deadline.
      await transcoder?.stop(300);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
  });

  it('not live (demux of a file): drops nothing however far behind, and progress() resolves only once ffmpeg moves again', async () => {
    let transcoder: TsAudioTranscoder | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'ts-transcoder-'));
    try {
      const bytes = await audioClip(dir, 8, ['mp2']);
      const { reader, audio } = foreignAudioOf(bytes);
      const seen: Seen = { aac: [], dropped: [], silent: [] };
      transcoder = transcoderOf(reader, seen, false);
      const [ffmpeg] = childrenNamed('ffmpeg');
      process.kill(ffmpeg!.pid, 'SIGSTOP');
      for (const foreign of audio) transcoder.write(foreign);
      // All 8 s written and held: nothing dropped, nothing back.
      expect(transcoder.backlogSeconds).toBeGreaterThan(7.5);
      expect(transcoder.pending).toBe(true);
      let moved = false;
      const progress = transcoder.progress().then(() => (moved = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(moved).toBe(false);
      process.kill(ffmpeg!.pid, 'SIGCONT');
      await progress;
      await transcoder.end(10_000);
      // 8 s at 48 kHz: 375 AAC frames; one at either edge may go to the encoder's priming.
      expect(seen.aac.length).toBeGreaterThanOrEqual(374);
      expect(seen).toMatchObject({ dropped: [], silent: [] });
      expect(transcoder.pending).toBe(false);
    } finally {
      await transcoder?.stop(300);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
  });

  it('reports an ffmpeg that sends no AAC back for 5 s of audio, once, and drops past that', async () => {
    let transcoder: TsAudioTranscoder | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'ts-transcoder-'));
    try {
      const bytes = await audioClip(dir, 8, ['mp2']);
      const { reader, audio } = foreignAudioOf(bytes);
      const seen: Seen = { aac: [], dropped: [], silent: [] };
      transcoder = transcoderOf(reader, seen);
      process.kill(childrenNamed('ffmpeg')[0]!.pid, 'SIGSTOP');
      for (const foreign of audio) transcoder.write(foreign);
      expect(seen.silent).toHaveLength(1);
      expect(seen.silent[0]).toBeGreaterThan(5);
      expect(seen.silent[0]).toBeLessThan(5.2);
      expect(seen.dropped.filter((loss) => loss.reason === 'backlog').reduce((sum, loss) => sum + loss.pes, 0) * pesSeconds(audio)).toBeGreaterThan(2.5);
      await transcoder.end(300);
    } finally {
      // A stopped ffmpeg takes SIGKILL only: it goes past the deadline.
      await transcoder?.stop(300);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
  });

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
          silent: () => expect.fail('the AAC comes back'),
        },
      });
      for (let i = 0; i < bytes.length; i += 1316) {
        const result = reader.push(bytes.subarray(i, i + 1316));
        video.push(...result.packets.filter((packet) => packet.track.kind === 'video').map((packet) => packet.pts));
        if (result.foreignAudio) transcoder.write(result.foreignAudio);
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
