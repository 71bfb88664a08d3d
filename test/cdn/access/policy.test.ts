import { describe, expect, it } from 'vitest';
import { accessSettingsSchema, clientAddress, createAccessPolicy, limitKey, refusalReasons, type AccessDecision, type AccessRequest } from '../../../nodes/cdn/access/policy.ts';
import { signingKey, signPath } from '../../../nodes/cdn/access/signed-url.ts';

const key = 'edge-key-0123456789-abcdefghij';
const now = Date.UTC(2026, 5, 1);

/** A request as the cache would pass it: the link split into path and query. */
function request(link: string, ip = '192.0.2.10', headers: AccessRequest['headers'] = {}): AccessRequest {
  const mark = link.indexOf('?');
  return { path: mark < 0 ? link : link.slice(0, mark), query: new URLSearchParams(mark < 0 ? '' : link.slice(mark + 1)), ip, headers };
}

function policyOf(settings: unknown, secrets: { signKey?: string } = {}) {
  return createAccessPolicy(accessSettingsSchema.parse(settings), secrets);
}

function reasonOf(decision: AccessDecision): string {
  return decision.ok ? 'ok' : decision.reason;
}

describe('createAccessPolicy with no rules', () => {
  it('admits everything and counts nothing', () => {
    const policy = policyOf({});
    const decision = policy.admit(request('/anything?x=1'), now);
    expect(decision.ok).toBe(true);
    if (decision.ok) decision.release();
    expect(Object.values(policy.refusals()).every((count) => count === 0)).toBe(true);
    expect(Object.keys(policy.refusals()).sort()).toEqual([...refusalReasons].sort());
  });
});

describe('signed paths', () => {
  const policy = policyOf({ signed: ['/private/'], sign_key: key });
  const signed = (path: string, expires = now / 1000 + 60) => signPath(path, expires, signingKey(key));

  it('serve a valid link and public paths, refuse unsigned, expired and tampered ones with 403', () => {
    expect(reasonOf(policy.admit(request(signed('/private/a.m3u8')), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/public/a.m3u8'), now))).toBe('ok');
    const refused = policy.admit(request('/private/a.m3u8'), now);
    expect(refused).toMatchObject({ ok: false, status: 403, reason: 'unsigned' });
    expect(reasonOf(policy.admit(request(signed('/private/a.m3u8', now / 1000 - 1)), now))).toBe('expired');
    expect(reasonOf(policy.admit(request(signed('/private/a.m3u8').replace('/a.m3u8', '/b.m3u8')), now))).toBe('bad_signature');
    expect(reasonOf(policy.admit(request(signed('/private/a.m3u8').replace(/expires=\d+/, `expires=${now / 1000 + 999_999}`)), now))).toBe('bad_signature');
  });

  it('see through dot segments, percent-encoding and double slashes to the protected path', () => {
    for (const path of ['/public/../private/a.m3u8', '/%70rivate/a.m3u8', '/public/%2e%2e/private/a.m3u8', '/public%2F..%2Fprivate/a.m3u8', '//private/a.m3u8', '/./private/a.m3u8']) {
      expect(reasonOf(policy.admit(request(path), now)), path).toBe('unsigned');
    }
    // A link signed for one public path does not open a private one reached from it.
    const publicLink = signed('/public/x');
    const query = publicLink.slice(publicLink.indexOf('?'));
    expect(reasonOf(policy.admit(request(`/public/x/../../private/a.m3u8${query}`), now))).toBe('bad_signature');
    // A path that does not decode is refused rather than guessed at.
    expect(reasonOf(policy.admit(request('/private/%zz'), now))).toBe('bad_signature');
  });

  it('take the key from secrets over the settings', () => {
    const fromSecrets = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: 'a-key-nobody-signs-with-0000' }), { signKey: key });
    expect(reasonOf(fromSecrets.admit(request(signed('/private/a.m3u8')), now))).toBe('ok');
  });

  it('count each refusal by its reason', () => {
    const counted = policyOf({ signed: ['/private/'], sign_key: key });
    counted.admit(request('/private/a'), now);
    counted.admit(request('/private/b'), now);
    counted.admit(request(signed('/private/a', 1)), now);
    expect(counted.refusals()).toMatchObject({ unsigned: 2, expired: 1, bad_signature: 0 });
    // A copy: changing it changes nothing.
    counted.refusals().unsigned = 99;
    expect(counted.refusals().unsigned).toBe(2);
  });
});

