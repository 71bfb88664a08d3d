/**
 * Three hls.js players in Chromium play an ffmpeg-made HLS stream through
 * the edge at the same moment; the origin counts its requests: one per
 * playlist and segment whatever the number of players.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { startEdge, startOrigin, stopAll } from './edge-harness.ts';

const run = promisify(execFile);
const hlsJs = join(import.meta.dirname, '..', '..', 'node_modules', 'hls.js', 'dist', 'hls.min.js');

const page = `<!doctype html><html><body><video muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
  const video = document.querySelector('video');
  const hls = new Hls();
  window.fatal = null;
  hls.on(Hls.Events.ERROR, (_event, data) => { if (data.fatal) window.fatal = data.details; });
  hls.loadSource('/media/index.m3u8');
  hls.attachMedia(video);
  video.play();
</script></body></html>`;

let dir: string;
let browser: TestBrowser | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edge-hls-'));
  await run('nice', ['-n', '10', 'ffmpeg', '-v', 'error', '-y',
    '-f', 'lavfi', '-t', '4', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-t', '4', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-c:a', 'aac', '-b:a', '64k',
    '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', join(dir, 'index.m3u8')], { timeout: 60_000 });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await rm(dir, { recursive: true, force: true });
});

describe('cache: hls.js through the edge', () => {
  it('three players make one origin request per playlist and segment', async () => {
    const origin = await startOrigin((request, response) => {
      const path = request.url ?? '/';
      const send = (type: string, body: Buffer | string) => {
        response.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'max-age=60' });
        response.end(body);
      };
      if (path === '/') return send('text/html', page);
      if (path === '/hls.min.js') return void readFile(hlsJs).then((body) => send('text/javascript', body));
      const name = /^\/media\/([\w.-]+)$/.exec(path)?.[1];
      if (!name) return void response.writeHead(404).end();
      void readFile(join(dir, name)).then(
        (body) => send(name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t', body),
        () => response.writeHead(404).end(),
      );
    });
    const edge = await startEdge(origin.url);
    const pages = await Promise.all([1, 2, 3].map(() => browser!.open(`${edge.base}/`)));
    const state = () =>
      Promise.all(pages.map((p) => p.evaluate(() => {
        const g = globalThis as unknown as { fatal: string | null; document: { querySelector(s: string): { currentTime: number } } };
        return { time: g.document.querySelector('video').currentTime, fatal: g.fatal };
      })));
    let last: { time: number; fatal: string | null }[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      last = await state();
      if (last.every((s) => s.time > 3) || last.some((s) => s.fatal)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(last.map((s) => s.fatal)).toEqual([null, null, null]);
    expect(last.every((s) => s.time > 3)).toBe(true);
    const media = origin.requests.filter((r) => r.path.startsWith('/media/'));
    const segments = media.filter((r) => r.path.endsWith('.ts'));
    expect(segments.length).toBeGreaterThanOrEqual(4);
    const perPath = new Map<string, number>();
    for (const r of origin.requests) perPath.set(r.path, (perPath.get(r.path) ?? 0) + 1);
    expect([...perPath].filter(([, count]) => count !== 1)).toEqual([]);
    await Promise.all(pages.map((p) => p.close()));
  });
});
