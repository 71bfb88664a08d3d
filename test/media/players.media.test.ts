/**
 * The real chain in real players: ffmpeg makes a two-rung H.264/AAC source
 * (FLV files), a test source plays it out live, our packager (`segment.hls`
 * with LL-HLS parts, `segment.dash`) cuts it, `serve.http` serves it, and
 * hls.js and dash.js play it in Chromium from the origin's player page:
 * playback advances, no fatal error, and hls.js switches rung when the test
 * forces one.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Engine } from '../../runtime/engine.ts';
import { recordingLogger, startPipeline } from '../connectors/http-harness.ts';
import { launchBrowser, playerState, waitForPlayer, type TestBrowser } from '../helpers/browser.ts';
import { flvLiveSource } from '../helpers/flv-live-source.ts';

const run = promisify(execFile);
const port = 19420;
const base = `http://127.0.0.1:${port}/live/demo/`;
/** Seconds of media encoded; the source plays it in a loop for as long as the tests need. */
const seconds = 10;

let dir: string;
let engine: Engine | undefined;
let browser: TestBrowser | undefined;
const pageLog: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'origin-players-'));
  const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30', '-keyint_min', '30', '-sc_threshold', '0'];
  // One encode, two rungs with keyframes at the same instants, audio with the upper rung.
  await run('nice', ['-n', '10', 'ffmpeg', '-v', 'error', '-y',
    '-f', 'lavfi', '-t', String(seconds), '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-t', String(seconds), '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=2[hi][lo0];[lo0]scale=320:180[lo]',
    '-map', '[hi]', '-map', '1:a', ...x264, '-b:v', '600k', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', join(dir, 'hi.flv'),
    '-map', '[lo]', ...x264, '-b:v', '200k', '-an', '-f', 'flv', join(dir, 'lo.flv')], { timeout: 60_000 });
  engine = startPipeline(
    `streams: 1
name: origin-players
nodes:
  publish:
    op: test.flv_live
    with: { stream: demo, files: ["${join(dir, 'hi.flv')}", "${join(dir, 'lo.flv')}"], renditions: [360p, 180p], loop: true }
  hls:
    op: segment.hls
    in: publish
    with: { segment: 1s, part: 200ms, window: 8 }
  dash:
    op: segment.dash
    in: hls
    with: { min_buffer_time: 1s }
  origin:
    op: serve.http
    in: dash
    with: { listen: "127.0.0.1:${port}" }
`,
    [flvLiveSource],
    { log: recordingLogger() },
  );
  browser = await launchBrowser({ log: (line) => pageLog.push(line) });
  // The master playlist exists once every track has a segment.
  const deadline = Date.now() + 10_000;
  while ((await fetch(`${base}master.m3u8`).catch(() => undefined))?.status !== 200) {
    if (Date.now() > deadline) throw new Error('the origin never served a master playlist');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  await browser?.close();
  await engine?.drain({ deadlineMs: 5_000 });
  await rm(dir, { recursive: true, force: true });
});

/** Waits until playback has moved on by `seconds` from where it is now. */
async function advances(page: Page, what: string, seconds: number): Promise<void> {
  const from = (await playerState(page)).currentTime;
  await waitForPlayer(page, what, (state) => state.currentTime >= from + seconds && !state.paused);
}

describe('players on the origin', () => {
  it('serves a master playlist naming both rungs and the audio group, as our packager cut them', async () => {
    const master = await (await fetch(`${base}master.m3u8`)).text();
    expect(master).toMatch(/#EXT-X-STREAM-INF:.*RESOLUTION=640x360.*\n360p\/index\.m3u8/);
    expect(master).toMatch(/#EXT-X-STREAM-INF:.*RESOLUTION=320x180.*\n180p\/index\.m3u8/);
    expect(master).toContain('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio"');
  });

  it('hls.js (low-latency) plays, and switches rung when forced', async () => {
    const requests: string[] = [];
    const page = await browser!.open(base, requests);
    try {
      const started = await waitForPlayer(page, 'hls.js to start playing', (state) => state.currentTime > 1 && !state.paused);
      expect(started.engine).toBe('hls');
      expect(started.levels).toHaveLength(2);
      await advances(page, 'hls.js to play 2 s more', 2);
      const level = (await playerState(page)).level;
      const other = level === 0 ? 1 : 0;
      await page.evaluate((to) => {
        (globalThis as unknown as { streamsPlayer: { player: { currentLevel: number } } }).streamsPlayer.player.currentLevel = to;
      }, other);
      const switched = await waitForPlayer(page, `hls.js to switch to level ${other}`, (state) => state.level === other);
      expect(switched.switches).toContain(other);
      await advances(page, 'hls.js to play on after the switch', 2);
      const figures = await page.evaluate(() => {
        const hls = (globalThis as unknown as { streamsPlayer: { player: { latency: number; playingDate: Date | null; targetLatency: number | null } } }).streamsPlayer.player;
        return { latency: hls.latency, target: hls.targetLatency, behindWallClock: hls.playingDate === null ? null : Date.now() - hls.playingDate.getTime() };
      });
      console.log(`hls.js: latency ${figures.latency.toFixed(2)} s (target ${figures.target}), playing frame ${figures.behindWallClock} ms behind the wall clock`);
      // Low latency for real: blocking playlist reloads, and parts fetched.
      expect(requests.some((url) => /index\.m3u8\?_HLS_msn=\d+&_HLS_part=\d+$/.test(url))).toBe(true);
      expect(requests.some((url) => /\/[0-9a-z]+-\d+\.\d+\.m4s$/.test(url))).toBe(true);
      const final = await playerState(page);
      console.log(`hls.js non-fatal errors: ${JSON.stringify(final.errors)}`);
      expect(final.fatal).toBeNull();
    } catch (error) {
      console.log(pageLog.slice(-30).join('\n'));
      throw error;
    } finally {
      await page.close();
    }
  });

  it('dash.js plays the MPD over the same segments', async () => {
    const page = await browser!.open(`${base}?dash`);
    try {
      const started = await waitForPlayer(page, 'dash.js to start playing', (state) => state.currentTime > 1 && !state.paused);
      expect(started.engine).toBe('dash');
      await advances(page, 'dash.js to play 3 s more', 3);
      const state = await playerState(page);
      console.log(`dash.js errors: ${JSON.stringify(state.errors)}`);
      expect(state.fatal).toBeNull();
      expect(state.videoWidth).toBeGreaterThan(0);
    } catch (error) {
      console.log(pageLog.slice(-30).join('\n'));
      throw error;
    } finally {
      await page.close();
    }
  });
});
