import { describe, expect, it } from 'vitest';
import { contentTypeOf, keyProblem, normalisePrefix } from '../../native/s3/object-key.ts';
import { parseStoreUrl } from '../../native/s3/object-store.ts';

describe('object keys', () => {
  it.each(['a', 'live/cam1/720p/1a-3.m4s', 'a b/c%2Fd.mp4', 'x/.hidden', 'x/..y/z'])('accepts `%s`', (key) => {
    expect(keyProblem(key)).toBeUndefined();
  });

  it.each([
    ['', /non-empty/],
    ['/etc/passwd', /absolute/],
    ['../up', /`\.\.` part/],
    ['a/../../b', /`\.\.` part/],
    ['a/./b', /`\.` part/],
    ['a//b', /empty part/],
    ['a/', /empty part/],
    ['a\\b', /backslash/],
    ['a\u0000b', /control character/],
    ['k'.repeat(1025), /longer than 1024 bytes/],
  ])('refuses `%s`', (key, message) => {
    expect(keyProblem(key)).toMatch(message);
  });

  it('normalises prefixes to one trailing slash and checks their parts', () => {
    expect(normalisePrefix('')).toBe('');
    expect(normalisePrefix('/live//')).toBe('live/');
    expect(normalisePrefix('g/hls/')).toBe('g/hls/');
    expect(() => normalisePrefix('a/../b')).toThrow(/bad prefix: .*`\.\.` part/);
  });

  it('gives segments, inits and playlists their content types', () => {
    expect(contentTypeOf('a/1-2.m4s')).toBe('video/iso.segment');
    expect(contentTypeOf('a/init-x-1.mp4')).toBe('video/mp4');
    expect(contentTypeOf('a/index.m3u8')).toBe('application/vnd.apple.mpegurl');
    expect(contentTypeOf('a.b/noext')).toBe('application/octet-stream');
  });
});

describe('store URLs', () => {
  it('reads buckets, prefixes and folders', () => {
    expect(parseStoreUrl('s3://media/live/x')).toEqual({ kind: 's3', bucket: 'media', prefix: 'live/x' });
    expect(parseStoreUrl('s3://media')).toEqual({ kind: 's3', bucket: 'media', prefix: '' });
    expect(parseStoreUrl('objects')).toEqual({ kind: 'folder', path: 'objects' });
    expect(parseStoreUrl('file:///srv/objects')).toEqual({ kind: 'folder', path: '/srv/objects' });
    expect(parseStoreUrl('file:rel/dir')).toEqual({ kind: 'folder', path: 'rel/dir' });
  });

  it('refuses credentials in the URL, bad bucket names and other schemes', () => {
    expect(() => parseStoreUrl('s3://key:secret@media/live')).toThrow(/takes no credentials/);
    expect(() => parseStoreUrl('s3://Media_Bucket/x')).toThrow(/not a bucket name/);
    expect(() => parseStoreUrl('http://host/x')).toThrow(/is not `s3:\/\/bucket\/prefix`, `file:` or a folder/);
  });
});
