/**
 * Authentication of incoming requests for the web servers: bearer tokens
 * and HMAC body signatures, compared in constant time.
 */
import { createHash, createHmac, getHashes, timingSafeEqual, type Hmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { z } from '../../../runtime/api.ts';

/**
 * Compares two secrets in time that depends on neither's content nor length:
 * both are hashed first, so `timingSafeEqual` always sees equal lengths.
 */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * A secret setting (a token, an HMAC key). `${env:NAME}` substitution turns a
 * value that spells a number into a number; a secret is text whatever it spells.
 */
export function secretSetting() {
  return z.union([z.string().min(1), z.number()]).transform(String);
}

/**
 * The bearer token a request presents: `Authorization: Bearer TOKEN`, or the
 * `token` query parameter (browsers cannot set headers on WebSocket or
 * EventSource connections).
 */
export function presentedToken(request: IncomingMessage, url: URL): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (match) return match[1];
  }
  return url.searchParams.get('token') ?? undefined;
}

/** Whether a request presents `token`; always true when no token is configured. */
export function tokenAccepted(request: IncomingMessage, url: URL, token: string | undefined): boolean {
  if (token === undefined) return true;
  const presented = presentedToken(request, url);
  return presented !== undefined && safeEqual(presented, token);
}

/** The `hmac` setting of `http.server`, parsed. */
export interface HmacSettings {
  secret: string;
  header: string;
  algorithm: string;
  prefix?: string;
  encoding: 'hex' | 'base64';
}

const hashes = new Set(getHashes());

/** The `hmac` setting: a signature of the body in a header, as GitHub, Shopify and most webhook senders send. */
export function hmacSetting() {
  return z
    .object({
      secret: secretSetting().meta({ description: 'The shared secret; write it as `${env:NAME}`, never in the file.', examples: ['${env:WEBHOOK_SECRET}'] }),
      header: z.string().min(1).default('X-Hub-Signature-256').meta({ description: 'The request header carrying the signature.', examples: ['X-Hub-Signature-256', 'X-Shopify-Hmac-Sha256'] }),
      algorithm: z
        .string()
        .default('sha256')
        .refine((name) => hashes.has(name), { message: 'unknown hash algorithm (use `sha256`, `sha1` or `sha512`)' })
        .meta({ description: 'The hash of the HMAC.', examples: ['sha256', 'sha1'] }),
      prefix: z.string().optional().meta({ description: 'Text before the digest in the header; by default the algorithm and `=` (GitHub\'s `sha256=`). `""` for a bare digest.', examples: ['sha256=', ''] }),
      encoding: z.enum(['hex', 'base64']).default('hex').meta({ description: 'How the digest is written: `hex` or `base64`.' }),
    })
    .optional()
    .meta({
      description: 'Checks an HMAC signature of the raw body (requests without a valid one get 401).',
      examples: [{ secret: '${env:GITHUB_WEBHOOK_SECRET}', header: 'X-Hub-Signature-256' }],
    });
}

/** An HMAC computed as the body streams in, checked once it has all arrived. */
export interface BodySignature {
  update(chunk: Buffer): void;
  /** Whether the request's header matches the body read so far (call once, at the end). */
  matches(): boolean;
}

export function bodySignature(settings: HmacSettings, request: IncomingMessage): BodySignature {
  const hmac: Hmac = createHmac(settings.algorithm, settings.secret);
  const raw = request.headers[settings.header.toLowerCase()];
  const presented = Array.isArray(raw) ? raw[0] : raw;
  const prefix = settings.prefix ?? `${settings.algorithm}=`;
  return {
    update(chunk) {
      hmac.update(chunk);
    },
    matches() {
      const expected = prefix + hmac.digest(settings.encoding);
      return presented !== undefined && safeEqual(presented.trim(), expected);
    },
  };
}
