/**
 * Signed URLs in the manner of nginx's `secure_link`: a link to a protected
 * path carries its expiry and an HMAC of the path and the expiry, so the edge
 * can check it with nothing but the shared key.
 *
 * The format, exactly:
 *
 * ```
 * /private/a.m3u8?expires=1767225600&sig=Nq0u...43 characters
 * expires = the expiry, whole seconds since the Unix epoch (UTC), decimal
 * sig     = base64url, unpadded (43 characters), of
 *           HMAC-SHA256(key = the UTF-8 bytes of the key,
 *                       message = expires + "\n" + canonical path)
 * ```
 *
 * The canonical path is the URL path percent-decoded once, with `.` and `..`
 * segments resolved and runs of `/` collapsed: `/public/../private/a.m3u8`,
 * `/%70rivate/a.m3u8` and `/private//a.m3u8` all mean `/private/a.m3u8`, are
 * all checked against the rule for `/private/`, and need its signature. Other
 * query parameters (`_HLS_msn`, `_HLS_part`) are not covered, so a player
 * may add them. The link is valid up to and including the `expires` second.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** The shortest signing key accepted: a shorter one could be guessed offline from one signed link. */
export const minimumKeyLength = 16;

/** Why a request to a protected path is refused. */
export type SignatureProblem = 'unsigned' | 'expired' | 'bad_signature';

/** A signing key ready for HMAC: built once, not per request. */
export type SigningKey = KeyObject;

/** The key as HMAC uses it: the UTF-8 bytes of the text. */
export function signingKey(text: string): SigningKey {
  return createSecretKey(Buffer.from(text, 'utf8'));
}

/**
 * The canonical form of a URL path (see the module doc), or undefined when
 * the path is not one: it does not start with `/`, its percent-encoding is
 * broken, or it decodes to a NUL byte.
 */
export function canonicalPath(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  let decoded = path;
  if (path.indexOf('%') >= 0) {
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined; // `%zz` or broken UTF-8: not a path anyone signed
    }
    if (decoded.indexOf('\0') >= 0) return undefined;
  }
  // Most paths have no dot segment and no double slash: returned as they are.
  if (decoded.indexOf('/.') < 0 && decoded.indexOf('//') < 0) return decoded;
  const kept: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    if (segment === '..') kept.pop();
    else if (segment !== '.' && (segment !== '' || last)) kept.push(segment);
    // A path ending in `/.` or `/..` names a folder: keep its trailing slash.
    if (last && (segment === '.' || segment === '..')) kept.push('');
  }
  return `/${kept.join('/')}`;
}

/** Whether a canonical path lies under one of the protected prefixes (a loop: no closure per request). */
export function underPrefix(prefixes: readonly string[], path: string): boolean {
  for (const prefix of prefixes) if (path.startsWith(prefix)) return true;
  return false;
}

/** The `sig` value for a canonical path and an expiry in Unix seconds. */
export function signature(key: SigningKey, canonical: string, expires: number): string {
  return createHmac('sha256', key).update(`${expires}\n${canonical}`).digest('base64url');
}

/**
 * A signed link to `path`, valid until `expires` (Unix seconds):
 * `path?expires=E&sig=S`. The path is printed as given; the signature covers
 * its canonical form. Throws when `path` is not a URL path.
 */
export function signPath(path: string, expires: number, key: SigningKey): string {
  const canonical = canonicalPath(path);
  if (canonical === undefined) throw new Error(`\`${path}\` is not a URL path (it must start with \`/\` and be validly percent-encoded)`);
  if (!Number.isSafeInteger(expires) || expires < 0) throw new Error(`the expiry must be whole seconds since the epoch, not ${expires}`);
  return `${path}?expires=${expires}&sig=${signature(key, canonical, expires)}`;
}

/** The expiry parsed from its decimal text (at most 12 digits), or -1. */
function parseExpires(text: string): number {
  if (text.length === 0 || text.length > 12) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return -1;
    value = value * 10 + (code - 48);
  }
  return value;
}

/** The expiry of a link whose signature {@link checkSignature} accepted. */
export function signedExpiry(query: URLSearchParams): number {
  return parseExpires(query.get('expires') ?? '');
}

/** Length of an unpadded base64url SHA-256 MAC. */
const signatureLength = 43;
const givenBytes = Buffer.alloc(signatureLength);
const expectedBytes = Buffer.alloc(signatureLength);

/** Whether `text` is 43 characters of the base64url alphabet: the only spelling of a signature accepted. */
function isSignatureText(text: string): boolean {
  if (text.length !== signatureLength) return false;
  for (let i = 0; i < signatureLength; i++) {
    const code = text.charCodeAt(i);
    const ok = (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || (code >= 48 && code <= 57) || code === 45 || code === 95;
    if (!ok) return false;
  }
  return true;
}

/**
 * Checks the signature of a request to a protected path: undefined when it
 * is valid now, else why not. A missing `sig` is `unsigned`; a malformed or
 * wrong one, or one for another path or expiry, `bad_signature`; a valid one
 * past its expiry `expired` (checked after the MAC, so an expired link with
 * a forged signature says `bad_signature`). The MAC is compared in constant time.
 */
export function checkSignature(key: SigningKey, canonical: string, query: URLSearchParams, nowMs: number): SignatureProblem | undefined {
  const sig = query.get('sig');
  if (sig === null) return 'unsigned';
  const expiresText = query.get('expires');
  const expires = expiresText === null ? -1 : parseExpires(expiresText);
  if (expires < 0 || !isSignatureText(sig)) return 'bad_signature';
  // Written into buffers kept for the purpose: no two allocations per request.
  givenBytes.write(sig, 'latin1');
  expectedBytes.write(signature(key, canonical, expires), 'latin1');
  if (!timingSafeEqual(givenBytes, expectedBytes)) return 'bad_signature';
  return expires * 1000 + 999 < nowMs ? 'expired' : undefined;
}
