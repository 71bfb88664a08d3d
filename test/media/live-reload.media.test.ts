/**
 * Hot reload of a media node, as a user does it: `streams run --watch` on a
 * copy of `pipelines/live.yaml`, a live RTMP publish playing in hls.js, then
 * the ladder changed in the file. Only `encode` is replaced; the packager
 * continues the playlists with a discontinuity instead of ending them, the
 * rung both ladders have neither skips nor repeats a frame across the
 * reload (presentation times read by ffprobe), and the player keeps playing.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffprobe } from '../../native/ffmpeg/probe.ts';
import { launchBrowser, playerState, waitForPlayer, type TestBrowser } from '../helpers/browser.ts';
import { fetchUntil, publish, streamsRun, type StreamsRun } from './live-cli.ts';

const ports = { rtmp: 19460, srt: 19461, http: 19462 };
const key = 'reload1';
const base = `http://127.0.0.1:${ports.http}/live/${key}/`;

let dir: string;
let file: string;
let run: StreamsRun;
let browser: TestBrowser | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'live-reload-'));
  file = join(dir, 'live.yaml');
  copyFileSync('pipelines/live.yaml', file);
  run = streamsRun([file, '--watch', '--param', `rtmp=127.0.0.1:${ports.rtmp}`, '--param', `srt=127.0.0.1:${ports.srt}`, '--param', `http=127.0.0.1:${ports.http}`, '--param', `key=${key}`, '--param', 'reconnect=1s']);
  await run.waitForLog('the RTMP listener', (l) => l.node === 'rtmp' && l.msg.includes('listening'));
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  expect(await run.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

/** Steps between consecutive presentation times, in units of `unit` seconds, rounded. */
function steps(times: number[], unit: number): number[] {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.slice(1).map((t, i) => Math.round((t - sorted[i]) / unit));
}

describe('hot reload of the ladder', () => {
  it('replaces encode only; the playlists go on after a discontinuity and hls.js keeps playing', async () => {
    const publisher = publish(`rtmp://127.0.0.1:${ports.rtmp}/live/${key}`, { seconds: 14, size: '640x360' });
    await fetchUntil(`${base}master.m3u8`, (body) => body.includes('360p/index.m3u8'));
    // ffprobe follows the 360p and audio playlists from their first segment to their end, across the reload.
    const follow = { inputOptions: ['-live_start_index', '0'], packets: true };
    const video = ffprobe(`${base}360p/index.m3u8`, { ...follow, select: 'v:0' });
    const audio = ffprobe(`${base}audio/index.m3u8`, { ...follow, select: 'a:0' });
    const page = await browser!.open(base);
    try {
      await waitForPlayer(page, 'hls.js to start playing', (s) => s.currentTime > 1 && !s.paused);
      const before = (await playerState(page)).currentTime;

      // The ladder changes: 240p is added below 360p.
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('ladder: sd,');
      writeFileSync(file, text.replace('ladder: sd,', 'ladder: [360p, 240p],'));
      const applied = await run.waitForLog('the reload', (l) => l.msg === 'reload applied');
      expect(applied.replaced).toEqual(['ladder']);
      await run.waitForLog('the new ladder', (l) => l.node === 'ladder' && Array.isArray(l.rungs) && (l.rungs as string[]).includes('240p'));

      // The packager continues the 360p playlist: a discontinuity, segments after it, no end; the new rung appears.
      const media = await fetchUntil(`${base}360p/index.m3u8`, (body) => /#EXT-X-DISCONTINUITY\n(?:.*\n)*?[0-9a-z]+-\d+\.m4s\n(?:.*\n)*?[0-9a-z]+-\d+\.m4s/.test(body), 10_000);
      expect(media).not.toContain('#EXT-X-ENDLIST');
      expect(media).toContain('#EXT-X-MEDIA-SEQUENCE:');
      await fetchUntil(`${base}240p/index.m3u8`, (body) => /\n[0-9a-z]+-\d+\.m4s/.test(body), 10_000);

      // The player went through the reload: 3 s more than before it, no fatal error.
      const after = await waitForPlayer(page, 'hls.js to play on across the reload', (s) => s.currentTime > before + 3, 15_000);
      expect(after.fatal).toBeNull();
      console.log(`hls.js across the reload: ${before.toFixed(1)} s -> ${after.currentTime.toFixed(1)} s; non-fatal errors ${JSON.stringify(after.errors)}`);
    } finally {
      await page.close();
    }
    expect((await publisher.exited).code).toBe(0);
    const videoTimes = (await video).packets!.map((p) => Number(p.pts_time));
    const audioTimes = (await audio).packets!.map((p) => Number(p.pts_time));
    const videoSteps = steps(videoTimes, 1 / 30);
    const audioSteps = steps(audioTimes, 1024 / 48000);
    console.log(`across the reload: ${videoTimes.length} video frames, steps ${JSON.stringify([...new Set(videoSteps)])}; ${audioTimes.length} audio frames, steps ${JSON.stringify([...new Set(audioSteps)])}`);
    // Audio is copied through both nodes: every frame, once. The 360p rung,
    // in both ladders, has every frame once too: the new encode decodes the
    // source's last GOP again and splices on the frame after the old
    // ffmpeg's last (a keyframe forced there), so across the discontinuity
    // the playlist marks, no frame is skipped (a step of 2 or more) or
    // repeated (a step of 0).
    expect(new Set(audioSteps)).toEqual(new Set([1]));
    expect(audioTimes.length).toBeGreaterThanOrEqual(13 * 47);
    expect(new Set(videoSteps)).toEqual(new Set([1]));
    expect(videoTimes.length).toBeGreaterThanOrEqual(13 * 30);
  });
});
