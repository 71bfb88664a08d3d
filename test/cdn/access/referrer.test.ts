import { describe, expect, it } from 'vitest';
import { compileReferrerRule, referrerAllowed, referrerHost, referrerPatternProblem } from '../../../nodes/cdn/access/referrer.ts';

describe('referrerHost', () => {
  it.each([
    ['https://example.com/page', 'example.com'],
    ['https://Player.Example.COM:8443/x?y#z', 'player.example.com'],
    ['http://user:pw@example.com/', 'example.com'],
    ['https://example.com', 'example.com'],
    ['https://example.com.', 'example.com'],
    ['https://[2001:db8::1]:8080/', '[2001:db8::1]'],
    ['https://evil.com?example.com', 'evil.com'],
    ['https://evil.com#@example.com', 'evil.com'],
  ])('%s names %s', (referrer, host) => {
    expect(referrerHost(referrer)).toBe(host);
  });

  it.each(['example.com', '://x', 'https://', 'https:///path', 'blocked'])('%j names no host', (referrer) => {
    expect(referrerHost(referrer)).toBeUndefined();
  });
});

describe('referrer rules', () => {
  const rule = compileReferrerRule(['example.com', '*.player.net'], false);

  it('allow listed hosts exactly and subdomains of a wildcard, not its bare domain or look-alikes', () => {
    expect(referrerAllowed(rule, 'https://example.com/watch')).toBe(true);
    expect(referrerAllowed(rule, 'https://EXAMPLE.com/watch')).toBe(true);
    expect(referrerAllowed(rule, 'https://www.example.com/')).toBe(false);
    expect(referrerAllowed(rule, 'https://a.player.net/')).toBe(true);
    expect(referrerAllowed(rule, 'https://a.b.player.net/')).toBe(true);
    expect(referrerAllowed(rule, 'https://player.net/')).toBe(false);
    expect(referrerAllowed(rule, 'https://evilplayer.net/')).toBe(false);
    expect(referrerAllowed(rule, 'https://example.com.evil.org/')).toBe(false);
    expect(referrerAllowed(rule, 'https://evil.org/?ref=https://example.com/')).toBe(false);
    expect(referrerAllowed(rule, 'garbage')).toBe(false);
  });

  it('treat an absent or empty referrer as allow_empty says', () => {
    expect(referrerAllowed(rule, undefined)).toBe(false);
    expect(referrerAllowed(rule, '')).toBe(false);
    const open = compileReferrerRule(['example.com'], true);
    expect(referrerAllowed(open, undefined)).toBe(true);
    expect(referrerAllowed(open, '')).toBe(true);
    expect(referrerAllowed(open, 'https://evil.org/')).toBe(false);
  });

  it('check patterns when the settings are read', () => {
    expect(referrerPatternProblem('example.com')).toBeUndefined();
    expect(referrerPatternProblem('*.example.com')).toBeUndefined();
    expect(referrerPatternProblem('https://example.com')).toMatch(/no scheme, port or path/);
    expect(referrerPatternProblem('example.com:8080')).toMatch(/is not a host name/);
    expect(referrerPatternProblem('*example.com')).toMatch(/is not a host name/);
    expect(referrerPatternProblem('a.*.com')).toMatch(/is not a host name/);
  });
});
