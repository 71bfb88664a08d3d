/**
 * `POST /api/v1/cdn/cache/purge`, as a function of the request body: the
 * admin server routes the request here and writes back what it returns.
 * Body: `{"url": "/live/a.m3u8"}` or `{"prefix": "/live/"}` or
 * `{"tag": "match-42"}`, with optional `"soft": true` and `"timeout": "5s"`.
 *
 * Answers:
 * - 200 `{ complete: true, ...report }`: every registered edge applied it;
 * - 504 `{ complete: false, ...report }`: some edges failed or did not
 *   acknowledge within the timeout (named in `missing` and `failed`);
 * - 503 `{ error }`: no edge is registered on the channel, or the bus
 *   cannot be reached;
 * - 400 `{ error }`: the body is not one of the shapes above.
 */
import { duration, z } from '../../../runtime/api.ts';
import { PurgeBusError, type PurgeBusOptions } from './bus.ts';
import type { PurgeSelector } from './command.ts';
import { sendPurge, type PurgeReport, type PurgeSender } from './send.ts';

/** The answer to write: an HTTP status and a JSON body. */
export interface PurgeResponse {
  status: number;
  json: Record<string, unknown>;
}

/** Where to send, and the defaults of the endpoint. */
export interface PurgeEndpointOptions extends PurgeBusOptions {
  /** Timeout when the body gives none. Default 5 s. */
  defaultTimeoutMs?: number;
  /** The longest timeout a body may ask for (a request must not hold a connection for ever). Default 60 s. */
  maxTimeoutMs?: number;
  /** A sender kept open by the caller; without one, each request opens and closes its own. */
  sender?: PurgeSender;
}

const bodySchema = z.strictObject({
  url: z.string().min(1).max(8192).optional(),
  prefix: z.string().min(1).max(8192).optional(),
  tag: z.string().min(1).max(8192).optional(),
  soft: z.boolean().default(false),
  timeout: duration().optional(),
});

function badRequest(message: string): PurgeResponse {
  return { status: 400, json: { error: { code: 'bad_request', message } } };
}

/** Reads the body (parsed JSON or its text) into a selector and a timeout, or the 400 answer. */
export function parsePurgeBody(body: unknown, options: Pick<PurgeEndpointOptions, 'defaultTimeoutMs' | 'maxTimeoutMs'> = {}): { selector: PurgeSelector; timeoutMs: number } | PurgeResponse {
  let value = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch (error) {
      return badRequest(`the body is not JSON: ${(error as Error).message}`);
    }
  }
  const parsed = bodySchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return badRequest(`${issue.path.length > 0 ? `\`${issue.path.join('.')}\`: ` : ''}${issue.message} (expected {"url"|"prefix"|"tag": string, "soft"?: boolean, "timeout"?: "5s"})`);
  }
  const kinds = (['url', 'prefix', 'tag'] as const).filter((kind) => parsed.data[kind] !== undefined);
  if (kinds.length !== 1) return badRequest(`give exactly one of \`url\`, \`prefix\` or \`tag\`${kinds.length > 1 ? ` (got ${kinds.join(', ')})` : ''}`);
  const kind = kinds[0];
  let timeoutMs = options.defaultTimeoutMs ?? 5_000;
  if (parsed.data.timeout !== undefined) {
    const max = options.maxTimeoutMs ?? 60_000;
    if (parsed.data.timeout <= 0 || parsed.data.timeout > max) return badRequest(`\`timeout\` must be more than 0 and at most ${max} ms`);
    timeoutMs = parsed.data.timeout;
  }
  return { selector: { kind, value: parsed.data[kind] ?? '', soft: parsed.data.soft }, timeoutMs };
}

/**
 * Validates a purge request body and sends the purge; never throws for a
 * bad body or an unreachable bus (those are answers).
 *
 * @example
 * admin.route(async (request, response, url) => {
 *   if (request.method !== 'POST' || url.pathname !== '/api/v1/cdn/cache/purge') return false;
 *   const { status, json } = await handlePurgeRequest(await readBody(request, 65536), { redis, channel: 'streams:cdn:purge' });
 *   sendJson(response, status, json);
 *   return true;
 * });
 */
export async function handlePurgeRequest(body: unknown, options: PurgeEndpointOptions): Promise<PurgeResponse> {
  const request = parsePurgeBody(body, options);
  if ('status' in request) return request;
  let report: PurgeReport;
  try {
    report = options.sender ? await options.sender.send(request.selector, request.timeoutMs) : await sendPurge(options, request.selector, request.timeoutMs);
  } catch (error) {
    if (error instanceof PurgeBusError) return { status: 503, json: { error: { code: error.code, message: error.message } } };
    throw error;
  }
  if (report.registered === 0 && report.applied.length === 0) {
    return { status: 503, json: { error: { code: 'no_edges', message: `no edge is registered on the purge channel \`${options.channel}\`` }, ...report } };
  }
  const complete = report.missing.length === 0 && report.failed.length === 0;
  return { status: complete ? 200 : 504, json: { complete, selector: request.selector, ...report } };
}