describe('IP lists', () => {
  const policy = policyOf({ ip: { allow: ['192.0.2.0/24', '2001:db8::/32'], deny: ['192.0.2.66', '2001:db8:bad::/48'] } });

  it('allow listed blocks, refuse others, and let deny win', () => {
    expect(reasonOf(policy.admit(request('/a', '192.0.2.10'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '::ffff:192.0.2.10'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '2001:db8::5'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '198.51.100.1'), now))).toBe('ip_not_allowed');
    expect(reasonOf(policy.admit(request('/a', '192.0.2.66'), now))).toBe('ip_denied');
    expect(reasonOf(policy.admit(request('/a', '::ffff:192.0.2.66'), now))).toBe('ip_denied');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:bad::1'), now))).toBe('ip_denied');
    expect(reasonOf(policy.admit(request('/a', 'not-an-address'), now))).toBe('ip_not_allowed');
    expect(policy.refusals()).toMatchObject({ ip_denied: 3, ip_not_allowed: 2 });
  });

  it('use the address the trusted proxy saw, never the one a client wrote first', () => {
    const behindProxy = policyOf({ trust_proxy: true, ip: { deny: ['203.0.113.0/24'] } });
    // The client forged the first entry; the proxy (at 10.0.0.1) appended the real one.
    const forged = request('/a', '10.0.0.1', { 'x-forwarded-for': '192.0.2.1, 203.0.113.9' });
    expect(reasonOf(behindProxy.admit(forged, now))).toBe('ip_denied');
    expect(reasonOf(policyOf({ ip: { deny: ['203.0.113.0/24'] } }).admit(forged, now))).toBe('ok');
  });
});

describe('limitKey', () => {
  it('keeps IPv4 and unparsed addresses as they are and cuts IPv6 to the prefix', () => {
    const words = new Uint32Array([0x20010db8, 0x00010002, 0x12345678, 0x9abcdef0]);
    expect(limitKey('2001:db8:1:2:1234:5678:9abc:def0', true, words, 64)).toBe('20010db8:10002:/64');
    expect(limitKey('2001:db8:1:2:1234:5678:9abc:def0', true, words, 56)).toBe('20010db8:10000:/56');
    expect(limitKey('2001:db8:1:2:1234:5678:9abc:def0', true, words, 128)).toBe('2001:db8:1:2:1234:5678:9abc:def0');
    expect(limitKey('192.0.2.1', true, new Uint32Array([0, 0, 0xffff, 0xc0000201]), 64)).toBe('192.0.2.1');
    expect(limitKey('junk', false, words, 64)).toBe('junk');
  });
});

