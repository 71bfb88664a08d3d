/**
 * Authentication of incoming HTTP requests: bearer tokens and HMAC body
 * signatures, compared in constant time.
 */
import { createHash, createHmac, timingSafeEqual, type Hmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

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

/** How a request's body is signed: the `hmac` setting of `http.server`, parsed. */
export interface HmacSettings {
  secret: string;
  header: string;
  algorithm: string;
  prefix?: string;
  encoding: 'hex' | 'base64';
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
