/**
 * The shipped `pipelines/live.yaml` end to end, as a user runs it: `streams
 * run` with `--param`s as a child process; ffmpeg publishes test patterns
 * over RTMP and SRT; ffprobe reads the HLS and DASH outputs over HTTP and
 * they are checked against what was published; hls.js and dash.js play the origin's
 * player page in Chromium; bad input (a second publisher, ffmpeg killed
 * inside `encode`, a 1080p source) leaves the graph running, with a log line
 * naming the node and the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffprobe, type ProbePacket } from '../../native/ffmpeg/probe.ts';
import { launchBrowser, playerState, waitForPlayer, type TestBrowser } from '../helpers/browser.ts';
import { fetchUntil, publish, sleep, streamsRun, type StreamsRun } from './live-cli.ts';

const ports = { rtmp: 19450, srt: 19451, http: 19452 };
const key = 'live1';
const rtmpUrl = `rtmp://127.0.0.1:${ports.rtmp}/live/${key}`;
const base = `http://127.0.0.1:${ports.http}/live/${key}/`;

let run: StreamsRun;
let browser: TestBrowser | undefined;

beforeAll(async () => {
  run = streamsRun(['pipelines/live.yaml', '--param', `rtmp=127.0.0.1:${ports.rtmp}`, '--param', `srt=127.0.0.1:${ports.srt}`, '--param', `http=127.0.0.1:${ports.http}`, '--param', `key=${key}`, '--param', 'reconnect=1s']);
  await run.waitForLog('the RTMP listener', (l) => l.node === 'rtmp' && l.msg.includes('listening'));
  await run.waitForLog('the origin', (l) => l.node === 'origin' && l.msg.includes('serving'));
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  // A drain after everything: the run ends cleanly (0), having survived every test.
  expect(await run.stop()).toBe(0);
});

/** Video packets of a media playlist, read by ffprobe over HTTP. */
async function videoPackets(url: string): Promise<ProbePacket[]> {
  const probe = await ffprobe(url, { packets: true, select: 'v:0' });
  return probe.packets ?? [];
}

/**
 * Every step between consecutive presentation times, in frames of `fps`,
 * rounded to a whole frame: 1 everywhere means no frame missing (2) and none
 * repeated (0). Timestamps in milliseconds (FLV) step 33 or 34 ms, so the
 * rounding is needed; `jitter` is the largest distance from a whole frame.
 */
function frameSteps(packets: ProbePacket[], fps: number): { steps: Set<number>; jitter: number } {
  const times = packets.map((p) => Number(p.pts_time)).sort((a, b) => a - b);
  const raw = times.slice(1).map((t, i) => (t - times[i]) * fps);
  return { steps: new Set(raw.map(Math.round)), jitter: Math.max(0, ...raw.map((step) => Math.abs(step - Math.round(step)))) };
}

