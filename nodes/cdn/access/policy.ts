/**
 * The edge's access policy: one `admit` call per request decides, from the
 * path, query, client address and headers, whether the cache serves it, and
 * counts every refusal by reason. Pure and synchronous (the geo table is read
 * once, at creation), so the cache can call it before anything else.
 *
 * Checks, in order, the first failing one deciding: IP deny then allow
 * lists, geo rules, the rate limit (before the signature, so guessing
 * signatures is throttled too), the referrer, the signature of protected
 * paths, and last the cap on open requests (the only check that holds
 * something, released by `release()`).
 */
import { cidrListHas, compileCidrList, type CidrList } from './cidr.ts';
import { ConcurrencyCap } from './concurrency.ts';
import { countryFromHeader, lookupCountry, readGeoTable, type GeoTable } from './geo.ts';
import { isIpv4Mapped, parseAddress, type AddressWords } from './ip-address.ts';
import { TokenBuckets } from './rate-limit.ts';
import { compileReferrerRule, referrerAllowed, type ReferrerRule } from './referrer.ts';
import type { AccessSettings } from './settings.ts';
import { releaseNothing } from '../edge/admit.ts';
import { signPlaylistUris } from './playlist-signing.ts';
import { canonicalPath, checkSignature, signedExpiry, signingKey, underPrefix, type SigningKey } from './signed-url.ts';

export { accessSettingsSchema, type AccessSettings } from './settings.ts';
export { GeoTableError } from './geo.ts';

/** What the policy needs of a request. */
export interface AccessRequest {
  /** The URL's path as received, percent-encoded, without the query. */
  path: string;
  query: URLSearchParams;
  /** The socket's remote address (`request.socket.remoteAddress`). */
  ip: string;
  /** The request headers, names in lower case (Node's `request.headers`). */
  headers: Record<string, string | string[] | undefined>;
}

/** Why a request was refused; the key of {@link AccessPolicy.refusals}. */
export type RefusalReason = 'unsigned' | 'expired' | 'bad_signature' | 'referrer' | 'ip_denied' | 'ip_not_allowed' | 'geo' | 'rate_limited' | 'too_many_connections';

/** Every reason, in a stable order (for metrics labels). */
export const refusalReasons: readonly RefusalReason[] = ['unsigned', 'expired', 'bad_signature', 'referrer', 'ip_denied', 'ip_not_allowed', 'geo', 'rate_limited', 'too_many_connections'];

/** The verdict on one request. A refusal is the whole response to send. */
export type AccessDecision =
  | {
      ok: true;
      release(): void;
      /** Present when the request passed a signature check: its link's expiry (Unix seconds), for {@link AccessPolicy.signPlaylist}. */
      signedExpires?: number;
    }
  | { ok: false; status: 403 | 429; reason: RefusalReason; headers?: Record<string, string>; body: string };

/** An edge's access rules, compiled. */
export interface AccessPolicy {
  /** True when no rule is set (`access: {}`): every request is admitted, holding nothing, so a caller may skip {@link admit}. */
  readonly admitsAll: boolean;
  /** Whether {@link admit} reads the query (signed paths are set); when not, any `query` may be passed. */
  readonly readsQuery: boolean;
  /** Decides on one request at `nowMs` (ms since the epoch). When admitted, call `release()` once the response has ended (or the client has gone). */
  admit(request: AccessRequest, nowMs: number): AccessDecision;
  /** Refusals so far by reason, every reason present (a copy). */
  refusals(): Record<RefusalReason, number>;
  /**
   * An HLS playlist served at `path` on a signed link (`signedExpires` of its
   * decision) with every URI under a protected prefix signed with the same
   * expiry, so a player given one signed link can fetch what it names (see
   * `playlist-signing.ts`). Rewrite the copy sent, not the cached one.
   */
  signPlaylist(body: string, path: string, signedExpires: number): string;
}

/** The plain-text body of each refusal: says what is wrong, never echoes the request. */
const bodies: Record<RefusalReason, string> = {
  unsigned: 'forbidden: this path needs a signed URL\n',
  expired: 'forbidden: the signed URL has expired\n',
  bad_signature: 'forbidden: the URL\'s signature is not valid\n',
  referrer: 'forbidden: this content may not be embedded on that site\n',
  ip_denied: 'forbidden: your address is denied\n',
  ip_not_allowed: 'forbidden: your address is not allowed\n',
  geo: 'forbidden: not available in your country\n',
  rate_limited: 'too many requests: slow down\n',
  too_many_connections: 'too many requests: too many open at once from your address\n',
};

