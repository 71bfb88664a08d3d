/**
 * `streams sign PATH --expires DURATION [--base URL]`: prints a signed link
 * to a path the edge protects (`access.signed`), with the key the edge uses,
 * from `$CDN_SIGN_KEY`. The key is never printed.
 */
import { parseDuration } from '../graph/units.ts';
import { minimumKeyLength, signingKey, signPath } from '../nodes/cdn/access/signed-url.ts';
import { UsageError } from './usage-error.ts';

/** The variable holding the signing key; the shipped edge pipeline reads the same one. */
export const signKeyVariable = 'CDN_SIGN_KEY';

const usage = 'usage: streams sign PATH --expires DURATION [--base URL]';

/** Runs `streams sign`; returns the exit code (usage errors are thrown). */
export function signCommand(values: Record<string, unknown>, positionals: string[], nowMs = Date.now()): number {
  if (positionals.length !== 1) throw new UsageError(`sign takes one PATH, such as \`/private/a.m3u8\`\n${usage}`);
  const path = positionals[0];
  if (!path.startsWith('/') || path.includes('?') || path.includes('#')) {
    throw new UsageError(`\`${path}\` is not a URL path: it must start with \`/\` and have no \`?\` or \`#\`\n${usage}`);
  }
  if (typeof values.expires !== 'string') throw new UsageError(`sign needs --expires, how long the link is valid (\`30m\`, \`1h\`, \`7d\`)\n${usage}`);
  const lifetime = parseDuration(values.expires);
  if (!lifetime.ok) throw new UsageError(`--expires: ${lifetime.reason}`);
  if (lifetime.value <= 0) throw new UsageError('--expires: the link must be valid for some time, such as `1h`');
  const base = typeof values.base === 'string' ? baseUrl(values.base) : '';
  const key = process.env[signKeyVariable];
  if (key === undefined || key === '') {
    throw new UsageError(`the environment variable \`${signKeyVariable}\` is not set: export the key the edge uses (\`access.sign_key\`), or pass --env-file FILE`);
  }
  if (key.length < minimumKeyLength) throw new UsageError(`\`${signKeyVariable}\` is too short: the edge refuses keys under ${minimumKeyLength} characters`);
  const expires = Math.ceil((nowMs + lifetime.value) / 1000);
  let signed: string;
  try {
    signed = signPath(path, expires, signingKey(key));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  process.stdout.write(`${base}${signed}\n`);
  return 0;
}

/** `--base` without its trailing slash, checked to be an http(s) URL without a query. */
function baseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--base: \`${text}\` is not a URL (write \`http://127.0.0.1:8081\`)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    throw new UsageError(`--base: \`${text}\` must be an http:// or https:// URL without a query`);
  }
  return text.replace(/\/+$/, '');
}