describe('pipelines/live.yaml through the CLI', () => {
  it('RTMP in: LL-HLS and DASH out, every published frame once, hls.js plays, the end gives ENDLIST', async () => {
    const seconds = 8;
    const publisher = publish(rtmpUrl, { seconds, size: '640x360' });
    // The first master asked for is held until the renditions `encode` announced (`source`, `360p`) each have a segment:
    // it lists them all, as soon as the encoded rung's first segment is out, not `master_wait` (3 s) after the stream opened.
    const rungSegment = fetchUntil(`${base}360p/index.m3u8`, (body) => /\n[0-9a-z]+-\d+\.m4s/.test(body)).then(() => Date.now());
    const master = await fetchUntil(`${base}master.m3u8`);
    const masterAt = Date.now();
    const connected = await run.waitForLog('the publish', (l) => l.node === 'rtmp' && /publish of stream .* started/.test(l.msg) && Date.parse(String(l.time)) >= publisher.startedAt - 1000);
    const fromConnect = masterAt - Date.parse(String(connected.time));
    console.log(`publish: ffmpeg connected after ${Date.parse(String(connected.time)) - publisher.startedAt} ms; master playlist ${fromConnect} ms after the connection, ${masterAt - (await rungSegment)} ms after the encoded rung's first segment was seen`);
    expect(master).toContain('360p/index.m3u8');
    // What the engine controls, from the publisher's connection (ffmpeg's own start is not the engine's): 1 s of media to the first
    // segment, the ladder's ffmpeg start and x264's delay; well under the old 3 s `master_wait` plus the source's first segment.
    expect(fromConnect).toBeLessThan(4_500);
    expect(masterAt - (await rungSegment)).toBeLessThan(1_000);
    // A 360p source: the ladder's 720p and 480p are skipped, and the log says so.
    const skipped = await run.waitForLog('the skipped rungs', (l) => l.node === 'ladder' && Array.isArray(l.skipped));
    expect(skipped.skipped).toEqual(['720p', '480p']);
    expect(skipped.msg).toContain('rungs `720p`, `480p` skipped (above the source\'s 360p)');
    expect(master).toMatch(/RESOLUTION=640x360.*\nsource\/index\.m3u8/);
    expect(master).toMatch(/CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",RESOLUTION=640x360.*\n360p\/index\.m3u8/);
    // The encoded rung carries the source's frame rate (its own SPS timing is the encoder's 1/ms time base).
    expect(master).toMatch(/RESOLUTION=640x360[^\n]*FRAME-RATE=30\.000[^\n]*\n360p\/index\.m3u8/);
    expect(master).toContain('GROUP-ID="aud"');
    const media = await fetchUntil(`${base}360p/index.m3u8`);
    expect(media).toContain('#EXT-X-PART-INF:PART-TARGET=0.2');
    expect(media).toContain('CAN-BLOCK-RELOAD=YES');

    // hls.js, from the origin's own player page, while the stream is live.
    const page = await browser!.open(base);
    try {
      const started = await waitForPlayer(page, 'hls.js to start playing', (s) => s.currentTime > 0.5 && !s.paused);
      expect(started.engine).toBe('hls');
      const from = (await playerState(page)).currentTime;
      const later = await waitForPlayer(page, 'hls.js to play on', (s) => s.currentTime > from + 1.5);
      expect(later.fatal).toBeNull();
      expect(later.videoWidth).toBe(640);
    } finally {
      await page.close();
    }

    // The stream's end reaches the playlists.
    expect((await publisher.exited).code).toBe(0);
    const ended = await fetchUntil(`${base}source/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 5_000);
    expect(ended).not.toMatch(/#EXT-X-DISCONTINUITY\n/);
    await fetchUntil(`${base}360p/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 5_000);
    await fetchUntil(`${base}audio/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 5_000);

    // ffprobe over HTTP: every published frame, once, at 1/30 s steps, in the window (8 segments of 1 s hold all 8 s).
    const source = await videoPackets(`${base}source/index.m3u8`);
    expect(source).toHaveLength(seconds * 30);
    expect(frameSteps(source, 30)).toEqual({ steps: new Set([1]), jitter: expect.any(Number) });
    expect(frameSteps(source, 30).jitter).toBeLessThan(0.05);
    const rung = await videoPackets(`${base}360p/index.m3u8`);
    expect(rung).toHaveLength(seconds * 30);
    expect(frameSteps(rung, 30).steps).toEqual(new Set([1]));
    // Keyframes once a second on the encoded rung, so players can switch at every segment.
    expect(rung.filter((p) => p.flags.includes('K'))).toHaveLength(seconds);

    const hls = await ffprobe(`${base}master.m3u8`);
    const video = hls.streams.filter((s) => s.codec_type === 'video');
    expect(video.map((s) => `${s.codec_name} ${s.width}x${s.height}`)).toEqual(['h264 640x360', 'h264 640x360']);
    expect(hls.streams.filter((s) => s.codec_type === 'audio').map((s) => `${s.codec_name} ${s.sample_rate}`)).toContain('aac 48000');
    expect(Number(hls.format.duration)).toBeCloseTo(seconds, 0);

    const dash = await ffprobe(`${base}manifest.mpd`);
    expect(dash.format.format_name).toBe('dash');
    expect(dash.streams.filter((s) => s.codec_type === 'video').map((s) => `${s.codec_name} ${s.width}x${s.height}`).sort()).toEqual(['h264 640x360', 'h264 640x360']);
    expect(dash.streams.some((s) => s.codec_type === 'audio' && s.codec_name === 'aac')).toBe(true);
  });

  it('dash.js plays the DASH output of an RTMP publish from the origin\'s player page: playback advances, no fatal error', async () => {
    const publisher = publish(rtmpUrl, { seconds: 12, size: '640x360' });
    // The previous publish of this key ended (ENDLIST): wait for the new one's live playlist and dynamic MPD.
    await fetchUntil(`${base}360p/index.m3u8`, (body) => !body.includes('#EXT-X-ENDLIST') && /\n[0-9a-z]+-\d+\.m4s/.test(body));
    const mpd = await fetchUntil(`${base}manifest.mpd`, (body) => body.includes('type="dynamic"'));
    expect(mpd).toMatch(/<Representation id="360p"[^>]*codecs="avc1\.[0-9a-f]{6}" width="640" height="360" frameRate="30"/);
    expect(mpd).toMatch(/<Representation id="audio"[^>]*codecs="mp4a\.40\.2"/);
    const requests: string[] = [];
    const page = await browser!.open(`${base}?dash`, requests);
    try {
      const started = await waitForPlayer(page, 'dash.js to start playing', (s) => s.currentTime > 0.5 && !s.paused);
      expect(started.engine).toBe('dash');
      const from = (await playerState(page)).currentTime;
      const later = await waitForPlayer(page, 'dash.js to play 3 s more', (s) => s.currentTime >= from + 3 && !s.paused);
      console.log(`dash.js on live.yaml: ${from.toFixed(1)} s -> ${later.currentTime.toFixed(1)} s, errors ${JSON.stringify(later.errors)}`);
      expect(later.fatal).toBeNull();
      expect(later.videoWidth).toBe(640);
      // dash.js read the MPD and media segments (video and audio) from the origin, not anything else.
      expect(requests.some((url) => url.endsWith('/manifest.mpd'))).toBe(true);
      expect(requests.filter((url) => /\/(?:source|360p)\/[0-9a-z]+-\d+\.m4s$/.test(url)).length).toBeGreaterThan(1);
      expect(requests.some((url) => /\/audio\/[0-9a-z]+-\d+\.m4s$/.test(url))).toBe(true);
    } finally {
      await page.close();
    }
    expect((await publisher.exited).code).toBe(0);
    await fetchUntil(`${base}360p/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 5_000);
  });

  it('SRT in: the stream is served as `srt`, probed over HTTP, and ends with ENDLIST', async () => {
    const publisher = publish(`srt://127.0.0.1:${ports.srt}?pkt_size=1316`, { seconds: 4, size: '640x360' });
    const srtBase = `http://127.0.0.1:${ports.http}/live/srt/`;
    const master = await fetchUntil(`${srtBase}master.m3u8`, (body) => body.includes('360p/index.m3u8'));
    console.log(`SRT publish to first master playlist: ${Date.now() - publisher.startedAt} ms`);
    expect(master).toMatch(/RESOLUTION=640x360.*\n360p\/index\.m3u8/);
    expect((await publisher.exited).code).toBe(0);
    await fetchUntil(`${srtBase}360p/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 8_000);
    const probe = await ffprobe(`${srtBase}master.m3u8`);
    expect(probe.streams.filter((s) => s.codec_type === 'video').map((s) => `${s.codec_name} ${s.width}x${s.height}`)).toContain('h264 640x360');
    expect(probe.streams.some((s) => s.codec_type === 'audio' && s.codec_name === 'aac')).toBe(true);
    const frames = await videoPackets(`${srtBase}source/index.m3u8`);
    expect(frames.length).toBeGreaterThan(3 * 30);
    expect(frameSteps(frames, 30).steps).toEqual(new Set([1]));
  });
});

describe('bad input through the whole graph', () => {
  it('a second publisher on a live key is refused; ffmpeg SIGKILLed inside encode gives a discontinuity and the playlist goes on', async () => {
    const publisher = publish(rtmpUrl, { seconds: 9, size: '640x360' });
    const started = await run.waitForLog('a new ffmpeg for the publish', (l) => l.node === 'ladder' && l.msg.includes('ffmpeg started') && String(l.time) > new Date(publisher.startedAt).toISOString());
    await fetchUntil(`${base}360p/index.m3u8`, (body) => !body.includes('#EXT-X-ENDLIST') && /\n[0-9a-z]+-\d+\.m4s/.test(body));

    // A second publisher on the same key is refused at once; the first goes on.
    const second = publish(rtmpUrl, { seconds: 3, size: '320x240' });
    const refusedAt = Date.now();
    const refused = await second.exited;
    expect(refused.code).not.toBe(0);
    expect(Date.now() - refusedAt).toBeLessThan(3_000);
    const line = await run.waitForLog('the refusal', (l) => l.node === 'rtmp' && l.reason === 'refused' && /already live/.test(l.msg));
    expect(line.msg).toContain('node `rtmp` (pipelines/live.yaml:');
    expect(line.msg).not.toContain(key);
    expect(publisher.child.exitCode).toBeNull();

    // SIGKILL the encode's ffmpeg (a child of `streams`, its pid in the log).
    process.kill(started.pid!, 'SIGKILL');
    // The stream is named by its first four characters (keyForLog), never in full.
    const crash = await run.waitForLog('the crash logged', (l) => l.node === 'ladder' && String(l.stream).startsWith('live') && /restarting/.test(l.msg));
    expect(crash.msg).toMatch(/^node `ladder` \(pipelines\/live\.yaml:\d+\): stream live…: ffmpeg was killed by SIGKILL/);
    await run.waitForLog('the restart', (l) => l.node === 'ladder' && l.pid !== started.pid && /ffmpeg started/.test(l.msg) && String(l.time) > String(crash.time));
    // The playlist marks the restart and goes on with segments after it.
    const after = await fetchUntil(`${base}360p/index.m3u8`, (body) => /#EXT-X-DISCONTINUITY\n(?:.*\n)*?[0-9a-z]+-\d+\.m4s\n(?:.*\n)*?[0-9a-z]+-\d+\.m4s/.test(body), 10_000);
    expect(after).not.toContain('#EXT-X-ENDLIST');
    expect((await publisher.exited).code).toBe(0);
    await fetchUntil(`${base}360p/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 5_000);
  });

  it('a 1080p source into the ladder capped at 720p: 720p, 480p and 360p encoded, the source passed through, nothing above 720p encoded', async () => {
    await sleep(200);
    const publisher = publish(rtmpUrl, { seconds: 4, size: '1920x1080', rate: 10 });
    const master = await fetchUntil(`${base}master.m3u8`, (body) => ['source/', '720p/', '480p/', '360p/'].every((p) => body.includes(p)) && body.includes('1920x1080'), 15_000);
    const resolutions = [...master.matchAll(/RESOLUTION=(\d+x\d+).*\n([^\n]+)\/index\.m3u8/g)].map((m) => `${m[2]} ${m[1]}`).sort();
    expect(resolutions).toEqual(['360p 640x360', '480p 854x480', '720p 1280x720', 'source 1920x1080']);
    const startedLine = await run.waitForLog('the 1080p ladder', (l) => l.node === 'ladder' && Array.isArray(l.rungs) && (l.rungs as string[]).length === 3);
    expect(startedLine.rungs).toEqual(['720p', '480p', '360p']);
    expect((await publisher.exited).code).toBe(0);
    // The graph is still serving.
    expect((await fetch(`http://127.0.0.1:${ports.http}/healthz`)).status).toBe(200);
  });
});
