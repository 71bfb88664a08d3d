import { describe, expect, it } from 'vitest';
import { accessSettingsSchema, createAccessPolicy, type AccessRequest } from '../../../nodes/cdn/access/policy.ts';
import { signPlaylistUris } from '../../../nodes/cdn/access/playlist-signing.ts';
import { signingKey, signPath } from '../../../nodes/cdn/access/signed-url.ts';

const keyText = 'playlist-key-0123456789abcdef';
const key = signingKey(keyText);
const now = Date.UTC(2026, 5, 1);
const expires = now / 1000 + 600;

const media = [
  '#EXTM3U',
  '#EXT-X-VERSION:9',
  '#EXT-X-MAP:URI="init-1-1.mp4"',
  '#EXTINF:2.000,',
  '1-5.m4s',
  '#EXT-X-PART:DURATION=0.500,URI="1-6.0.m4s",INDEPENDENT=YES',
  '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1-6.1.m4s"',
  '#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=6',
  '#EXT-X-DATERANGE:ID="ad",X-COM-URI="1-9.m4s"',
  '#EXTINF:2.000,',
  'https://other.example.com/private/x.m4s',
  '#EXTINF:2.000,',
  '/public/filler.m4s',
  '',
].join('\n');

/** The link a signed URI opens, as the edge would receive it. */
function requestOf(folder: string, uri: string): AccessRequest {
  const url = new URL(uri, `http://edge${folder}`);
  return { path: url.pathname, query: url.searchParams, ip: '192.0.2.1', headers: {} };
}

describe('signPlaylistUris', () => {
  const signed = signPlaylistUris(media, '/private/live/video/index.m3u8', expires, key, ['/private/']);
  const lines = signed.split('\n');

  it('signs segments, parts, the map, the preload hint and rendition reports under the protected prefix', () => {
    expect(lines[2]).toMatch(/^#EXT-X-MAP:URI="init-1-1\.mp4\?expires=\d+&sig=[\w-]{43}"$/);
    expect(lines[4]).toMatch(/^1-5\.m4s\?expires=\d+&sig=[\w-]{43}$/);
    expect(lines[5]).toMatch(/^#EXT-X-PART:DURATION=0\.500,URI="1-6\.0\.m4s\?expires=\d+&sig=[\w-]{43}",INDEPENDENT=YES$/);
    expect(lines[6]).toMatch(/^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1-6\.1\.m4s\?expires=\d+&sig=[\w-]{43}"$/);
    expect(lines[7]).toMatch(/^#EXT-X-RENDITION-REPORT:URI="\.\.\/audio\/index\.m3u8\?expires=\d+&sig=[\w-]{43}",LAST-MSN=6$/);
  });

  it('leaves other hosts, unprotected paths, non-URI attributes and comments alone', () => {
    expect(lines[8]).toBe('#EXT-X-DATERANGE:ID="ad",X-COM-URI="1-9.m4s"');
    expect(lines[10]).toBe('https://other.example.com/private/x.m4s');
    expect(lines[12]).toBe('/public/filler.m4s');
    expect(lines[0]).toBe('#EXTM3U');
    expect(signed.endsWith('\n')).toBe(true);
  });

  it('gives each URI a signature the policy accepts for the path it resolves to, and for no other', () => {
    const policy = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: keyText }));
    const folder = '/private/live/video/';
    for (const uri of ['1-5.m4s', '1-6.0.m4s', 'init-1-1.mp4', '../audio/index.m3u8']) {
      const line = lines.find((text) => text.includes(`${uri}?`))!;
      const written = /URI="([^"]+)"/.exec(line)?.[1] ?? line;
      expect(policy.admit(requestOf(folder, written), now).ok, uri).toBe(true);
      const moved = requestOf(folder, written.replace(uri.replace('../', ''), 'other.m4s'));
      expect(policy.admit(moved, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
    }
  });

  it('appends to a URI that has a query, before its fragment, and keeps CRLF line ends', () => {
    const body = '#EXTM3U\r\nseg.m4s?v=2#t=1\r\n';
    expect(signPlaylistUris(body, '/private/a/index.m3u8', expires, key, ['/private/'])).toMatch(/^#EXTM3U\r\nseg\.m4s\?v=2&expires=\d+&sig=[\w-]{43}#t=1\r\n$/);
  });
});

describe('AccessPolicy.signPlaylist', () => {
  it('propagates the expiry of the signed link the playlist was fetched on', () => {
    const policy = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: keyText }));
    const link = signPath('/private/live/master.m3u8', expires, key);
    const decision = policy.admit(requestOf('/', link), now);
    if (!decision.ok) throw new Error('a valid link expected');
    expect(decision.signedExpires).toBe(expires);
    const master = policy.signPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/index.m3u8\n', '/private/live/master.m3u8', decision.signedExpires!);
    const variant = master.split('\n')[2];
    expect(variant).toContain(`expires=${expires}&`);
    const opened = policy.admit(requestOf('/private/live/', variant), now);
    expect(opened).toMatchObject({ ok: true, signedExpires: expires });
    expect(policy.admit(requestOf('/private/live/', variant), (expires + 1) * 1000)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('marks no expiry on public paths', () => {
    const policy = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: keyText }));
    const decision = policy.admit(requestOf('/', '/public/a.m3u8'), now);
    expect(decision).toMatchObject({ ok: true });
    expect(decision.ok && decision.signedExpires).toBeUndefined();
  });
});