describe('clientAddress', () => {
  it('reads the n-th entry from the end of the client header when n proxies are trusted', () => {
    const req = request('/a', '10.0.0.1', { 'x-forwarded-for': '1.1.1.1, 2.2.2.2,3.3.3.3' });
    expect(clientAddress(req, 0, 'x-forwarded-for')).toBe('10.0.0.1');
    expect(clientAddress(req, 1, 'x-forwarded-for')).toBe('3.3.3.3');
    expect(clientAddress(req, 2, 'x-forwarded-for')).toBe('2.2.2.2');
    expect(clientAddress(req, 5, 'x-forwarded-for')).toBe('1.1.1.1');
    expect(clientAddress(request('/a', '10.0.0.1'), 1, 'x-forwarded-for')).toBe('10.0.0.1');
    expect(clientAddress(request('/a', '10.0.0.1', { 'x-real-ip': ['4.4.4.4'] }), 1, 'x-real-ip')).toBe('4.4.4.4');
    expect(clientAddress(request('/a', '::ffff:10.0.0.1'), 0, 'x-forwarded-for')).toBe('10.0.0.1');
    expect(clientAddress(request('/a', '10.0.0.1', { 'x-forwarded-for': '192.0.2.1:5678' }), 1, 'x-forwarded-for')).toBe('192.0.2.1');
    expect(clientAddress(request('/a', '10.0.0.1', { 'x-forwarded-for': '[2001:db8::1]:5678' }), 1, 'x-forwarded-for')).toBe('2001:db8::1');
    expect(clientAddress(request('/a', '10.0.0.1', { 'x-forwarded-for': '2001:db8::1' }), 1, 'x-forwarded-for')).toBe('2001:db8::1');
  });
});

describe('referrer rules', () => {
  it('refuse pages on other sites with 403 referrer', () => {
    const policy = policyOf({ referrer: { allow: ['*.example.com'], allow_empty: false } });
    expect(reasonOf(policy.admit(request('/a', undefined, { referer: 'https://www.example.com/watch' }), now))).toBe('ok');
    expect(policy.admit(request('/a', undefined, { referer: 'https://hotlinker.org/' }), now)).toMatchObject({ status: 403, reason: 'referrer' });
    expect(reasonOf(policy.admit(request('/a'), now))).toBe('referrer');
    expect(policy.refusals().referrer).toBe(2);
  });
});

