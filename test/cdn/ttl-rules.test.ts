/**
 * Freshness from the origin's headers and the node's rules, table-driven.
 */
import { describe, expect, it } from 'vitest';
import { compileRule, freshnessOf } from '../../nodes/cdn/edge/ttl-rules.ts';

const now = Date.parse('2026-12-02T12:00:00Z');
const defaults = { rules: [compileRule({ match: '*.m3u8', ttl: 1000 }), compileRule({ match: 'video/*', ttl: 86_400_000 }), compileRule({ match: 'seg-*.ts', ttl: 5000 })], defaultTtl: 60_000, staleWhileRevalidate: 2000, staleIfError: 30_000 };

function fresh(headers: Record<string, string>, path = '/x/file.bin', status = 200) {
  return freshnessOf({ status, headers, path, now }, defaults);
}

describe('freshness', () => {
  it.each([
    ['s-maxage wins over max-age', { 'cache-control': 'max-age=5, s-maxage=50' }, 50_000],
    ['max-age', { 'cache-control': 'public, max-age=7' }, 7000],
    ['no-cache stores for revalidation', { 'cache-control': 'no-cache' }, 0],
    ['Expires against Date', { expires: 'Wed, 02 Dec 2026 12:01:00 GMT', date: 'Wed, 02 Dec 2026 12:00:00 GMT' }, 60_000],
    ['an unparsable Expires is expired', { expires: '0' }, 0],
    ['nothing: default_ttl', {}, 60_000],
  ])('%s', (_name, headers, ttl) => {
    expect(fresh(headers)).toMatchObject({ cacheable: true, ttl });
  });

  it.each([
    ['no-store', { 'cache-control': 'no-store' }],
    ['private', { 'cache-control': 'private' }],
    ['set-cookie', { 'set-cookie': 'a=1' }],
    ['vary: *', { vary: '*' }],
  ])('never stores %s', (reason, headers) => {
    expect(fresh(headers)).toMatchObject({ cacheable: false, reason });
  });

  it('does not store a 500 or a 302, stores a 404', () => {
    expect(fresh({}, '/a', 500).cacheable).toBe(false);
    expect(fresh({}, '/a', 302).cacheable).toBe(false);
    expect(fresh({}, '/a', 404).cacheable).toBe(true);
  });

  it('lets rules by path glob, file name and content type override the origin', () => {
    expect(fresh({ 'cache-control': 'max-age=600' }, '/live/k/index.m3u8').ttl).toBe(1000);
    expect(fresh({ 'cache-control': 'no-cache', 'content-type': 'video/mp4; codecs="avc1"' }).ttl).toBe(86_400_000);
    expect(fresh({}, '/a/b/seg-12.ts').ttl).toBe(5000);
    expect(fresh({}, '/a/b/other-seg-12.ts').ttl).toBe(60_000);
    expect(fresh({ 'cache-control': 'private' }, '/live/index.m3u8').cacheable).toBe(false);
  });

  it('takes stale windows from the origin, else from the settings, none with must-revalidate', () => {
    expect(fresh({ 'cache-control': 'max-age=1, stale-while-revalidate=9, stale-if-error=99' })).toMatchObject({ swr: 9000, sie: 99_000 });
    expect(fresh({ 'cache-control': 'max-age=1' })).toMatchObject({ swr: 2000, sie: 30_000 });
    expect(fresh({ 'cache-control': 'max-age=1, must-revalidate' })).toMatchObject({ swr: 0, sie: 0 });
  });
});
