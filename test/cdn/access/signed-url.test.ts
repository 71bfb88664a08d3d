import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalPath, checkSignature, signature, signingKey, signPath } from '../../../nodes/cdn/access/signed-url.ts';

const keyText = 'k3y-for-tests-0123456789';
const key = signingKey(keyText);
const now = Date.UTC(2026, 0, 1, 12, 0, 0);
const inAnHour = now / 1000 + 3600;

/** The query of a signed link, as the edge receives it. */
function queryOf(link: string): URLSearchParams {
  return new URLSearchParams(link.slice(link.indexOf('?') + 1));
}

describe('canonicalPath', () => {
  it.each([
    ['/private/a.m3u8', '/private/a.m3u8'],
    ['/public/../private/a.m3u8', '/private/a.m3u8'],
    ['/public/%2e%2e/private/a.m3u8', '/private/a.m3u8'],
    ['/%70rivate/a.m3u8', '/private/a.m3u8'],
    ['/private//a.m3u8', '/private/a.m3u8'],
    ['/./private/./a.m3u8', '/private/a.m3u8'],
    ['/public%2f..%2fprivate/a.m3u8', '/private/a.m3u8'],
    ['/../../private/a', '/private/a'],
    ['/private/x/..', '/private/'],
    ['/private/', '/private/'],
    ['/a%20b', '/a b'],
  ])('%s is %s', (path, canonical) => {
    expect(canonicalPath(path)).toBe(canonical);
  });

  it.each(['private/a', '/a%zz', '/a%c3', '/a%00b', ''])('refuses %j', (path) => {
    expect(canonicalPath(path)).toBeUndefined();
  });
});

describe('signed URLs', () => {
  it('follow the documented format: base64url HMAC-SHA256 of "expires\\ncanonical path"', () => {
    const link = signPath('/private/a.m3u8', inAnHour, key);
    const expected = createHmac('sha256', keyText).update(`${inAnHour}\n/private/a.m3u8`).digest('base64url');
    expect(link).toBe(`/private/a.m3u8?expires=${inAnHour}&sig=${expected}`);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('accept a valid link, with other query parameters added by the player', () => {
    const query = queryOf(signPath('/private/a.m3u8', inAnHour, key));
    query.set('_HLS_msn', '12');
    expect(checkSignature(key, '/private/a.m3u8', query, now)).toBeUndefined();
  });

  it('stay valid through the expiry second, expired after it', () => {
    const query = queryOf(signPath('/private/a.m3u8', inAnHour, key));
    expect(checkSignature(key, '/private/a.m3u8', query, inAnHour * 1000 + 999)).toBeUndefined();
    expect(checkSignature(key, '/private/a.m3u8', query, inAnHour * 1000 + 1000)).toBe('expired');
  });

  it('say unsigned when there is no signature', () => {
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams(''), now)).toBe('unsigned');
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams(`expires=${inAnHour}`), now)).toBe('unsigned');
  });

  it('refuse a tampered path, expiry or signature, and another key', () => {
    const link = signPath('/private/a.m3u8', inAnHour, key);
    const query = queryOf(link);
    expect(checkSignature(key, '/private/b.m3u8', query, now)).toBe('bad_signature');
    const later = new URLSearchParams(query);
    later.set('expires', String(inAnHour + 86_400));
    expect(checkSignature(key, '/private/a.m3u8', later, now)).toBe('bad_signature');
    const sig = query.get('sig')!;
    const flipped = new URLSearchParams(query);
    flipped.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    expect(checkSignature(key, '/private/a.m3u8', flipped, now)).toBe('bad_signature');
    expect(checkSignature(signingKey('another-key-0123456789'), '/private/a.m3u8', query, now)).toBe('bad_signature');
  });

  it('refuse malformed expiries and signatures of the wrong length without throwing', () => {
    const sig = signature(key, '/private/a.m3u8', inAnHour);
    for (const expires of ['', '-1', '1e9', ' 1', '0x10', '9999999999999']) {
      expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires, sig }), now)).toBe('bad_signature');
    }
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires: String(inAnHour), sig: `${sig}=` }), now)).toBe('bad_signature');
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires: String(inAnHour), sig: sig.slice(1) }), now)).toBe('bad_signature');
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires: String(inAnHour), sig: '€'.repeat(43) }), now)).toBe('bad_signature');
    // A character whose low byte spells the right one is still the wrong character.
    const lookalike = String.fromCharCode(sig.charCodeAt(0) + 0x100) + sig.slice(1);
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires: String(inAnHour), sig: lookalike }), now)).toBe('bad_signature');
    expect(checkSignature(key, '/private/a.m3u8', new URLSearchParams({ expires: String(inAnHour), sig: `${sig.slice(0, 42)}+` }), now)).toBe('bad_signature');
  });

  it('refuse an expired link with a forged signature as bad_signature, not expired', () => {
    const query = new URLSearchParams({ expires: '1000', sig: 'A'.repeat(43) });
    expect(checkSignature(key, '/private/a.m3u8', query, now)).toBe('bad_signature');
  });

  it('sign the canonical path, so a link written another way verifies the same', () => {
    const query = queryOf(signPath('/private/./a.m3u8', inAnHour, key));
    expect(checkSignature(key, '/private/a.m3u8', query, now)).toBeUndefined();
    expect(() => signPath('private/a', inAnHour, key)).toThrow('`private/a` is not a URL path');
    expect(() => signPath('/a', 1.5, key)).toThrow('whole seconds');
  });
});
