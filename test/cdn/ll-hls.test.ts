/**
 * Media awareness through a real edge: LL-HLS blocking playlist reloads
 * coalesced per (playlist, msn, part), the preload-hinted part requested
 * once as the playlist passes and streamed to every player, and prefetch
 * of the segments a playlist names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { blockingTarget, playlistLinks } from '../../nodes/cdn/edge/ll-hls.ts';
import { get, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

afterEach(stopAll);

function mediaPlaylist(msn: number, withHint: boolean, ended = false): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-TARGETDURATION:2', '#EXT-X-PART-INF:PART-TARGET=0.5', `#EXT-X-MEDIA-SEQUENCE:${msn - 2}`];
  for (let n = msn - 2; n <= msn; n++) lines.push('#EXTINF:2.0,', `seg-${n}.m4s`);
  if (withHint) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg-${msn + 1}.0.m4s"`);
  if (ended) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

describe('cache: LL-HLS', () => {
  it('coalesces blocking playlist reloads per (playlist, msn, part), whatever the order of the parameters', async () => {
    const origin = await startOrigin((request, response) => {
      const url = new URL(request.url!, 'http://o');
      // The origin holds a blocking reload until the part exists.
      setTimeout(() => {
        response.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'no-cache' });
        response.end(mediaPlaylist(Number(url.searchParams.get('_HLS_msn')), false));
      }, 150);
    });
    const edge = await startEdge(origin.url);
    const asks = [
      ...Array.from({ length: 20 }, () => '/live/index.m3u8?_HLS_msn=7&_HLS_part=1'),
      ...Array.from({ length: 20 }, () => '/live/index.m3u8?_HLS_part=1&_HLS_msn=7'),
      ...Array.from({ length: 20 }, () => '/live/index.m3u8?_HLS_msn=7&_HLS_part=2'),
    ];
    const answers = await Promise.all(asks.map((path) => get(`${edge.base}${path}`)));
    expect(answers.every((a) => a.status === 200 && a.body.toString().includes('seg-7.m4s'))).toBe(true);
    expect(origin.requests.map((r) => r.path).sort()).toEqual(['/live/index.m3u8?_HLS_msn=7&_HLS_part=1', '/live/index.m3u8?_HLS_msn=7&_HLS_part=2']);
    // The answer stays a moment for players arriving just after.
    expect((await get(`${edge.base}/live/index.m3u8?_HLS_msn=7&_HLS_part=2`)).headers.get('x-cache')).toBe('HIT');
  });

  it('requests the preload-hinted part once, as the playlist passes, and streams it to every player', async () => {
    let finishPart: (() => void) | undefined;
    const origin = await startOrigin((request, response) => {
      if (request.url === '/live/index.m3u8') {
        response.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'max-age=1' });
        return void response.end(mediaPlaylist(10, true));
      }
      if (request.url === '/live/seg-11.0.m4s') {
        // The origin holds a hinted part and sends it as it is cut.
        response.writeHead(200, { 'Content-Type': 'video/mp4', 'Cache-Control': 'max-age=60' });
        response.write('part-start;');
        finishPart = () => response.end('part-end');
        return;
      }
      response.writeHead(404);
      response.end();
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/live/index.m3u8`);
    await until(() => origin.count('/live/seg-11.0.m4s') === 1);
    const players = Promise.all(Array.from({ length: 3 }, () => get(`${edge.base}/live/seg-11.0.m4s`)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    finishPart!();
    const parts = await players;
    expect(parts.map((p) => [p.body.toString(), p.headers.get('x-cache')])).toEqual(Array.from({ length: 3 }, () => ['part-start;part-end', 'COALESCED']));
    expect(origin.count('/live/seg-11.0.m4s')).toBe(1);
  });

  it('prefetches the newest segments a live playlist names, and the first ones of a finished playlist', async () => {
    const origin = await startOrigin((request, response) => {
      if (request.url!.endsWith('.m3u8')) {
        response.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'max-age=0' });
        return void response.end(mediaPlaylist(request.url!.startsWith('/vod') ? 2 : 20, false, request.url!.startsWith('/vod')));
      }
      response.writeHead(200, { 'Content-Type': 'video/mp4', 'Cache-Control': 'max-age=60' });
      response.end(`bytes of ${request.url}`);
    });
    const edge = await startEdge(origin.url, { prefetch: 2 });
    await get(`${edge.base}/live/index.m3u8`);
    await until(() => origin.requests.length === 3);
    expect(origin.requests.slice(1).map((r) => r.path).sort()).toEqual(['/live/seg-19.m4s', '/live/seg-20.m4s']);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect((await get(`${edge.base}/live/seg-20.m4s`)).headers.get('x-cache')).toBe('HIT');
    // Refetched, the same playlist names nothing new: nothing more is prefetched.
    await get(`${edge.base}/live/index.m3u8`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(origin.requests.filter((r) => r.path.endsWith('.m4s'))).toHaveLength(2);
    await get(`${edge.base}/vod/index.m3u8`);
    await until(() => origin.requests.filter((r) => r.path.startsWith('/vod/seg')).length === 2);
    expect(origin.requests.filter((r) => r.path.startsWith('/vod/seg')).map((r) => r.path).sort()).toEqual(['/vod/seg-0.m4s', '/vod/seg-1.m4s']);
  });

  it('reads playlist links and blocking targets', () => {
    expect(playlistLinks(mediaPlaylist(5, true), '/a/b/index.m3u8')).toEqual({ segments: ['/a/b/seg-3.m4s', '/a/b/seg-4.m4s', '/a/b/seg-5.m4s'], preloadHint: '/a/b/seg-6.0.m4s', ended: false });
    expect(blockingTarget(new URL('http://e/x/index.m3u8?b=2&_HLS_part=3&a=1&_HLS_msn=9'))).toBe('/x/index.m3u8?_HLS_msn=9&_HLS_part=3&a=1&b=2');
    expect(blockingTarget(new URL('http://e/x/index.m3u8?a=1'))).toBeUndefined();
  });
});