/** Refusals without a header are the same every time: built once, not per request. */
function fixedRefusal(reason: RefusalReason): AccessDecision {
  return Object.freeze({ ok: false, status: 403, reason, body: bodies[reason] }) as AccessDecision;
}

const forbidden = Object.fromEntries(refusalReasons.map((reason) => [reason, fixedRefusal(reason)])) as Record<RefusalReason, AccessDecision>;

const admittedWithoutHold = Object.freeze({ ok: true as const, release: releaseNothing });

/** The compiled rules: each absent when its setting is. */
interface Rules {
  signed: readonly string[];
  key: SigningKey | undefined;
  trustProxy: number;
  clientHeader: string;
  ipv6Prefix: number;
  allow: CidrList | undefined;
  deny: CidrList | undefined;
  referrer: ReferrerRule | undefined;
  buckets: TokenBuckets | undefined;
  cap: ConcurrencyCap | undefined;
  geo: { header: string | undefined; table: GeoTable | undefined; allow: ReadonlySet<string> | undefined; deny: ReadonlySet<string>; allowUnknown: boolean } | undefined;
}

function compile(settings: AccessSettings, signKey: string | undefined): Rules {
  const { ip, geo, rate_limit: rate } = settings;
  const key = signKey ?? settings.sign_key;
  if (settings.signed.length > 0 && key === undefined) throw new Error('`signed` paths need a signing key');
  return {
    signed: settings.signed,
    key: key === undefined ? undefined : signingKey(key),
    trustProxy: settings.trust_proxy,
    clientHeader: settings.client_header,
    ipv6Prefix: settings.ipv6_client_prefix,
    allow: ip?.allow ? compileCidrList(ip.allow) : undefined,
    deny: ip && ip.deny.length > 0 ? compileCidrList(ip.deny) : undefined,
    referrer: settings.referrer ? compileReferrerRule(settings.referrer.allow, settings.referrer.allow_empty) : undefined,
    buckets: rate ? new TokenBuckets({ rate: rate.rate, burst: rate.burst ?? Math.max(1, Math.ceil(rate.rate)), maxClients: rate.max_clients }) : undefined,
    cap: settings.max_connections_per_client ? new ConcurrencyCap(settings.max_connections_per_client) : undefined,
    geo: geo
      ? {
          header: geo.country_header,
          table: geo.table === undefined ? undefined : readGeoTable(geo.table),
          allow: geo.allow ? new Set(geo.allow) : undefined,
          deny: new Set(geo.deny),
          allowUnknown: geo.allow_unknown,
        }
      : undefined,
  };
}

/** An address from a proxy header without the port some proxies add: `192.0.2.1:5678`, `[2001:db8::1]:5678`. */
function withoutPort(entry: string): string {
  if (entry.charCodeAt(0) === 91) {
    const close = entry.indexOf(']');
    return close > 0 ? entry.slice(1, close) : entry;
  }
  const colon = entry.indexOf(':');
  return colon > 0 && entry.indexOf(':', colon + 1) < 0 && entry.indexOf('.') > 0 ? entry.slice(0, colon) : entry;
}

/**
 * The client's address: the socket's, or with `trust_proxy: n` the n-th
 * address from the end of the client header (the one the outermost trusted
 * proxy saw; fewer entries than proxies: the first), without a port some
 * proxies add. `::ffff:1.2.3.4` is written `1.2.3.4`, so both forms of one
 * client share its rate and cap.
 */
export function clientAddress(request: AccessRequest, trustProxy: number, clientHeader: string): string {
  let client = request.ip;
  if (trustProxy > 0) {
    const raw = request.headers[clientHeader];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (value !== undefined && value !== '') {
      let end = value.length;
      let start = value.lastIndexOf(',', end - 1) + 1;
      for (let hop = 1; hop < trustProxy && start > 0; hop++) {
        end = start - 1;
        start = value.lastIndexOf(',', end - 1) + 1;
      }
      const entry = withoutPort(value.slice(start, end).trim());
      if (entry !== '') client = entry;
    }
  }
  return client.length > 7 && client.startsWith('::ffff:') && client.indexOf('.') > 0 ? client.slice(7) : client;
}

/**
 * The key a client's rate limit and connection cap are kept under: its
 * address, or for IPv6 the network of its first `prefix` bits (one
 * subscriber is given a whole /64 and could rotate through it to escape a
 * per-address limit).
 */
export function limitKey(client: string, parsed: boolean, words: AddressWords, prefix: number): string {
  if (!parsed || prefix >= 128 || isIpv4Mapped(words)) return client;
  let key = '';
  for (let w = 0; w * 32 < prefix; w++) {
    const bits = Math.min(32, prefix - w * 32);
    const word = bits === 32 ? words[w] : (words[w] & (0xffffffff << (32 - bits))) >>> 0;
    key += `${word.toString(16)}:`;
  }
  return `${key}/${prefix}`;
}

