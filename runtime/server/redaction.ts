/**
 * What the visualiser and the admin API never show: values of keys named
 * like secrets, at any depth, and settings that came from `${env:...}`.
 */

/** The placeholder shown instead of a secret. */
export const redacted = '[redacted]';

/**
 * A key named like a secret, as a whole word or a part of one separated by
 * `_`, `-`, `.` or a change of case: `password`, `api_token`, `apiKey`,
 * `x-authorization`, `client_secret`, `stream_key`, `passphrase`. Words are
 * matched whole, so `keyframe`, `monkey` and `tokens` are not secrets.
 */
const secretWords = new Set(['password', 'passwd', 'passphrase', 'token', 'secret', 'key', 'authorization', 'auth', 'credentials', 'credential', 'apikey', 'pwd']);

/** Whether the value of `key` is to be hidden. */
export function isSecretKey(key: string): boolean {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return words.some((word) => secretWords.has(word));
}

/**
 * A copy of `value` with the values of secret-named keys replaced, at any
 * depth. Strings longer than `maxString` are cut (a tap shows records, not
 * payloads); binary data shows as its size. Cycles and depth are bounded.
 */
export function redactValue(value: unknown, options: { maxString?: number; maxDepth?: number } = {}): unknown {
  const maxString = options.maxString ?? Infinity;
  const maxDepth = options.maxDepth ?? 32;
  const walk = (item: unknown, depth: number): unknown => {
    if (typeof item === 'string') return item.length > maxString ? `${item.slice(0, maxString)}… (${item.length} chars)` : item;
    if (typeof item === 'bigint') return item.toString();
    if (item === null || typeof item !== 'object') return typeof item === 'function' || typeof item === 'symbol' ? String(item) : item;
    if (depth >= maxDepth) return '[too deep]';
    if (item instanceof Uint8Array) return `[${item.byteLength} bytes]`;
    if (item instanceof Date) return item.toISOString();
    if (Array.isArray(item)) return item.map((entry) => walk(entry, depth + 1));
    if (item instanceof Map) return walk(Object.fromEntries(item), depth);
    const copy: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(item)) {
      copy[key] = isSecretKey(key) && entry !== undefined && entry !== null && entry !== '' ? redacted : walk(entry, depth + 1);
    }
    return copy;
  };
  return walk(value, 0);
}

/**
 * A node's settings as shown: secret-named keys hidden, and every value at
 * `envPaths` (paths inside the settings, from `${env:...}`) replaced whole.
 */
export function redactSettings(settings: unknown, envPaths: readonly (readonly (string | number)[])[] = []): unknown {
  const shown = redactValue(settings);
  for (const path of envPaths) {
    if (path.length === 0) return redacted;
    let at: unknown = shown;
    for (const step of path.slice(0, -1)) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[step] : undefined;
    const last = path.at(-1)!;
    if (at !== null && typeof at === 'object' && last in at) (at as Record<string | number, unknown>)[last] = redacted;
  }
  return shown;
}
