/**
 * Small pieces of the admin server: who may call it (bearer tokens, also as
 * a WebSocket subprotocol for browsers), whether an address is loopback,
 * JSON answers, and reading a bounded request body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { safeEqual } from '../../native/http/auth.ts';

/** The WebSocket subprotocol of the live feed. */
export const liveSubprotocol = 'streams.v1';
/** A browser cannot set headers on a WebSocket: it offers `streams.bearer.<base64url token>` as a subprotocol instead. */
export const bearerSubprotocolPrefix = 'streams.bearer.';

/** Whether `host` is a loopback address (or `localhost`). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Why the admin server must not start on `host` with `token`: reaching a
 * running graph from other machines without a token would let anyone reload
 * it. Undefined when it may.
 */
export function exposureProblem(option: string, host: string, token: string | undefined): string | undefined {
  if (token !== undefined && token !== '') return undefined;
  if (isLoopback(host)) return undefined;
  return `${option}: refusing to serve the admin API on ${host} (not loopback) without a token: set --ui-token TOKEN or STREAMS_UI_TOKEN, or listen on 127.0.0.1`;
}

/**
 * Whether a request presents `token`: `Authorization: Bearer TOKEN`, or (for
 * a WebSocket handshake) the bearer subprotocol. Always true without a token.
 */
export function authorized(request: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  if (match) return safeEqual(match[1], token);
  const offered = String(request.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith(bearerSubprotocolPrefix));
  if (!offered) return false;
  return safeEqual(Buffer.from(offered.slice(bearerSubprotocolPrefix.length), 'base64url').toString('utf8'), token);
}

/** Answers with JSON. */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** Answers with an error in the API's one shape: `{error: {code, message}}`. */
export function sendError(response: ServerResponse, status: number, code: string, message: string, extra: Record<string, unknown> = {}): void {
  sendJson(response, status, { error: { code, message, ...extra } });
}

/** Why a body was not read: it passed the limit (413). */
export class BodyTooLarge extends Error {
  readonly code = 'body_too_large';
}

/** Reads a request's body as UTF-8, refusing more than `limit` bytes (by its `content-length` first, then as it streams). */
export function readBody(request: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new BodyTooLarge(`the body is ${declared} bytes; the limit is ${limit}`));
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge(`the body passed the limit of ${limit} bytes`));
        chunks.length = 0;
        request.resume();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