describe('rate limits', () => {
  it('answer 429 with Retry-After from the bucket, per client', () => {
    const policy = policyOf({ rate_limit: { rate: 0.25, burst: 2 } });
    expect(reasonOf(policy.admit(request('/a', '192.0.2.1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '192.0.2.1'), now))).toBe('ok');
    expect(policy.admit(request('/a', '192.0.2.1'), now)).toEqual({ ok: false, status: 429, reason: 'rate_limited', headers: { 'Retry-After': '4' }, body: 'too many requests: slow down\n' });
    // The same client written the dual-stack way shares the bucket; another client has its own.
    expect(reasonOf(policy.admit(request('/a', '::ffff:192.0.2.1'), now))).toBe('rate_limited');
    expect(reasonOf(policy.admit(request('/a', '192.0.2.2'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '192.0.2.1'), now + 4000))).toBe('ok');
    expect(policy.refusals().rate_limited).toBe(2);
  });

  it('throttle signature guessing: a refused signature still takes a token', () => {
    const policy = policyOf({ signed: ['/private/'], sign_key: key, rate_limit: { rate: 1, burst: 3 } });
    const reasons = Array.from({ length: 5 }, (_, i) => reasonOf(policy.admit(request(`/private/a?expires=9999999999&sig=${'A'.repeat(42)}${i}`), now)));
    expect(reasons).toEqual(['bad_signature', 'bad_signature', 'bad_signature', 'rate_limited', 'rate_limited']);
  });

  it('count IPv6 clients by their /64, so rotating addresses in one network does not escape the limit', () => {
    const policy = policyOf({ rate_limit: { rate: 1, burst: 2 } });
    expect(reasonOf(policy.admit(request('/a', '2001:db8:1:2::1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:1:2:ffff::7'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:1:2:abcd::9'), now))).toBe('rate_limited');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:1:3::1'), now))).toBe('ok');
    const each = policyOf({ ipv6_client_prefix: 128, rate_limit: { rate: 1, burst: 1 } });
    expect(reasonOf(each.admit(request('/a', '2001:db8:1:2::1'), now))).toBe('ok');
    expect(reasonOf(each.admit(request('/a', '2001:db8:1:2::2'), now))).toBe('ok');
  });

  it('key clients by the proxy header when a proxy is trusted', () => {
    const policy = policyOf({ trust_proxy: 1, rate_limit: { rate: 1, burst: 1 } });
    const via = (client: string) => request('/a', '10.0.0.1', { 'x-forwarded-for': client });
    expect(reasonOf(policy.admit(via('192.0.2.1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(via('192.0.2.2'), now))).toBe('ok');
    expect(reasonOf(policy.admit(via('192.0.2.1'), now))).toBe('rate_limited');
  });
});

describe('the connection cap', () => {
  it('counts an IPv6 network\'s open requests together', () => {
    const policy = policyOf({ max_connections_per_client: 1 });
    expect(reasonOf(policy.admit(request('/a', '2001:db8:0:1::1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:0:1::2'), now))).toBe('too_many_connections');
  });

  it('refuses a client past its open requests with 429 until one ends, and ignores a double release', () => {
    const policy = policyOf({ max_connections_per_client: 2 });
    const first = policy.admit(request('/a'), now);
    const second = policy.admit(request('/b'), now);
    expect(policy.admit(request('/c'), now)).toEqual({ ok: false, status: 429, reason: 'too_many_connections', headers: { 'Retry-After': '1' }, body: 'too many requests: too many open at once from your address\n' });
    expect(reasonOf(policy.admit(request('/c', '192.0.2.99'), now))).toBe('ok');
    if (!first.ok || !second.ok) throw new Error('admitted requests expected');
    first.release();
    first.release();
    expect(reasonOf(policy.admit(request('/c'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/d'), now))).toBe('too_many_connections');
    expect(policy.refusals().too_many_connections).toBe(2);
  });

  it('holds no slot for a request refused by an earlier rule', () => {
    const policy = policyOf({ signed: ['/private/'], sign_key: key, max_connections_per_client: 1 });
    for (let i = 0; i < 3; i++) expect(reasonOf(policy.admit(request('/private/a'), now))).toBe('unsigned');
    expect(reasonOf(policy.admit(request('/public/a'), now))).toBe('ok');
  });
});

describe('geo rules', () => {
  it('refuse denied countries named by the load balancer\'s header', () => {
    const policy = policyOf({ geo: { country_header: 'CF-IPCountry', deny: ['KP'] } });
    expect(reasonOf(policy.admit(request('/a', undefined, { 'cf-ipcountry': 'kp' }), now))).toBe('geo');
    expect(reasonOf(policy.admit(request('/a', undefined, { 'cf-ipcountry': 'FR' }), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a'), now))).toBe('ok');
    expect(policy.refusals().geo).toBe(1);
  });

  it('look the address up in the range table when the header is absent, and serve only allowed countries', () => {
    const policy = policyOf({ geo: { country_header: 'cf-ipcountry', table: 'config/geo-example.csv', allow: ['FR', 'DE'], allow_unknown: false } });
    expect(reasonOf(policy.admit(request('/a', '192.0.2.9'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '::ffff:198.51.100.1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '2001:db8::1'), now))).toBe('ok');
    expect(reasonOf(policy.admit(request('/a', '203.0.113.5'), now))).toBe('geo');
    expect(reasonOf(policy.admit(request('/a', '2001:db8:8000::1'), now))).toBe('geo');
    // Unknown: not in the table, and allow_unknown is false.
    expect(reasonOf(policy.admit(request('/a', '10.0.0.1'), now))).toBe('geo');
    // The header, when set, wins over the table.
    expect(reasonOf(policy.admit(request('/a', '203.0.113.5', { 'cf-ipcountry': 'DE' }), now))).toBe('ok');
  });

  it('fail at creation, naming the line, when the table is bad', () => {
    expect(() => policyOf({ geo: { table: 'test/cdn/access/missing.csv' } })).toThrow('cannot read the geo table `test/cdn/access/missing.csv`: no such file');
  });
});
