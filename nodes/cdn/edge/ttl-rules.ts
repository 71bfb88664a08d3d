/**
 * How long the edge keeps an origin response fresh: the origin's
 * `Cache-Control` (`s-maxage`, `max-age`, `no-cache`) or `Expires`, unless a
 * rule of the node matches the path (a glob: `*.m3u8`) or the content type
 * (`video/mp4`, `video/*`) and sets the lifetime itself. Rules override the
 * lifetime only: `no-store`, `private`, `Set-Cookie` and `Vary: *` still keep
 * a response out of the shared cache, as they protect one user's data.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** A rule as the settings give it: `{match, ttl}` (ttl in ms). */
export interface TtlRule {
  match: string;
  ttl: number;
}

/** A rule ready to test. */
export interface CompiledRule {
  kind: 'path' | 'type';
  pattern: RegExp;
  ttl: number;
}

/** The lifetimes of one response, in ms; `cacheable: false` with the reason when it is not stored. */
export interface Freshness {
  cacheable: boolean;
  reason?: string;
  ttl: number;
  /** How long past `ttl` it may be served while one background request refreshes it. */
  swr: number;
  /** How long past `ttl` it may be served when the origin fails. */
  sie: number;
}

/** Statuses a shared cache may store without explicit freshness (RFC 9110 §15.1). */
const storableStatuses = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);

/** A match is a content type when it reads `type/subtype` (`video/*`); otherwise a path glob. */
export function compileRule(rule: TtlRule): CompiledRule {
  const isType = /^[a-z0-9][a-z0-9.+-]*\/(\*|[a-z0-9][a-z0-9.+-]*)$/i.test(rule.match);
  const source = rule.match.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  // A path glob without a leading `/` or `*` matches the file name in any folder.
  const anchored = isType || rule.match.startsWith('/') || rule.match.startsWith('*') ? source : `(?:.*/)?${source}`;
  return { kind: isType ? 'type' : 'path', pattern: new RegExp(`^${anchored}$`, isType ? 'i' : ''), ttl: rule.ttl };
}

/** Directives of a `Cache-Control` header, lower-cased; values unquoted. */
export function parseCacheControl(header: string | undefined): Map<string, string> {
  const directives = new Map<string, string>();
  if (!header) return directives;
  for (const part of header.split(',')) {
    const [name, ...rest] = part.split('=');
    const key = name.trim().toLowerCase();
    if (key === '') continue;
    directives.set(key, rest.join('=').trim().replace(/^"(.*)"$/, '$1'));
  }
  return directives;
}

function seconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value) * 1000;
}

/** The first rule matching the path or the content type, if any. */
export function matchRule(rules: readonly CompiledRule[], path: string, contentType: string | undefined): CompiledRule | undefined {
  const type = contentType?.split(';')[0].trim() ?? '';
  return rules.find((rule) => rule.pattern.test(rule.kind === 'path' ? path : type));
}

/** The freshness of a response, from its headers, the node's rules and defaults. */
export function freshnessOf(
  response: { status: number; headers: IncomingHttpHeaders; path: string; now: number },
  settings: { rules: readonly CompiledRule[]; defaultTtl: number; staleWhileRevalidate: number; staleIfError: number },
): Freshness {
  const headers = response.headers;
  const cc = parseCacheControl(headers['cache-control']);
  const swr = seconds(cc.get('stale-while-revalidate')) ?? settings.staleWhileRevalidate;
  const sie = seconds(cc.get('stale-if-error')) ?? settings.staleIfError;
  const strict = cc.has('must-revalidate') || cc.has('proxy-revalidate');
  const base = { ttl: 0, swr: strict ? 0 : swr, sie: strict ? 0 : sie };
  if (!storableStatuses.has(response.status)) return { ...base, cacheable: false, reason: `status ${response.status}` };
  if (cc.has('no-store')) return { ...base, cacheable: false, reason: 'no-store' };
  if (cc.has('private')) return { ...base, cacheable: false, reason: 'private' };
  if (headers['set-cookie'] !== undefined) return { ...base, cacheable: false, reason: 'set-cookie' };
  if (headers.vary?.split(',').some((name) => name.trim() === '*')) return { ...base, cacheable: false, reason: 'vary: *' };
  const rule = matchRule(settings.rules, response.path, headers['content-type']);
  if (rule) return { ...base, cacheable: true, ttl: rule.ttl };
  if (cc.has('no-cache')) return { ...base, cacheable: true, ttl: 0 };
  const shared = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age'));
  if (shared !== undefined) return { ...base, cacheable: true, ttl: shared };
  if (headers.expires !== undefined) {
    const expires = Date.parse(headers.expires);
    const date = headers.date !== undefined ? Date.parse(headers.date) : response.now;
    // An unparsable Expires means "already expired" (RFC 9111 §5.3).
    const ttl = Number.isNaN(expires) ? 0 : Math.max(0, expires - (Number.isNaN(date) ? response.now : date));
    return { ...base, cacheable: true, ttl };
  }
  return { ...base, cacheable: true, ttl: settings.defaultTtl };
}
