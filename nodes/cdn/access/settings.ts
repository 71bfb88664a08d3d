/**
 * The `access:` setting of the edge cache: who may fetch what. Every list and
 * pattern is checked here, when the graph is checked, so a typo in a CIDR or
 * a country code is a located error before anything runs.
 */
import { z } from '../../../runtime/api.ts';
import { secretSetting } from '../../io/web/settings.ts';
import { cidrProblem } from './cidr.ts';
import { referrerPatternProblem } from './referrer.ts';
import { isCountryCode } from './geo.ts';
import { minimumKeyLength } from './signed-url.ts';


function cidrList() {
  return z.array(
    z.string().superRefine(function checkCidr(text, ctx) {
      const problem = cidrProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, params: { code: 'bad_setting' } });
    }),
  );
}

function countryList() {
  return z.array(
    z
      .string()
      .transform((code) => code.toUpperCase())
      .refine(isCountryCode, { error: 'a country is an ISO 3166 two-letter code such as `FR` or `US`' }),
  );
}

const pathPrefix = z.string().startsWith('/', { error: 'a path prefix starts with `/`, such as `/private/`' });

/** The zod schema of the cache's `access:` setting (parsed: see {@link AccessSettings}). */
export const accessSettingsSchema = z
  .object({
    signed: z
      .array(pathPrefix)
      .default([])
      .meta({
        description: 'Path prefixes whose requests need a signed URL, `?expires=UNIX&sig=BASE64URL` (HMAC-SHA256 of the expiry, a newline and the canonical path, under `sign_key`; print one with `streams sign PATH --expires 1h`). Missing → 403 `unsigned`, wrong or tampered → 403 `bad_signature`, past its expiry → 403 `expired`. Prefixes are matched against the percent-decoded path with `.`/`..` resolved.',
        examples: [['/private/']],
      }),
    sign_key: secretSetting()
      .optional()
      .meta({ description: 'The HMAC key of signed URLs, at least 16 characters; always `${env:NAME}` (it is redacted when shown, never logged).', examples: ['${env:CDN_SIGN_KEY}'] }),
    trust_proxy: z
      .union([z.boolean(), z.number().int().min(0).max(16)])
      .default(false)
      .transform((value) => (value === true ? 1 : value === false ? 0 : value))
      .meta({
        description: 'How many proxies (load balancers) stand in front of the edge and append to `client_header`. 0 or `false`: the client is the socket\'s address. 1 or `true`: the last address in the header (the one the proxy saw); 2: the one before it. The header\'s first entry is never used alone: a client can write it.',
        examples: [true, 2],
      }),
    client_header: z
      .string()
      .min(1)
      .default('x-forwarded-for')
      .transform((name) => name.toLowerCase())
      .meta({ description: 'With `trust_proxy`: the header carrying the client\'s address (a comma-separated list, as `X-Forwarded-For`).', examples: ['x-forwarded-for', 'x-real-ip'] }),
    ipv6_client_prefix: z
      .number()
      .int()
      .min(1)
      .max(128)
      .default(64)
      .meta({ description: 'IPv6 clients are counted by network for `rate_limit` and `max_connections_per_client`: addresses sharing this many leading bits are one client (a subscriber is usually given a whole /64 and could rotate through it). 128: each address alone.', examples: [64, 56] }),
    ip: z
      .object({
        allow: cidrList().optional().meta({ description: 'Only clients in these blocks are served (403 `ip_not_allowed` for others). Absent: every client not denied.', examples: [['10.0.0.0/8', '2001:db8::/32']] }),
        deny: cidrList().default([]).meta({ description: 'Clients in these blocks are refused (403 `ip_denied`), even if also allowed.', examples: [['192.0.2.0/24']] }),
      })
      .strict()
      .optional()
      .meta({ description: 'IP allow and deny lists of CIDR blocks or addresses, IPv4 and IPv6; an IPv4 block also matches the IPv4-mapped form (`::ffff:10.1.2.3`) a dual-stack socket reports. Deny wins.' }),
    referrer: z
      .object({
        allow: z
          .array(
            z.string().superRefine(function checkPattern(text, ctx) {
              const problem = referrerPatternProblem(text);
              if (problem) ctx.addIssue({ code: 'custom', message: problem, params: { code: 'bad_setting' } });
            }),
          )
          .min(1)
          .meta({ description: 'Hosts whose pages may embed the content: `example.com` itself, `*.example.com` any subdomain (not the bare domain).', examples: [['example.com', '*.example.com']] }),
        allow_empty: z.boolean().default(true).meta({ description: 'Whether a request with no `Referer` is served (typed URLs, native players, browsers with referrers turned off).' }),
      })
      .strict()
      .optional()
      .meta({ description: 'Hotlink protection by the `Referer` header: others get 403 `referrer`.' }),
    rate_limit: z
      .object({
        rate: z.number().positive().meta({ description: 'Requests a second one client may make, sustained.', examples: [20] }),
        burst: z.number().int().min(1).optional().meta({ description: 'Requests one client may make at once after a pause (the bucket\'s size). Default: `rate` rounded up.', examples: [40] }),
        max_clients: z.number().int().min(1).default(100_000).meta({ description: 'Clients tracked at once; past it the least recently seen is forgotten (memory stays bounded under a flood of addresses).', examples: [100000] }),
      })
      .strict()
      .optional()
      .meta({ description: 'A token bucket per client: past it, 429 `rate_limited` with `Retry-After` (seconds until the bucket holds a token).' }),
    max_connections_per_client: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Requests one client may have open at once; more get 429 `too_many_connections` with `Retry-After: 1` (429 rather than 503: the edge is fine, this client is over its share).', examples: [16] }),
    geo: z
      .object({
        country_header: z.string().min(1).transform((name) => name.toLowerCase()).optional().meta({ description: 'A header a load balancer in front sets to the client\'s country code.', examples: ['cf-ipcountry'] }),
        table: z.string().min(1).optional().meta({ description: 'An IP range table, CSV `start_ip,end_ip,country` or `cidr,country` lines, loaded at start (DB-IP\'s "IP to Country Lite" CSV works as it ships; see the docs for MaxMind). Used when the header is absent or not set.', examples: ['config/geo-example.csv'] }),
        allow: countryList().optional().meta({ description: 'Only these countries are served. Absent: every country not denied.', examples: [['FR', 'BE', 'CH']] }),
        deny: countryList().default([]).meta({ description: 'These countries are refused, even if also allowed.', examples: [['KP']] }),
        allow_unknown: z.boolean().default(true).meta({ description: 'Whether a client whose country is unknown (no header, no range) is served when `allow` is given or not.' }),
      })
      .strict()
      .optional()
      .meta({ description: 'Geo rules by country: refused clients get 403 `geo`.' }),
  })
  .strict()
  .superRefine(function checkAccess(value, ctx) {
    if (value.signed.length > 0 && value.sign_key === undefined) {
      ctx.addIssue({ code: 'custom', path: ['sign_key'], message: '`signed` paths need a `sign_key` (write `sign_key: ${env:CDN_SIGN_KEY}`)', params: { code: 'bad_setting' } });
    }
    if (value.sign_key !== undefined && value.sign_key.length < minimumKeyLength) {
      // The message never quotes the key.
      ctx.addIssue({ code: 'custom', path: ['sign_key'], message: `the signing key is too short: use at least ${minimumKeyLength} characters (\`openssl rand -base64 32\`)`, params: { code: 'bad_setting' } });
    }
    if (value.geo && value.geo.country_header === undefined && value.geo.table === undefined) {
      ctx.addIssue({ code: 'custom', path: ['geo'], message: 'geo rules need a `country_header`, a `table`, or both', params: { code: 'bad_setting' } });
    }
  })
  .meta({ description: 'Access control: signed URLs, IP lists, referrer rules, geo rules, per-client rate and connection limits. Each refusal is counted by reason.' });

/** The `access:` setting as parsed (defaults filled, country codes upper case, `trust_proxy` a hop count). */
export type AccessSettings = z.output<typeof accessSettingsSchema>;
