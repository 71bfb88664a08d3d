/**
 * Glass-to-glass in a real player: ffmpeg publishes the 720p30 source
 * (`-re -c copy`, a keyframe every second) over RTMP to the engine in its
 * own process (`ingest.rtmp` → `segment.hls`, 1 s segments and 200 ms parts
 * → `serve.http`); hls.js plays it in Chromium from the origin's own player
 * page (`/live/{key}/`, its shipped hls.js settings). Latency is the wall
 * clock minus the playing frame's `EXT-X-PROGRAM-DATE-TIME` (hls.js
 * `playingDate`; the engine dates each segment from its first packet's
 * arrival, so this is arrival at the engine → on screen), sampled every
 * 250 ms for `seconds` once playback has started; median and p95 per run,
 * over `runs` page loads. Also printed: hls.js's own `latency` and
 * `targetLatency`, and the buffer ahead, to see where the time goes.
 *
 * `--config JSON` replaces the page's player with one made with that hls.js
 * configuration, without the page's catch-up (to compare settings); without
 * it the shipped page is measured as it is.
 *
 *   node bench/glass-to-glass.ts [runs=3] [seconds=20] [--config '{"liveSyncDuration":0.5}']
 *
 * Loopback ports 19486 (RTMP) and 19487 (HTTP). The issue quotes MediaMTX
 * 1.14 at 1.0-2.1 s across runs on this machine; aim: under 1.2 s.
 *
 * Measured 2026-12-02, 3 runs × 20 s, load average 11-13 (other jobs; Chromium decodes
 * 720p30 in software on the 2 cores):
 *   player as shipped now (aim PART-HOLD-BACK, a part more per stall, back to live past
 *   aim + a segment): run medians 1609 / 1559 / 1618 ms, p95 ≤ 2.4 s
 *   before (hls.js defaults + lowLatencyMode, maxLiveSyncPlaybackRate 1.5): 3969 / 2871 /
 *   7742 ms: every stall added 1 s to hls.js's aim, and past aim + a segment hls.js never
 *   speeds up to catch up, so a player once behind stayed behind.
 *   Other settings tried (--config): liveSyncDuration 0.8 / liveMaxLatencyDuration 2.5:
 *   1478 / 1867 / 1895 ms; 0.6 / 1.8 with rate 2: 1281 / 1713 / 1712 ms.
 * Measured 2026-12-03, player as shipped, 3 runs x 20 s each time:
 *   load 5-17: run medians 1149 / 959 / 1101 ms (p95 1485 / 1256 / 1229 ms), median 1101 ms
 *   load 16-27: 1233 / 1179 / 1212 ms (p95 1404 / 1420 / 1444 ms), median 1212 ms
 *   --config liveSyncDuration 0.4 (two parts, under the advertised PART-HOLD-BACK of three),
 *   liveMaxLatencyDuration 1.4, liveSyncOnStallIncrease 0.2, load 27: 853 / 1140 / 1147 ms
 *   (p95 1039 / 1257 / 1284 ms), median 1140 ms.
 * So the aim was met when the machine was not saturated and sat at it when it was: hls.js's
 * latency stayed 0.3-0.6 s above its target after stalls, because hls.js speeds playback up
 * only with more than 1 s buffered ahead, which 200 ms parts never give (0.8-0.9 s here).
 * The page now catches up itself (1.1x while over the target by 100 ms with 400 ms ahead;
 * hls.js's own rate control off), measured the same day at load 31-33:
 *   page catch-up: 867 / 1038 / 865 / 865 ms (p95 1258 / 1146 / 1288 / 1380 ms), median 867 ms
 *   before it (--config with the previous settings, load 25-34, runs interleaved with a first
 *   try at 1.1x/1.25x): 1188 / 1235 / 1131 / 1283 ms (p95 1572 / 1510 / 1591 / 1701 ms);
 *   that first try: 1375 / 1039 / 921 / 910 ms, p95 up to 2071 ms (more stalls).
 * Earlier, under steady load 11-13, the aim (< 1.2 s) was missed: hls.js's own latency estimate sat
 * 0.7-1 s above its aim, with the buffer ahead near 0 (stalls: the decoder starved), not
 * in the origin (parts are listed within ~10 ms, bench/m2-live.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser } from '../test/helpers/browser.ts';
import { ensureLiveSource, publish, spawnTracked, spread, stop, untilServing } from './live-source.ts';

const args = process.argv.slice(2);
const configAt = args.indexOf('--config');
const config = configAt >= 0 ? args.splice(configAt, 2)[1] : undefined;
const runs = Number(args[0] ?? 3);
const seconds = Number(args[1] ?? 20);
const ports = { rtmp: 19486, http: 19487 };
const segment = process.env.SEGMENT ?? '1s';
const part = process.env.PART ?? '200ms';

/** One sample from the page: latency by the frame's date, hls.js's own estimate and target, buffer ahead. */
interface Sample {
  glass: number | null;
  latency: number | null;
  target: number | null;
  ahead: number;
  time: number;
}

