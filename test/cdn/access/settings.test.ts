import { describe, expect, it } from 'vitest';
import { accessSettingsSchema } from '../../../nodes/cdn/access/settings.ts';
import { redactSettings } from '../../../runtime/server/redaction.ts';

const key = 'a-signing-key-of-32-characters!!';

/** The issues of a settings value, as `path: message`. */
function issues(value: unknown): string[] {
  const result = accessSettingsSchema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('the access settings', () => {
  it('fill defaults: nothing protected, no proxy trusted', () => {
    expect(accessSettingsSchema.parse({})).toEqual({ signed: [], trust_proxy: 0, client_header: 'x-forwarded-for', ipv6_client_prefix: 64 });
  });

  it('read a full example', () => {
    const parsed = accessSettingsSchema.parse({
      signed: ['/private/'],
      sign_key: key,
      trust_proxy: true,
      client_header: 'X-Real-IP',
      ip: { allow: ['10.0.0.0/8', '::1'], deny: ['10.9.0.0/16'] },
      referrer: { allow: ['example.com', '*.example.com'], allow_empty: false },
      rate_limit: { rate: 20, burst: 40 },
      max_connections_per_client: 16,
      geo: { country_header: 'CF-IPCountry', table: 'config/geo-example.csv', deny: ['kp'] },
    });
    expect(parsed.trust_proxy).toBe(1);
    expect(parsed.client_header).toBe('x-real-ip');
    expect(parsed.rate_limit).toEqual({ rate: 20, burst: 40, max_clients: 100_000 });
    expect(parsed.geo).toEqual({ country_header: 'cf-ipcountry', table: 'config/geo-example.csv', deny: ['KP'], allow_unknown: true });
  });

  it('say which CIDR is wrong and how', () => {
    expect(issues({ ip: { deny: ['10.0.0.0/8', '10.1.2.3/8', 'nonsense'] } })).toEqual([
      'ip.deny.1: `10.1.2.3/8` has bits set past its /8 prefix (did you mean `10.0.0.0/8`?)',
      'ip.deny.2: `nonsense` is not an IP address or CIDR block (write `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`)',
    ]);
  });

  it('need a key for signed paths, and a long one, without quoting it', () => {
    expect(issues({ signed: ['/private/'] })).toEqual(['sign_key: `signed` paths need a `sign_key` (write `sign_key: ${env:CDN_SIGN_KEY}`)']);
    const short = issues({ signed: ['/private/'], sign_key: 'hunter2' });
    expect(short).toEqual(['sign_key: the signing key is too short: use at least 16 characters (`openssl rand -base64 32`)']);
    expect(short.join()).not.toContain('hunter2');
    // An environment value that spells a number arrives as one.
    expect(accessSettingsSchema.parse({ signed: ['/p/'], sign_key: 12345678901234567890 }).sign_key).toBe('12345678901234567000');
  });

  it('refuse bad prefixes, referrer patterns, countries, rates and unknown keys', () => {
    expect(issues({ signed: ['private/'], sign_key: key })).toEqual(['signed.0: a path prefix starts with `/`, such as `/private/`']);
    expect(issues({ referrer: { allow: ['https://example.com/'] } })[0]).toMatch(/^referrer\.allow\.0: `https:\/\/example\.com\/` is not a host name/);
    expect(issues({ geo: { country_header: 'cf-ipcountry', allow: ['France'] } })).toEqual(['geo.allow.0: a country is an ISO 3166 two-letter code such as `FR` or `US`']);
    expect(issues({ geo: { deny: ['KP'] } })).toEqual(['geo: geo rules need a `country_header`, a `table`, or both']);
    expect(issues({ rate_limit: { rate: 0 } })[0]).toMatch(/^rate_limit\.rate:/);
    expect(issues({ ip: { alow: ['10.0.0.0/8'] } })[0]).toMatch(/alow/);
  });

  it('hide the signing key wherever the settings are shown', () => {
    const shown = redactSettings({ origin: 'http://127.0.0.1:8080', access: { signed: ['/private/'], sign_key: key } }) as { access: { sign_key: string } };
    expect(shown.access.sign_key).toBe('[redacted]');
    expect(JSON.stringify(shown)).not.toContain(key);
  });
});
