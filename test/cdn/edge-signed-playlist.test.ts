/**
 * Signed playlists through the `cache` operator: a player given one signed
 * link to a master playlist under a protected prefix follows every link it
 * finds (variants, renditions, maps, segments, parts, preload hints,
 * rendition reports), resolving each against the playlist's URL as hls.js
 * does, and every one opens; the cached playlist stays as the origin sent
 * it, and the signed copies are private to their client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { signPath, signingKey } from '../../nodes/cdn/access/signed-url.ts';
import { withoutSignature } from '../../nodes/cdn/cache.ts';
import { get, startEdge, startOrigin, stopAll } from './edge-harness.ts';

afterEach(stopAll);

const key = 'signed-playlist-key-0123456789';

const playlists: Record<string, string> = {
  '/private/live/master.m3u8': [
    '#EXTM3U',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aud"',
    'video/index.m3u8',
    '',
  ].join('\n'),
  '/private/live/video/index.m3u8': [
    '#EXTM3U',
    '#EXT-X-VERSION:9',
    '#EXT-X-TARGETDURATION:2',
    '#EXT-X-MAP:URI="init.mp4"',
    '#EXTINF:2.000,',
    '1.m4s',
    '#EXT-X-PART:DURATION=0.500,URI="2.0.m4s",INDEPENDENT=YES',
    '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="2.1.m4s"',
    '#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=2',
    '',
  ].join('\n'),
  '/private/live/audio/index.m3u8': ['#EXTM3U', '#EXT-X-TARGETDURATION:2', '#EXTINF:2.000,', '/private/live/audio/1.m4s', ''].join('\n'),
  '/open/index.m3u8': ['#EXTM3U', '#EXTINF:2.000,', 'a.m4s', ''].join('\n'),
};

/** Every URI a playlist names: its URI lines and `URI="..."` attributes. */
function linksOf(text: string): string[] {
  const links: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (!line.startsWith('#')) links.push(line.trim());
    for (const match of line.matchAll(/[:,]URI="([^"]*)"/g)) links.push(match[1]);
  }
  return links;
}

async function startSignedEdge() {
  const origin = await startOrigin((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    const playlist = playlists[path];
    if (playlist !== undefined) {
      response.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'max-age=60', ETag: '"v1"' });
      response.end(playlist);
      return;
    }
    response.writeHead(200, { 'Content-Type': 'video/mp4', 'Cache-Control': 'max-age=60' });
    response.end(`media ${path}`);
  });
  const edge = await startEdge(origin.url, { access: { signed: ['/private/'], sign_key: key } });
  return { origin, edge };
}

describe('cache: playlists served on a signed link', () => {
  it('signs every link inside, so a player following them from one signed master link gets every one', async () => {
    const { origin, edge } = await startSignedEdge();
    const expires = Math.floor(Date.now() / 1000) + 600;
    const start = `${edge.base}${signPath('/private/live/master.m3u8', expires, signingKey(key))}`;
    const fetched = new Map<string, number>();
    const queue = [start];
    while (queue.length > 0) {
      const url = queue.shift()!;
      const path = new URL(url).pathname;
      if (fetched.has(path)) continue;
      const answer = await get(url);
      fetched.set(path, answer.status);
      if (!path.endsWith('.m3u8') || answer.status !== 200) continue;
      const text = answer.body.toString();
      expect(answer.headers.get('cache-control')).toBe('private, no-store');
      expect(answer.headers.get('etag')).toBeNull();
      expect(Number(answer.headers.get('content-length'))).toBe(answer.body.length);
      for (const link of linksOf(text)) {
        const next = new URL(link, url);
        // Each link carries its own signature with the link's expiry; the unsigned one stays closed.
        expect(next.searchParams.get('expires')).toBe(String(expires));
        expect((await get(`${next.origin}${next.pathname}`)).status).toBe(403);
        queue.push(next.href);
      }
    }
    expect(Object.fromEntries(fetched)).toEqual({
      '/private/live/master.m3u8': 200,
      '/private/live/audio/index.m3u8': 200,
      '/private/live/video/index.m3u8': 200,
      '/private/live/video/init.mp4': 200,
      '/private/live/video/1.m4s': 200,
      '/private/live/video/2.0.m4s': 200,
      '/private/live/video/2.1.m4s': 200,
      '/private/live/audio/1.m4s': 200,
    });
  });

  it('rewrites the copy sent, from the store too, and keeps the cached playlist as the origin sent it', async () => {
    const { origin, edge } = await startSignedEdge();
    const expires = Math.floor(Date.now() / 1000) + 600;
    const link = `${edge.base}${signPath('/private/live/video/index.m3u8', expires, signingKey(key))}`;
    const first = await get(link);
    const second = await get(link);
    expect([first.headers.get('x-cache'), second.headers.get('x-cache')]).toEqual(['MISS', 'HIT']);
    expect(second.body.toString()).toBe(first.body.toString());
    expect(second.body.toString()).toMatch(/^1\.m4s\?expires=\d+&sig=[\w-]{43}$/m);
    // A later link with another expiry gets signatures of its own, from the same stored playlist.
    const later = await get(`${edge.base}${signPath('/private/live/video/index.m3u8', expires + 60, signingKey(key))}`);
    expect(later.body.toString()).toContain(`1.m4s?expires=${expires + 60}&sig=`);
    expect(origin.count('/private/live/video/index.m3u8')).toBe(1);
    const head = await get(link, {}, 'HEAD');
    expect([head.status, head.body.length, head.headers.get('cache-control')]).toEqual([200, 0, 'private, no-store']);
  });

  it('leaves playlists outside the protected prefixes as the origin sent them', async () => {
    const { edge } = await startSignedEdge();
    const open = await get(`${edge.base}/open/index.m3u8`);
    expect(open.body.toString()).toBe(playlists['/open/index.m3u8']);
    expect(open.headers.get('etag')).toBe('"v1"');
  });
});

describe('withoutSignature', () => {
  it('drops `expires` and `sig` and keeps the other parameters in order', () => {
    expect(withoutSignature('/p/a.m3u8', 'expires=1&sig=abc')).toBe('/p/a.m3u8');
    expect(withoutSignature('/p/a.m3u8', '_HLS_msn=5&expires=1&sig=abc&_HLS_part=2')).toBe('/p/a.m3u8?_HLS_msn=5&_HLS_part=2');
    expect(withoutSignature('/p/a.m3u8', '')).toBe('/p/a.m3u8');
    expect(withoutSignature('/p/a.m3u8', 'flag&sig=x')).toBe('/p/a.m3u8?flag');
  });
});
