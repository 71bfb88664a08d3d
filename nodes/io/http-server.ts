import type { IncomingMessage, ServerResponse } from 'node:http';
import { Observable } from 'rxjs';
import { defineOperator, duration, reasonOf, size, traceRequest, z, type Batch, type BytesItem, type EventRecord, type TraceContext } from '../../runtime/api.ts';
import { bodySignature, tokenAccepted } from '../../native/http/auth.ts';
import { createWebServer } from '../../native/http/server.ts';
import { ServerRun } from './web/server-run.ts';
import { checkTlsPaths, hmacSetting, listenSetting, pathsSetting, secretSetting, tlsFiles, tlsSetting } from './web/settings.ts';
import { readBody } from './web/body.ts';

const methods = ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'] as const;

/** How much of a body that is not JSON a dead letter keeps. */
const excerptBytes = 1024;

export default defineOperator({
  name: 'http.server',
  summary: 'Receive webhooks: each accepted HTTP request becomes records.',
  doc: 'Listens on `listen` for requests to `path` with one of `methods`. With `format: json` (the default) a body holding a JSON object becomes one event and an array of objects one event each; with `format: bytes` the body becomes one Bytes item with `meta` (method, path, content type, and the request headers named in `headers`). A request is answered 200 only once every sink downstream has acknowledged its records (`respond: on_ack`), so a sender that gets anything else sends again and nothing is lost; if that takes longer than `ack_timeout` the answer is 503 (the records may still arrive: delivery is at least once). With `respond: immediately` the answer is 202 as soon as the records are handed on. A body larger than `max_body` gets 413 without being read into memory; a body that is not JSON (with `format: json`) gets 400 and goes to the dead-letter port. With `token`, requests must carry `Authorization: Bearer TOKEN` (or `?token=`); with `hmac`, a signature of the raw body in a header (GitHub\'s `X-Hub-Signature-256: sha256=<hex>` by default); either failing gets 401, and both are compared in constant time. While downstream is full, or `max_in_flight` requests wait for their acknowledgement, requests get 503 with `Retry-After`, which senders honour. With `tls`, it serves HTTPS, and a renewed certificate is picked up without a restart. When the node stops it refuses new requests and answers those in flight before it closes.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'The records of accepted requests: events, or Bytes with `format: bytes`.' } },
  settings: z.object({
    listen: listenSetting(8080),
    tls: tlsSetting(),
    path: pathsSetting('The path, or paths, that accept requests; other paths get 404.'),
    methods: z.array(z.enum(methods)).min(1).default(['POST']).meta({ description: 'The methods accepted; others get 405.', examples: [['POST', 'PUT']] }),
    format: z.enum(['json', 'bytes']).default('json').meta({ description: '`json`: the body is a JSON object or an array of objects, one event each; `bytes`: the body is one Bytes item.' }),
    max_body: size().prefault('1MiB').meta({ description: 'The largest body accepted; a larger one gets 413.', examples: ['256KiB', '10MiB'] }),
    token: secretSetting().optional().meta({ description: 'A bearer token requests must carry; write it as `${env:NAME}`.', examples: ['${env:WEBHOOK_TOKEN}'] }),
    hmac: hmacSetting(),
    respond: z.enum(['on_ack', 'immediately']).default('on_ack').meta({ description: '`on_ack`: answer 200 once the graph has acknowledged the records; `immediately`: answer 202 once they are handed on.' }),
    ack_timeout: duration().prefault('10s').meta({ description: 'How long a request waits for its acknowledgement before it is answered 503.', examples: ['30s'] }),
    retry_after: duration().prefault('1s').meta({ description: 'The `Retry-After` sent with 503 while the graph is busy.', examples: ['5s'] }),
    max_in_flight: z.number().int().min(1).default(1024).meta({ description: 'Requests waiting for their acknowledgement at once; more get 503.' }),
    headers: z.array(z.string().min(1)).optional().meta({ description: 'Request headers copied into each record\'s metadata (`meta.headers` of Bytes, or the `meta_field` of events).', examples: [['X-GitHub-Event', 'X-GitHub-Delivery']] }),
    meta_field: z.string().min(1).optional().meta({ description: 'With `format: json`, a field set on each event to the request\'s metadata (method, path, content type, the `headers` asked for).', examples: ['http'] }),
  }),
  requires: ['listen'],
  checkPaths: (settings, resolvePath) => checkTlsPaths(settings.tls, resolvePath),
  example: { listen: '127.0.0.1:8080', path: '/hooks/github', hmac: { secret: '${env:GITHUB_WEBHOOK_SECRET}' } },
  infer(settings) {
    return settings.format === 'bytes' ? { out: { kind: 'bytes' } } : {};
  },
  create(ctx) {
    const settings = ctx.settings;
    const retryAfter = String(Math.max(1, Math.ceil(settings.retry_after / 1000)));
    const copiedHeaders = (settings.headers ?? []).map((name) => name.toLowerCase());

    return function httpServerNode() {
      return new Observable<Batch>((subscriber) => {
        let inFlight = 0;
        /** Requests accepted and not yet answered; the node ends once none is left. */
        let unanswered = 0;
        let settled: (() => void) | undefined;
        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath) }, function onRequest(request, response) {
          handle(request, response).catch((error: unknown) => {
            ctx.log.error({ error: reasonOf(error) }, 'request failed');
            reply(response, 500, { error: 'internal error' }, { Connection: 'close' });
          });
        });

        function reply(response: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
          if (response.headersSent || response.destroyed) return;
          const text = JSON.stringify(body);
          response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
          response.end(text);
        }

        function metaOf(request: IncomingMessage, path: string): Record<string, unknown> {
          const meta: Record<string, unknown> = { method: request.method, path, content_type: request.headers['content-type'] };
          if (copiedHeaders.length > 0) {
            const headers: Record<string, string> = {};
            for (const name of copiedHeaders) {
              const value = request.headers[name];
              if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            meta.headers = headers;
          }
          return meta;
        }

        /** The records of a body, or why there are none (answered 400). */
        function recordsOf(body: Buffer, meta: Record<string, unknown>): unknown[] | Error {
          if (settings.format === 'bytes') return [{ data: body, meta } satisfies BytesItem];
          let value: unknown;
          try {
            value = JSON.parse(body.toString('utf8'));
          } catch (error) {
            return new Error(`the body is not JSON: ${reasonOf(error)}`);
          }
          const records = Array.isArray(value) ? value : [value];
          for (const record of records) {
            if (record === null || typeof record !== 'object' || Array.isArray(record)) return new Error('the body must be a JSON object or an array of objects');
          }
          if (settings.meta_field !== undefined) for (const record of records as EventRecord[]) record[settings.meta_field] = meta;
          return records;
        }

        async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
          const url = new URL(request.url ?? '/', 'http://localhost');
          // Refusals that leave the body unread close the connection: what follows on it is that body.
          const close = { Connection: 'close' };
          if (run.stopping) return reply(response, 503, { error: 'shutting down' }, { 'Retry-After': retryAfter, ...close });
          if (!settings.path.includes(url.pathname)) return reply(response, 404, { error: 'not found' }, close);
          if (!(settings.methods as readonly string[]).includes(request.method ?? '')) {
            return reply(response, 405, { error: `use ${settings.methods.join(', ')}` }, { Allow: settings.methods.join(', '), ...close });
          }
          if (!tokenAccepted(request, url, settings.token)) return reply(response, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer', ...close });
          if (inFlight >= settings.max_in_flight || ctx.ready() !== undefined) {
            return reply(response, 503, { error: 'busy, retry later' }, { 'Retry-After': retryAfter, ...close });
          }
          const declared = Number(request.headers['content-length']);
          if (declared > settings.max_body) return reply(response, 413, { error: `the body is larger than ${settings.max_body} bytes` }, close);

          const signature = settings.hmac ? bodySignature(settings.hmac, request) : undefined;
          const body = await readBody(request, settings.max_body, (chunk) => signature?.update(chunk));
          if (body === 'too_large') {
            reply(response, 413, { error: `the body is larger than ${settings.max_body} bytes` }, close);
            return;
          }
          if (body === 'aborted') return;
          if (signature && !signature.matches()) return reply(response, 401, { error: 'bad signature' });
          ctx.metrics.bytes(body.length);

          const meta = metaOf(request, url.pathname);
          const records = recordsOf(body, meta);
          if (records instanceof Error) {
            ctx.fail({ text: body.subarray(0, excerptBytes).toString('utf8'), meta }, records);
            return reply(response, 400, { error: records.message });
          }
          if (records.length === 0) return reply(response, 200, { ok: true, records: 0 });
          if (run.stopping) return reply(response, 503, { error: 'shutting down' }, { 'Retry-After': retryAfter });
          emit(records, response, ctx.tracing.enabled ? (traceRequest(ctx.tracing, request, response)?.context ?? null) : undefined);
        }

        /** `trace`: the request's span, the parent of the records' spans (null: not sampled; undefined: tracing off). */
        function emit(records: unknown[], response: ServerResponse, trace: TraceContext | null | undefined): void {
          const count = records.length;
          let answered = false;
          let cancelTimer: (() => void) | undefined;
          inFlight += 1;
          unanswered += 1;
          const settle = (): void => {
            answered = true;
            cancelTimer?.();
            unanswered -= 1;
            if (unanswered === 0) settled?.();
          };
          const answer = (status: number, body: object, headers?: Record<string, string>): void => {
            if (answered) return;
            settle();
            reply(response, status, body, headers);
          };
          const ack = ctx.newAck(function requestAcknowledged() {
            inFlight -= 1;
            answer(200, { ok: true, records: count });
          });
          if (settings.respond === 'immediately') {
            answer(202, { ok: true, records: count });
          } else {
            cancelTimer = ctx.schedule(settings.ack_timeout, function notAcknowledgedInTime() {
              ctx.log.warn({ records: count, timeoutMs: settings.ack_timeout }, 'records not acknowledged in time; answered 503');
              answer(503, { error: 'not acknowledged in time; send again' }, { 'Retry-After': retryAfter });
            });
            // A sender that hung up needs no answer; its records still go on.
            response.once('close', () => {
              if (!answered) settle();
            });
          }
          subscriber.next(trace === undefined ? { items: records, ack } : { items: records, ack, trace });
        }

        const run = new ServerRun(ctx, server, subscriber, settings, {
          serving: 'listening for requests',
          async closeClients() {
            // No new connections; requests already in get their answer before the port is freed.
            server.close();
            server.closeIdleConnections();
            if (unanswered > 0) await new Promise<void>((resolve) => (settled = resolve));
          },
          dropClients() {},
        });

        return function httpServerTeardown() {
          run.teardown();
        };
      });
    };
  },
});
