/**
 * Hotlink protection: the `Referer` a browser sends names the page that
 * embeds the player; only pages on the allowed hosts may.
 */

/** Allowed referrer hosts, compiled once. */
export interface ReferrerRule {
  /** Hosts allowed exactly, lower case. */
  readonly exact: ReadonlySet<string>;
  /** Suffixes (`.example.com`) from `*.example.com`: any subdomain, not the bare domain. */
  readonly suffixes: readonly string[];
  /** Whether a request without a `Referer` (typed URL, privacy settings, native players) passes. */
  readonly allowEmpty: boolean;
}

/** Why a referrer host pattern is not one, or undefined. */
export function referrerPatternProblem(pattern: string): string | undefined {
  const host = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)) {
    return `\`${pattern}\` is not a host name or \`*.\` followed by one (write \`example.com\` or \`*.example.com\`; no scheme, port or path)`;
  }
  return undefined;
}

/** Compiles host patterns: `example.com` matches only itself, `*.example.com` any host below it. */
export function compileReferrerRule(hosts: readonly string[], allowEmpty: boolean): ReferrerRule {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const host of hosts) {
    if (host.startsWith('*.')) suffixes.push(host.slice(1).toLowerCase());
    else exact.add(host.toLowerCase());
  }
  return { exact, suffixes, allowEmpty };
}

/**
 * The host of a referrer URL (`https://user@Player.Example.com:8443/x` gives
 * `player.example.com`), or undefined when it names none.
 */
export function referrerHost(referrer: string): string | undefined {
  const scheme = referrer.indexOf('://');
  if (scheme <= 0) return undefined;
  let start = scheme + 3;
  let end = referrer.length;
  for (let i = start; i < referrer.length; i++) {
    const code = referrer.charCodeAt(i);
    if (code === 47 || code === 63 || code === 35) {
      end = i; // '/', '?' or '#' ends the authority
      break;
    }
  }
  const at = referrer.lastIndexOf('@', end);
  if (at >= start) start = at + 1;
  let hostEnd = end;
  if (referrer.charCodeAt(start) === 91) {
    const close = referrer.indexOf(']', start);
    if (close < 0 || close > end) return undefined;
    hostEnd = close + 1; // an IPv6 literal keeps its brackets
  } else {
    const colon = referrer.indexOf(':', start);
    if (colon >= 0 && colon < end) hostEnd = colon;
  }
  if (hostEnd <= start) return undefined;
  let host = referrer.slice(start, hostEnd).toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1); // `example.com.` is `example.com`
  return host;
}

/** Whether a request with this `Referer` header value (absent: undefined) may pass. */
export function referrerAllowed(rule: ReferrerRule, referrer: string | undefined): boolean {
  if (referrer === undefined || referrer === '') return rule.allowEmpty;
  const host = referrerHost(referrer);
  if (host === undefined) return false;
  if (rule.exact.has(host)) return true;
  for (const suffix of rule.suffixes) {
    if (host.length > suffix.length && host.endsWith(suffix)) return true;
  }
  return false;
}
