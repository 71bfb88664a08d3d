import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSignature, signingKey } from '../../../nodes/cdn/access/signed-url.ts';

const key = 'cli-test-key-0123456789abcdef';

function streams(args: string[], signKey: string | undefined): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.CDN_SIGN_KEY;
  if (signKey !== undefined) env.CDN_SIGN_KEY = signKey;
  const result = spawnSync(process.execPath, ['bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('streams sign', () => {
  it('prints a signed path the edge accepts, valid for the duration asked', () => {
    const before = Date.now();
    const result = streams(['sign', '/private/a.m3u8', '--expires', '1h'], key);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const match = /^\/private\/a\.m3u8\?expires=(\d+)&sig=([A-Za-z0-9_-]{43})\n$/.exec(result.stdout);
    expect(match, result.stdout).not.toBeNull();
    const expires = Number(match![1]);
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 3600);
    expect(expires).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3601);
    const query = new URLSearchParams(result.stdout.trim().split('?')[1]);
    expect(checkSignature(signingKey(key), '/private/a.m3u8', query, Date.now())).toBeUndefined();
    expect(checkSignature(signingKey(key), '/private/a.m3u8', query, (expires + 1) * 1000)).toBe('expired');
    expect(result.stdout).not.toContain(key);
  });

  it('prints a full URL with --base', () => {
    const result = streams(['sign', '/private/a.m3u8', '--expires', '30m', '--base', 'http://127.0.0.1:18200/'], key);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^http:\/\/127\.0\.0\.1:18200\/private\/a\.m3u8\?expires=\d+&sig=[A-Za-z0-9_-]{43}\n$/);
  });

  it('reads the key from --env-file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-sign-'));
    writeFileSync(join(dir, 'edge.env'), `CDN_SIGN_KEY=${key}\n`);
    const result = streams(['sign', '/private/b.ts', '--expires', '5m', '--env-file', join(dir, 'edge.env')], undefined);
    expect(result.code).toBe(0);
    const query = new URLSearchParams(result.stdout.trim().split('?')[1]);
    expect(checkSignature(signingKey(key), '/private/b.ts', query, Date.now())).toBeUndefined();
  });

  it('exits 2 with a clear message when the key is unset or too short, never printing it', () => {
    const unset = streams(['sign', '/private/a.m3u8', '--expires', '1h'], undefined);
    expect(unset.code).toBe(2);
    expect(unset.stdout).toBe('');
    expect(unset.stderr).toBe('streams: the environment variable `CDN_SIGN_KEY` is not set: export the key the edge uses (`access.sign_key`), or pass --env-file FILE\n');
    const short = streams(['sign', '/private/a.m3u8', '--expires', '1h'], 'tiny-secret');
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('`CDN_SIGN_KEY` is too short');
    expect(short.stderr + short.stdout).not.toContain('tiny-secret');
  });

  it('exits 2 on a bad path, duration or base URL', () => {
    expect(streams(['sign', 'private/a', '--expires', '1h'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('`private/a` is not a URL path') });
    expect(streams(['sign', '/a?x=1', '--expires', '1h'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('no `?` or `#`') });
    expect(streams(['sign', '/private/a'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('sign needs --expires') });
    expect(streams(['sign', '/private/a', '--expires', '3600'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('--expires: `3600` is not a duration') });
    expect(streams(['sign', '/private/a', '--expires', '0s'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('valid for some time') });
    expect(streams(['sign', '/private/a', '--expires', '1h', '--base', 'ftp://x'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('must be an http:// or https:// URL') });
    expect(streams(['sign', '--expires', '1h'], key)).toMatchObject({ code: 2, stderr: expect.stringContaining('sign takes one PATH') });
  });
});
