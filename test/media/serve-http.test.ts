/**
 * `serve.http` driven with synthetic CMAF items and real HTTP requests on
 * loopback: content types and cache lifetimes, Range, CORS, 404s and path
 * traversal, blocking playlist reload and held parts (answered within
 * milliseconds of the item arriving), the DASH segment streamed while it is
 * cut, refused items, and the end of a stream.
 */
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import serveHttp from '../../nodes/media/serve-http.ts';
import type { CmafItem } from '../../media/segment.ts';
import type { Batch } from '../../runtime/api.ts';
import { batchOf, drive, fakeContext, VirtualClock, type FakeContext } from '../helpers/fake-context.ts';
import { audioInfo, end, init, llSettings, part, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';

const runs: (() => void)[] = [];
afterEach(() => {
  for (const stop of runs.splice(0)) stop();
});

let nextPort = 19550;

interface Origin {
  base: string;
  ctx: FakeContext<unknown>;
  push(...items: CmafItem[]): void;
}

async function origin(settings: Record<string, unknown> = {}, clock?: VirtualClock): Promise<Origin> {
  const port = nextPort++;
  const ctx = fakeContext(serveHttp, { listen: `127.0.0.1:${port}`, ...settings }, { clock }) as FakeContext<unknown>;
  const input = new Subject<Batch>();
  const run = drive(serveHttp.create(ctx as never), input);
  runs.push(() => run.unsubscribe());
  const deadline = Date.now() + 5000;
  while (!ctx.logs.some((log) => log.message === 'serving live streams')) {
    if (run.error !== undefined) throw run.error;
    if (Date.now() > deadline) throw new Error('origin did not listen');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { base: `http://127.0.0.1:${port}`, ctx, push: (...items) => input.next(batchOf(items)) };
}

/** Lets the sink apply what was pushed (it writes batches on a promise chain). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** A live stream `k` with video `v` and audio `a`: `segments` segments each and `open` parts of the next. */
async function liveStream(o: Origin, segments: number, open = 0, key = 'k', epoch: string | null = 'e'): Promise<void> {
  o.push({ ...init(key, 'v', videoInfo), epoch: epoch ?? undefined }, { ...init(key, 'a', audioInfo), epoch: epoch ?? undefined });
  for (let msn = 0; msn < segments; msn++) o.push(...segmentWithParts(key, 'v', msn), ...segmentWithParts(key, 'a', msn, { timescale: 48000 }));
  o.push(...segmentWithParts(key, 'v', segments).slice(0, open));
  await settle();
}

/** A raw GET, for paths `fetch` would normalise. */
function rawGet(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/`, { path }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serve.http', () => {
  it('serves playlists, inits, segments, parts, the MPD, the player page, its scripts and /healthz with the right headers', async () => {
    const o = await origin();
    await liveStream(o, 3, 2);
    const master = await fetch(`${o.base}/live/k/master.m3u8`);
    expect(master.status).toBe(200);
    expect(master.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    expect(master.headers.get('cache-control')).toBe('no-cache');
    expect(master.headers.get('access-control-allow-origin')).toBe('*');
    expect(await master.text()).toContain('v/index.m3u8');
    const media = await fetch(`${o.base}/live/k/v/index.m3u8`);
    expect(await media.text()).toContain('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="e-3.2.m4s"');
    const initResponse = await fetch(`${o.base}/live/k/v/init-e-1.mp4`);
    expect(initResponse.headers.get('content-type')).toBe('video/mp4');
    expect(initResponse.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const segment = await fetch(`${o.base}/live/k/v/e-1.m4s`);
    expect(segment.headers.get('content-type')).toBe('video/iso.segment');
    expect(segment.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await segment.arrayBuffer())).toEqual(Buffer.concat([0, 1, 2, 3].map((i) => part('k', 'v', 1, i).data)));
    const partResponse = await fetch(`${o.base}/live/k/v/e-3.1.m4s`);
    expect(partResponse.headers.get('cache-control')).toBe('public, max-age=1');
    expect(Buffer.from(await partResponse.arrayBuffer())).toEqual(part('k', 'v', 3, 1).data);
    const mpd = await fetch(`${o.base}/live/k/manifest.mpd`);
    expect(mpd.headers.get('content-type')).toBe('application/dash+xml');
    expect(await mpd.text()).toContain('<MPD ');
    const page = await fetch(`${o.base}/live/k/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('<script src="/_player/hls.js">');
    // An empty icon of its own, so the browser asks for no /favicon.ico (a 404 in the page's console).
    expect(html).toContain('<link rel="icon" href="data:,">');
    expect(await (await fetch(`${o.base}/live/k/?dash`)).text()).toContain('<script src="/_player/dash.js">');
    const hls = await fetch(`${o.base}/_player/hls.js`);
    expect(hls.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await hls.text()).length).toBeGreaterThan(100_000);
    expect((await (await fetch(`${o.base}/_player/dash.js`)).text())).toContain('MediaPlayer');
    expect(await (await fetch(`${o.base}/healthz`)).json()).toEqual({ ok: true, streams: 1 });
  });

  it('holds a master playlist asked for between the first and the last track\'s first segment, so no rung is left out', async () => {
    const o = await origin();
    o.push(init('k', 'v', videoInfo), init('k', 'a', audioInfo), ...segmentWithParts('k', 'v', 0));
    await settle();
    const pending = fetch(`${o.base}/live/k/master.m3u8`).then(async (response) => ({ at: Date.now(), text: await response.text() }));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const pushed = Date.now();
    o.push(...segmentWithParts('k', 'a', 0, { timescale: 48000 }));
    const answer = await pending;
    expect(answer.at - pushed).toBeLessThan(50);
    expect(answer.text).toContain('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="a"');
    expect(answer.text).toContain('AUDIO="aud"');
  });

  it('holds a master playlist back for `master_wait` after the stream starts, so a rung that starts later is listed', async () => {
    const o = await origin({ master_wait: '300ms' });
    const started = Date.now();
    o.push(init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0));
    await settle();
    const pending = fetch(`${o.base}/live/k/master.m3u8`).then(async (response) => ({ at: Date.now(), text: await response.text() }));
    await new Promise((resolve) => setTimeout(resolve, 150));
    o.push(init('k', 'low', { ...videoInfo, width: 320, height: 180 }), ...segmentWithParts('k', 'low', 0));
    const answer = await pending;
    expect(answer.at - started).toBeGreaterThanOrEqual(290);
    expect(answer.text).toContain('low/index.m3u8');
    expect(answer.text).toContain('v/index.m3u8');
  });

  it('holds the master playlist for `master_wait` of the runtime\'s clock, not of the wall clock', async () => {
    const clock = new VirtualClock(Date.now());
    const o = await origin({ master_wait: '3s' }, clock);
    o.push(init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0));
    await settle();
    let answered = false;
    const pending = fetch(`${o.base}/live/k/master.m3u8`).then(async (response) => {
      answered = true;
      return response.text();
    });
    clock.advance(2_900);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(answered).toBe(false);
    o.push(init('k', 'low', { ...videoInfo, width: 320, height: 180 }), ...segmentWithParts('k', 'low', 0));
    await settle();
    clock.advance(100);
    const text = await Promise.race([pending, new Promise<string>((resolve) => setTimeout(() => resolve('still held'), 1000))]);
    expect(text).toContain('low/index.m3u8');
  });

  it('answers a held master playlist as soon as every rendition the encoder announced has a segment, before `master_wait`', async () => {
    const clock = new VirtualClock(Date.now());
    const o = await origin({ master_wait: '3s' }, clock);
    const renditions = ['v', 'low'];
    o.push({ ...init('k', 'v', videoInfo), renditions }, init('k', 'a', audioInfo), ...segmentWithParts('k', 'v', 0), ...segmentWithParts('k', 'a', 0, { timescale: 48000 }));
    await settle();
    let answered = false;
    const pending = fetch(`${o.base}/live/k/master.m3u8`).then(async (response) => {
      answered = true;
      return response.text();
    });
    // `low` is announced but not there yet: the master waits for it (the clock never reaches `master_wait` in this test).
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(answered).toBe(false);
    o.push({ ...init('k', 'low', { ...videoInfo, width: 320, height: 180 }), renditions });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    o.push(...segmentWithParts('k', 'low', 0));
    const text = await Promise.race([pending, new Promise<string>((resolve) => setTimeout(() => resolve('still held'), 1000))]);
    expect(text).toContain('low/index.m3u8');
    expect(text).toContain('v/index.m3u8');
    expect(text).toContain('GROUP-ID="aud"');
  });

  it('answers byte ranges with 206, and an unsatisfiable one with 416', async () => {
    const o = await origin();
    await liveStream(o, 1);
    const range = await fetch(`${o.base}/live/k/v/e-0.m4s`, { headers: { Range: 'bytes=100-199' } });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe('bytes 100-199/400');
    expect(Buffer.from(await range.arrayBuffer())).toEqual(part('k', 'v', 0, 1).data);
    const suffix = await fetch(`${o.base}/live/k/v/e-0.m4s`, { headers: { Range: 'bytes=-50' } });
    expect(suffix.headers.get('content-range')).toBe('bytes 350-399/400');
    const beyond = await fetch(`${o.base}/live/k/v/e-0.m4s`, { headers: { Range: 'bytes=400-' } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe('bytes */400');
    // An invalid range (last before first) is ignored: the whole body, 200.
    const backwards = await fetch(`${o.base}/live/k/v/e-0.m4s`, { headers: { Range: 'bytes=5-2' } });
    expect(backwards.status).toBe(200);
    expect(Buffer.from(await backwards.arrayBuffer())).toHaveLength(400);
  });

  it('answers a CORS preflight, and sends no CORS headers with `cors: false`', async () => {
    const o = await origin();
    const preflight = await fetch(`${o.base}/live/k/master.m3u8`, { method: 'OPTIONS', headers: { Origin: 'http://player.test', 'Access-Control-Request-Headers': 'range' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('Range');
    const closed = await origin({ cors: false });
    await liveStream(closed, 1);
    expect((await fetch(`${closed.base}/live/k/master.m3u8`)).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('404s unknown streams, tracks, segments and parts, and every path that tries to climb out', async () => {
    const o = await origin();
    await liveStream(o, 6);
    for (const path of ['/live/nope/master.m3u8', '/live/k/x/index.m3u8', '/live/k/v/e-0.m4s', '/live/k/v/e-9.m4s', '/live/k/v/e-1.0.m4s', '/live/k/v/init-e-2.mp4', '/other', '/live/k/v/index.m3u8x']) {
      expect((await fetch(`${o.base}${path}`)).status, path).toBe(404);
    }
    for (const path of ['/live/../package.json', '/live/k/../../package.json', '/live/%2e%2e/package.json', '/live/k/..%2f..%2fpackage.json/index.m3u8', '/live/k/v/..%2f..%2f..%2fpackage.json', '/_player/../package.json', '/live/k/.%2e/v/init-e-1.mp4']) {
      expect(await rawGet(o.base, path), path).toBe(404);
    }
    expect((await fetch(`${o.base}/live/k/manifest.mpd`)).status).toBe(200);
  });

  it('blocking reload: a request for the next part is answered within 50 ms of the part arriving, with it listed', async () => {
    const o = await origin();
    await liveStream(o, 2, 1);
    const asked = Date.now();
    const pending = fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=2&_HLS_part=1`).then(async (response) => ({ at: Date.now(), status: response.status, text: await response.text() }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pushed = Date.now();
    o.push(part('k', 'v', 2, 1));
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.at - asked).toBeGreaterThanOrEqual(290);
    expect(answer.at - pushed).toBeLessThan(50);
    expect(answer.text).toContain('URI="e-2.1.m4s"');
    expect(answer.text).toContain('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="e-2.2.m4s"');
    // Already there: at once. A finished segment satisfies a request without `_HLS_part`.
    const ready = await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=1`);
    expect(ready.status).toBe(200);
  });

  it('says in `X-Streams-Closed-At` when the newest listed part\'s closing packet reached the engine', async () => {
    const o = await origin();
    await liveStream(o, 1, 0);
    o.push({ ...part('k', 'v', 1, 0), closedAt: 1_700_000_000_123 });
    await settle();
    const response = await fetch(`${o.base}/live/k/v/index.m3u8`);
    expect(response.headers.get('x-streams-closed-at')).toBe('1700000000123');
    // Items without the stamp (another packager): no header.
    expect((await fetch(`${o.base}/live/k/a/index.m3u8`)).headers.get('x-streams-closed-at')).toBeNull();
  });

  it('sets the player page\'s hls.js aim from the stream\'s parts: PART-HOLD-BACK, and back to live past it plus a segment', async () => {
    const o = await origin();
    await liveStream(o, 1, 0);
    const page = await (await fetch(`${o.base}/live/k/`)).text();
    // llSettings: 2 s segments, 0.5 s parts.
    expect(page).toContain('new Hls({"lowLatencyMode":true,"maxLiveSyncPlaybackRate":1,"liveSyncDuration":1.5,"liveMaxLatencyDuration":3.5,"liveSyncOnStallIncrease":0.5})');
    expect(page).toContain('setInterval(function keepLive()');
    o.push(init('plain', 'v', videoInfo, { segment: 4, window: 4 }), ...segmentWithParts('plain', 'v', 0));
    await settle();
    const plain = await (await fetch(`${o.base}/live/plain/`)).text();
    expect(plain).toContain('new Hls({"lowLatencyMode":true,"maxLiveSyncPlaybackRate":1.5})');
    // Without parts hls.js's own speed-up works (segments give it more than a second ahead): no page catch-up.
    expect(plain).not.toContain('keepLive');
  });

  it('blocking reload: 400 for a request too far ahead or malformed, 503 when nothing comes within three target durations', async () => {
    const o = await origin();
    o.push(init('k', 'v', videoInfo, { segment: 0.2, part: 0.1, window: 4 }));
    await settle();
    expect((await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=4`)).status).toBe(400);
    expect((await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_part=1`)).status).toBe(400);
    expect((await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=x`)).status).toBe(400);
    expect((await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=0&_HLS_part=9`)).status).toBe(400);
    const asked = Date.now();
    const late = await fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=0&_HLS_part=0`);
    expect(late.status).toBe(503);
    // The target duration rounds up to 1 s: three of them.
    expect(Date.now() - asked).toBeGreaterThanOrEqual(2900);
  });

  it('holds a preload-hinted part until it is complete, and 404s one the segment closed without', async () => {
    const o = await origin();
    await liveStream(o, 1, 2);
    const pending = fetch(`${o.base}/live/k/v/e-1.2.m4s`).then(async (response) => ({ at: Date.now(), status: response.status, body: Buffer.from(await response.arrayBuffer()) }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const pushed = Date.now();
    o.push(part('k', 'v', 1, 2));
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.at - pushed).toBeLessThan(50);
    expect(answer.body).toEqual(part('k', 'v', 1, 2).data);
    const never = fetch(`${o.base}/live/k/v/e-1.3.m4s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const segment = segmentWithParts('k', 'v', 1, { parts: 3 }).at(-1)!;
    o.push(segment);
    expect((await never).status).toBe(404);
    expect((await fetch(`${o.base}/live/k/v/e-7.0.m4s`)).status).toBe(404);
  });

  it('streams the segment being cut as its parts arrive (low-latency DASH), ending when it is finished', async () => {
    const o = await origin();
    await liveStream(o, 1, 1);
    const response = await fetch(`${o.base}/live/k/v/e-1.m4s`);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!)).toEqual(part('k', 'v', 1, 0).data);
    const items = segmentWithParts('k', 'v', 1);
    o.push(items[1]);
    const second = await reader.read();
    expect(Buffer.from(second.value!)).toEqual(part('k', 'v', 1, 1).data);
    o.push(...items.slice(2));
    const rest: Buffer[] = [];
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest.push(Buffer.from(chunk.value));
    expect(Buffer.concat(rest)).toEqual(Buffer.concat([part('k', 'v', 1, 2).data, part('k', 'v', 1, 3).data]));
  });

  it('sends items with unsafe names, items before their init and streams past `max_streams` to the dead-letter port', async () => {
    const o = await origin({ max_streams: 1 });
    await liveStream(o, 1);
    o.push(init('../etc', 'v', videoInfo), init('k', 'a/b', videoInfo), part('k', 'nope', 0, 0), init('second', 'v', videoInfo), { nonsense: true } as never);
    await settle();
    expect(o.ctx.failures.map((f) => f.reason)).toEqual([
      expect.stringContaining('not a safe URL path segment'),
      expect.stringContaining('track `a/b` is not a safe URL path segment'),
      expect.stringContaining('before its track'),
      expect.stringContaining('`max_streams`'),
      expect.stringContaining('not a CMAF item'),
    ]);
    expect(JSON.stringify(o.ctx.logs)).not.toContain('second');
    expect((await fetch(`${o.base}/live/second/master.m3u8`)).status).toBe(404);
  });

  it('ends the playlists at the end of a stream, answers a waiting request at once, and drops the stream after `keep_ended`', async () => {
    const o = await origin({ keep_ended: '300ms' });
    await liveStream(o, 2, 1);
    const waiting = fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=2&_HLS_part=3`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    o.push(end('k'));
    const answered = await waiting;
    expect(answered.status).toBe(200);
    expect(await answered.text()).toMatch(/#EXT-X-ENDLIST\n$/);
    expect((await fetch(`${o.base}/live/k/v/e-1.m4s`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await fetch(`${o.base}/live/k/master.m3u8`)).status).toBe(404);
    expect(await (await fetch(`${o.base}/healthz`)).json()).toEqual({ ok: true, streams: 0 });
  });

  it('starts a stream afresh under its new epoch when it publishes again, so no URL of the old publish names new bytes', async () => {
    const o = await origin();
    await liveStream(o, 3);
    o.push(end('k'));
    await liveStream(o, 2, 0, 'k', 'f');
    const text = await (await fetch(`${o.base}/live/k/v/index.m3u8`)).text();
    expect(text.match(/^[a-z0-9]+-\d+\.m4s$/gm)).toEqual(['f-0.m4s', 'f-1.m4s']);
    expect(text).toContain('#EXT-X-MAP:URI="init-f-1.mp4"');
    expect(text).not.toContain('#EXT-X-ENDLIST');
    for (const old of ['e-0.m4s', 'e-1.m4s', 'init-e-1.mp4']) expect((await fetch(`${o.base}/live/k/v/${old}`)).status).toBe(404);
    expect((await fetch(`${o.base}/live/k/v/f-0.m4s`)).status).toBe(200);
  });

  it('gives a publish without an epoch one of its own after the end, and goes on under the same epoch before it', async () => {
    const o = await origin();
    await liveStream(o, 2, 0, 'k', null);
    const first = (await (await fetch(`${o.base}/live/k/v/index.m3u8`)).text()).match(/^([a-z0-9]+)-0\.m4s$/m)![1];
    o.push(end('k'));
    await liveStream(o, 2, 0, 'k', null);
    const second = (await (await fetch(`${o.base}/live/k/v/index.m3u8`)).text()).match(/^([a-z0-9]+)-0\.m4s$/m)![1];
    expect(second).not.toBe(first);
    expect((await fetch(`${o.base}/live/k/v/${first}-0.m4s`)).status).toBe(404);
  });

  it('continues the window of an ended stream when the same epoch publishes again: numbering goes on, after a discontinuity', async () => {
    const o = await origin();
    await liveStream(o, 2);
    o.push(end('k'));
    o.push(init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 2, { discontinuity: true }));
    await settle();
    const text = await (await fetch(`${o.base}/live/k/v/index.m3u8`)).text();
    expect(text.match(/^e-\d+\.m4s$/gm)).toEqual(['e-0.m4s', 'e-1.m4s', 'e-2.m4s']);
    expect(text.indexOf('#EXT-X-DISCONTINUITY\n')).toBeGreaterThan(text.indexOf('e-1.m4s'));
    expect(text).not.toContain('#EXT-X-ENDLIST');
  });

  it('keeps only the window: old segments are gone, a stream of 100 segments holds 4', async () => {
    const o = await origin();
    o.push(init('k', 'v', videoInfo, { ...llSettings, window: 4 }));
    for (let msn = 0; msn < 100; msn++) o.push(...segmentWithParts('k', 'v', msn));
    await settle();
    expect((await fetch(`${o.base}/live/k/v/e-95.m4s`)).status).toBe(404);
    expect((await fetch(`${o.base}/live/k/v/e-96.m4s`)).status).toBe(200);
    const text = await (await fetch(`${o.base}/live/k/v/index.m3u8`)).text();
    expect(text.match(/^e-\d+\.m4s$/gm)).toEqual(['e-96.m4s', 'e-97.m4s', 'e-98.m4s', 'e-99.m4s']);
  });

  it('bounds requests held per stream: past `max_waiting_per_stream` 503 with Retry-After; a client that leaves frees its place', async () => {
    const o = await origin({ max_waiting_per_stream: 2 });
    await liveStream(o, 2, 1);
    const url = `${o.base}/live/k/v/index.m3u8?_HLS_msn=2&_HLS_part=2`;
    const leaving = new AbortController();
    const first = fetch(url, { signal: leaving.signal }).catch(() => 'aborted');
    const second = fetch(url);
    await settle();
    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    // Another stream is bounded on its own.
    await liveStream(o, 1, 1, 'other');
    const elsewhere = fetch(`${o.base}/live/other/v/index.m3u8?_HLS_msn=1&_HLS_part=2`);
    leaving.abort();
    expect(await first).toBe('aborted');
    await settle();
    const third = fetch(url);
    await settle();
    o.push(part('k', 'v', 2, 1), part('k', 'v', 2, 2), part('other', 'v', 1, 1), part('other', 'v', 1, 2));
    expect((await second).status).toBe(200);
    expect((await third).status).toBe(200);
    expect((await elsewhere).status).toBe(200);
  });

  it('bounds requests held over all streams with `max_waiting`', async () => {
    const o = await origin({ max_waiting: 1 });
    await liveStream(o, 2, 1);
    await liveStream(o, 2, 1, 'other');
    const held = fetch(`${o.base}/live/k/v/index.m3u8?_HLS_msn=2&_HLS_part=2`);
    await settle();
    expect((await fetch(`${o.base}/live/other/v/e-2.1.m4s`)).status).toBe(503);
    o.push(part('k', 'v', 2, 1), part('k', 'v', 2, 2));
    expect((await held).status).toBe(200);
  });

  it('closes connections past `max_connections`', async () => {
    const o = await origin({ max_connections: 1 });
    const port = Number(new URL(o.base).port);
    const open = connect(port, '127.0.0.1');
    await new Promise((resolve) => open.once('connect', resolve));
    await settle();
    const extra = connect(port, '127.0.0.1');
    extra.on('error', () => undefined);
    const closed = await new Promise<boolean>((resolve) => {
      extra.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 1000);
    });
    open.destroy();
    expect(closed).toBe(true);
  });
});
