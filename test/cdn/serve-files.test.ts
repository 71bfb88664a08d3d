/**
 * `serve.files`, the folder origin, through the engine with raw HTTP
 * requests (fetch would normalise the paths the traversal cases need):
 * headers by rule, validators and 304s, ranges, streaming, paths that try
 * to leave the folder, pacing.
 */
import { mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../runtime/engine.ts';
import { freePort } from '../helpers/net.ts';
import { startYaml } from '../helpers/pipeline.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

let port = 0;
let engine: Engine;
const root = mkdtempSync(join(tmpdir(), 'serve-files-'));
const outside = mkdtempSync(join(tmpdir(), 'serve-files-outside-'));
const segment = Buffer.alloc(300_000, 7);

/** One request with the path sent exactly as written. */
function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function ready(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await get('/healthz')).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('serve.files did not start');
}

beforeAll(async () => {
  mkdirSync(join(root, 'live', 'a'), { recursive: true });
  writeFileSync(join(root, 'live', 'a', 'index.m3u8'), '#EXTM3U\n');
  writeFileSync(join(root, 'live', 'a', 'seg-1.m4s'), segment);
  writeFileSync(join(root, 'notes.txt'), 'hello');
  utimesSync(join(root, 'notes.txt'), new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
  writeFileSync(join(outside, 'secret.txt'), 'not yours');
  symlinkSync(join(outside, 'secret.txt'), join(root, 'escape.txt'));
  port = await freePort();
  engine = startYaml(`streams: 1
name: files
nodes:
  origin:
    op: serve.files
    with:
      listen: "127.0.0.1:${port}"
      root: ${root}
      tags: [{ match: "live/**", tags: [live] }, { match: "*.m4s", tags: [media, live] }]
`);
  await ready();
});

afterAll(async () => {
  await engine.drain({ deadlineMs: 5_000 });
});

describe('serve.files', () => {
  it('serves files with content types, cache lifetimes and tags by rule', async () => {
    const playlist = await get('/live/a/index.m3u8');
    expect(playlist.status).toBe(200);
    expect(playlist.headers['content-type']).toBe('application/vnd.apple.mpegurl');
    expect(playlist.headers['cache-control']).toBe('public, max-age=1');
    expect(playlist.headers['surrogate-key']).toBe('live');
    expect(playlist.body.toString()).toBe('#EXTM3U\n');
    const media = await get('/live/a/seg-1.m4s');
    expect(media.headers['cache-control']).toBe('public, max-age=86400');
    expect(media.headers['surrogate-key']).toBe('live media');
    expect(media.body.equals(segment)).toBe(true);
    const notes = await get('/notes.txt');
    expect(notes.headers['cache-control']).toBe('public, max-age=60');
    expect(notes.headers['surrogate-key']).toBeUndefined();
    expect(notes.headers['last-modified']).toBe('Thu, 01 Jan 2026 00:00:00 GMT');
  });

  it('answers validators with 304 and no body', async () => {
    const first = await get('/notes.txt');
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    const byTag = await get('/notes.txt', { 'If-None-Match': `"other", ${etag}` });
    expect(byTag.status).toBe(304);
    expect(byTag.body.length).toBe(0);
    expect((await get('/notes.txt', { 'If-None-Match': '"other"' })).status).toBe(200);
    expect((await get('/notes.txt', { 'If-Modified-Since': 'Thu, 01 Jan 2026 00:00:00 GMT' })).status).toBe(304);
    expect((await get('/notes.txt', { 'If-Modified-Since': 'Wed, 31 Dec 2025 23:59:59 GMT' })).status).toBe(200);
  });

  it('serves single byte ranges, 416 past the end, and HEAD without a body', async () => {
    const part = await get('/live/a/seg-1.m4s', { Range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${segment.length}`);
    expect(part.body.equals(segment.subarray(100, 200))).toBe(true);
    const tail = await get('/live/a/seg-1.m4s', { Range: 'bytes=-10' });
    expect(tail.body.length).toBe(10);
    expect((await get('/live/a/seg-1.m4s', { Range: `bytes=${segment.length}-` })).status).toBe(416);
    const head = await get('/live/a/seg-1.m4s', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(segment.length));
    expect(head.body.length).toBe(0);
  });

  it('refuses paths that could leave the folder before looking', async () => {
    for (const path of ['/../etc/passwd', '/live/%2e%2e/%2e%2e/etc/passwd', '/live%2f..%2fnotes.txt', '/live/a/..%5c..%5cnotes.txt', '/notes.txt%00.m3u8', '/%252e%252e/notes.txt', `/${'a'.repeat(5000)}`, '/live//a/index.m3u8']) {
      const answer = await get(path);
      expect(answer.status, path).toBe(400);
      expect(answer.body.toString(), path).not.toContain('not yours');
    }
    // A symbolic link out of the folder is not followed.
    expect((await get('/escape.txt')).status).toBe(404);
    expect((await get('/live/a/')).status).toBe(404);
    expect((await get('/missing.m4s')).status).toBe(404);
    expect((await get('/notes.txt', {}, 'DELETE')).status).toBe(405);
  });
});

describe('serve.files max_rate', () => {
  it('paces a body to the rate', async () => {
    const slowPort = await freePort();
    writeFileSync(join(root, 'big.bin'), Buffer.alloc(256 * 1024, 1));
    const slow = startYaml(`streams: 1
name: slow-files
nodes:
  origin:
    op: serve.files
    with: { listen: "127.0.0.1:${slowPort}", root: ${root}, max_rate: 512KiB }
`);
    try {
      const saved = port;
      port = slowPort;
      await ready();
      const started = Date.now();
      const answer = await get('/big.bin');
      port = saved;
      expect(answer.body.length).toBe(256 * 1024);
      // 256 KiB at 512 KiB/s: half a second.
      expect(Date.now() - started).toBeGreaterThanOrEqual(480);
    } finally {
      await slow.drain({ deadlineMs: 5_000 });
    }
  });
});