/**
 * Compiles the access rules. The signing key is `secrets.signKey` when given,
 * else the settings' `sign_key`. Reads the geo table, if any, now: throws
 * `GeoTableError` (message `FILE:LINE: ...`) when it is missing or bad.
 *
 * ```ts
 * const policy = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: key }), {});
 * const decision = policy.admit({ path, query, ip, headers }, Date.now());
 * if (!decision.ok) return send(decision.status, decision.headers, decision.body);
 * response.once('close', decision.release);
 * ```
 */
export function createAccessPolicy(settings: AccessSettings, secrets: { signKey?: string } = {}): AccessPolicy {
  const rules = compile(settings, secrets.signKey);
  const counts = Object.fromEntries(refusalReasons.map((reason) => [reason, 0])) as Record<RefusalReason, number>;
  const words = new Uint32Array(4);
  const limited = rules.buckets !== undefined || rules.cap !== undefined;
  const needsAddress = rules.allow !== undefined || rules.deny !== undefined || rules.geo?.table !== undefined || (limited && rules.ipv6Prefix < 128);

  function refuse(reason: RefusalReason): AccessDecision {
    counts[reason] += 1;
    return forbidden[reason];
  }

  function tooMany(reason: 'rate_limited' | 'too_many_connections', retryAfterSeconds: number): AccessDecision {
    counts[reason] += 1;
    return { ok: false, status: 429, reason, headers: { 'Retry-After': String(retryAfterSeconds) }, body: bodies[reason] };
  }

  /** Whether the geo rules refuse the request's country (unknown: as `allow_unknown` says). */
  function geoRefuses(request: AccessRequest, parsed: boolean): boolean {
    const geo = rules.geo!;
    let country = geo.header === undefined ? undefined : countryFromHeader(request.headers[geo.header]);
    if (country === undefined && geo.table !== undefined && parsed) country = lookupCountry(geo.table, words);
    if (country === undefined) return !geo.allowUnknown;
    return geo.deny.has(country) || (geo.allow !== undefined && !geo.allow.has(country));
  }

  return {
    admitsAll: rules.signed.length === 0 && rules.allow === undefined && rules.deny === undefined && rules.geo === undefined && rules.buckets === undefined && rules.referrer === undefined && rules.cap === undefined,
    readsQuery: rules.signed.length > 0,
    admit(request, nowMs) {
      const client = clientAddress(request, rules.trustProxy, rules.clientHeader);
      const parsed = needsAddress && parseAddress(client, words);
      // An address that does not parse is in no list: denied nowhere, allowed nowhere.
      if (rules.deny && parsed && cidrListHas(rules.deny, words)) return refuse('ip_denied');
      if (rules.allow && !(parsed && cidrListHas(rules.allow, words))) return refuse('ip_not_allowed');
      if (rules.geo && geoRefuses(request, parsed)) return refuse('geo');
      const key = limited ? limitKey(client, parsed, words, rules.ipv6Prefix) : client;
      if (rules.buckets) {
        const take = rules.buckets.take(key, nowMs);
        if (!take.ok) return tooMany('rate_limited', take.retryAfterSeconds);
      }
      if (rules.referrer) {
        const raw = request.headers.referer;
        if (!referrerAllowed(rules.referrer, Array.isArray(raw) ? raw[0] : raw)) return refuse('referrer');
      }
      let signedExpires: number | undefined;
      if (rules.signed.length > 0) {
        const canonical = canonicalPath(request.path);
        // A path that does not decode cannot be matched against the rules: refused rather than guessed.
        if (canonical === undefined) return refuse('bad_signature');
        if (underPrefix(rules.signed, canonical)) {
          const problem = checkSignature(rules.key!, canonical, request.query, nowMs);
          if (problem) return refuse(problem);
          signedExpires = signedExpiry(request.query);
        }
      }
      let release: (() => void) | undefined;
      if (rules.cap) {
        release = rules.cap.acquire(key);
        if (release === undefined) return tooMany('too_many_connections', 1);
      }
      if (release === undefined && signedExpires === undefined) return admittedWithoutHold;
      return { ok: true, release: release ?? admittedWithoutHold.release, signedExpires };
    },
    refusals() {
      return { ...counts };
    },
    signPlaylist(body, path, signedExpires) {
      const canonical = canonicalPath(path);
      if (canonical === undefined || rules.key === undefined) return body;
      return signPlaylistUris(body, canonical, signedExpires, rules.key, rules.signed);
    },
  };
}