/** The page's player state, read in the browser (the project compiles without the DOM library). */
function sample(page: Page): Promise<Sample> {
  return page.evaluate(function readLatency() {
    const g = globalThis as unknown as {
      streamsPlayer: { player?: { playingDate: Date | null; latency: number; targetLatency: number | null } };
      document: { querySelector(s: 'video'): { currentTime: number; buffered: { length: number; end(i: number): number } } };
    };
    const hls = g.streamsPlayer.player;
    const video = g.document.querySelector('video');
    const date = hls?.playingDate;
    const end = video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) : 0;
    return { glass: date ? (Date.now() - date.getTime()) / 1000 : null, latency: hls?.latency ?? null, target: hls?.targetLatency ?? null, ahead: end - video.currentTime, time: video.currentTime };
  });
}

/** Replaces the page's player by one with `json` as its hls.js configuration. */
async function replacePlayer(page: Page, json: string): Promise<void> {
  await page.evaluate(function restartPlayer(text: string) {
    const g = globalThis as unknown as {
      Hls: new (c: object) => { loadSource(u: string): void; attachMedia(v: unknown): void; destroy(): void };
      streamsPlayer: { player?: { destroy(): void }; keepLive?: boolean };
      document: { querySelector(s: 'video'): unknown };
    };
    g.streamsPlayer.player?.destroy();
    // hls.js with this configuration alone: the page's own catch-up is off.
    g.streamsPlayer.keepLive = false;
    const hls = new g.Hls({ lowLatencyMode: true, ...JSON.parse(text) });
    g.streamsPlayer.player = hls as never;
    hls.loadSource('master.m3u8');
    hls.attachMedia(g.document.querySelector('video'));
  }, json);
}

const file = ensureLiveSource();
const dir = mkdtempSync(join(tmpdir(), 'g2g-'));
const pipelineFile = join(dir, 'g2g.yaml');
writeFileSync(pipelineFile, `streams: 1
name: glass-to-glass
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${ports.rtmp}" } }
  hls: { op: segment.hls, in: rtmp, with: { segment: ${segment}, part: ${part}, window: 6 } }
  origin: { op: serve.http, in: hls, with: { listen: "127.0.0.1:${ports.http}" } }
`);
const engine = spawnTracked(process.execPath, ['bin/streams.ts', 'run', pipelineFile, '--log-level', 'error']);
const browser = await launchBrowser();
let publisher: ReturnType<typeof publish> | undefined;
try {
  await untilServing(`http://127.0.0.1:${ports.http}/healthz`);
  publisher = publish(file, `rtmp://127.0.0.1:${ports.rtmp}/live/g2g`);
  await untilServing(`http://127.0.0.1:${ports.http}/live/g2g/master.m3u8`);
  console.log(`glass-to-glass: hls.js in Chromium, ${segment} segments, ${part} parts, keyframe every 1 s; player ${config ? `hls.js config ${config}` : 'as shipped (nodes/media/origin/player-page.ts)'}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const medians: number[] = [];
  for (let run = 0; run < runs; run++) {
    const page = await browser.open(`http://127.0.0.1:${ports.http}/live/g2g/`);
    if (config) await replacePlayer(page, config);
    const deadline = Date.now() + 15_000;
    while ((await sample(page)).glass === null) {
      if (Date.now() > deadline) throw new Error('playback did not start within 15 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const samples: Sample[] = [];
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      samples.push(await sample(page));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const glass = samples.flatMap((s) => (s.glass === null ? [] : [s.glass * 1000]));
    const sorted = [...glass].sort((a, b) => a - b);
    medians.push(sorted[Math.floor(sorted.length / 2)]);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    console.log(`  run ${run + 1}: glass-to-glass ${spread(glass, 'ms', 0)}  hls.js latency ${mean(samples.map((s) => s.latency ?? 0)).toFixed(2)} s, target ${mean(samples.map((s) => s.target ?? 0)).toFixed(2)} s, buffer ahead ${mean(samples.map((s) => s.ahead)).toFixed(2)} s`);
    await page.close();
  }
  console.log(`median of the runs' medians: ${[...medians].sort((a, b) => a - b)[Math.floor(medians.length / 2)].toFixed(0)} ms (aim < 1200 ms; MediaMTX 1.14 here: 1000-2100 ms)`);
} finally {
  await browser.close();
  if (publisher) await stop(publisher);
  engine.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await stop(engine);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
