import type { ServerResponse } from 'node:http';
import { Observable, type Subscription } from 'rxjs';
import { defineOperator, duration, reasonOf, size, traceRequest, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { ServerRun } from '../io/web/server-run.ts';
import { createWebServer } from '../../native/http/server.ts';
import { checkTlsPaths, listenSetting, tlsFiles, tlsSetting } from '../io/web/settings.ts';
import { accessSettingsSchema } from './access/settings.ts';
import { createAccessPolicy, type AccessPolicy } from './access/policy.ts';
import type { Admit } from './edge/admit.ts';
import { busOptions, oneBus, purgeBusShape } from './purge/bus-setting.ts';
import { purgeSelectorOf } from './purge/command.ts';
import { startPurgeListener, type PurgeListener } from './purge/listener.ts';
import { accessRecordType, type AccessRecord } from './edge/access-log.ts';
import type { CachedObject } from './edge/cached-object.ts';
import { Edge } from './edge/edge.ts';
import { edgeMetrics } from './edge/edge-metrics.ts';
import { EdgeStore } from './edge/store.ts';
import { compileRule } from './edge/ttl-rules.ts';

/** Access records emitted together, and how often a partial batch goes out. */
const logBatch = 256;
const logFlushMs = 100;
/** Access records held while downstream is full; past it they are dropped and counted (`log_full`). */
const logBacklog = 50_000;
/** A client has this long to send its request headers (slow-loris bound). */
const headersTimeout = 10_000;
/** The average object the frequency sketch is sized for. */
const sketchObjectBytes = 32 * 1024;

const statsType =
  'Event<{edge: string, hits: number, misses: number, stale: number, coalesced: number, bytes: number, origin_requests: number, evictions: number, admission_rejected: number, refused: number, origin_errors: number, prefetches: number, objects: number, stored_bytes: number}>';

export default defineOperator({
  name: 'cache',
  summary: 'The CDN edge: an HTTP cache in front of an origin, with coalescing, purge and an access log.',
  doc:
    'Serves GET and HEAD on `listen` from memory, fetching what it lacks from `origin` (`http://` or `https://`, whose path is prefixed to every request). ' +
    'Request coalescing with read-while-write: concurrent misses for one object make one origin request, and every waiting client receives the bytes as they arrive from it (no lock to poll, no timeout after which waiters bypass the cache); a client that goes away does not cancel the fetch for the others. ' +
    'Memory is bounded by `size` (bytes) with W-TinyLFU eviction (Einziger, Friedman and Manes, "TinyLFU", ACM ToS 2017): new objects enter a small LRU window (1 %), and leave it for the main segmented LRU only if a count-min frequency sketch (with a doorkeeper and periodic halving) says they are asked for more often than what they would displace, so a flood of one-hit keys (a crawler, a cache-busting attack) passes through without flushing the hot set; it was chosen over plain LRU for that resistance and for its hit ratio on skewed (Zipf) media traffic (61.7 % against LRU\'s 51.5 % in `bench/cdn-hit-ratio.ts`, 62.6 % once warm), at a cost of a few bytes per object. ' +
    'Objects larger than `max_object` are streamed through, not kept, in bounded memory whatever their size. ' +
    'Lifetimes come from the origin\'s `Cache-Control` (`s-maxage`, `max-age`, `no-cache`; `no-store`, `private`, `Set-Cookie` and `Vary: *` are never stored) or `Expires`, else `default_ttl`; `ttl` rules (by path glob or content type) override the lifetime. ' +
    'An expired object is revalidated with its `ETag`/`Last-Modified` (a 304 refreshes it); within `stale_while_revalidate` it is served at once while one background request refreshes it; when the origin is down, slow or answers 5xx it is served stale within `stale_if_error`, else the answer is 502 (connection failed) or 504 (no answer within `origin_timeout`) with a text body saying which. ' +
    'A body shorter or longer than the origin\'s `Content-Length` is not kept and the clients\' connections are broken, not ended as if whole. `Vary` is honoured (the varied request headers are part of the key). `If-None-Match`/`If-Modified-Since` get 304 and single byte `Range` requests 206 (416 past the end) from cached objects. Answers carry `X-Cache: HIT|MISS|STALE|COALESCED` and `Age`; `GET /healthz` answers `ok`. ' +
    'Request targets with dot segments (`..`, `%2e%2e`), encoded slashes or backslashes, control characters, or longer than 8 KiB get 400 and are never forwarded; methods other than GET and HEAD get 405. ' +
    'LL-HLS: blocking playlist reloads (`_HLS_msn`, `_HLS_part`) are forwarded as such and coalesced per (playlist, msn, part); the part a playlist\'s `EXT-X-PRELOAD-HINT` names is requested once, as soon as the playlist passes, and streamed to every player asking for it; with `prefetch: n`, new segments a media playlist names are fetched before anyone asks. ' +
    'The `purge` input applies purge records (`{url}`, `{prefix}` or `{tag}`, with `soft: true` to mark stale so the next request revalidates instead of removing): the origin\'s `Surrogate-Key` and `Cache-Tag` headers give the tags (they are not passed to clients). ' +
    'The `log` port carries an access record per request when connected (not built otherwise); the `stats` port the counters once a second.',
  inputs: {
    purge: { type: 'Event', doc: 'Purge records: `{url}` (a path or full URL: every `Vary` variant), `{prefix}` (a path prefix) or `{tag}` (a `Surrogate-Key`/`Cache-Tag` tag), each with optional `soft: true`. Others go to the dead-letter port.', optional: true },
  },
  outputs: {
    log: { type: accessRecordType, doc: 'One access record per request: `ts` (arrival, ms since the epoch), `edge` (the `name` setting), `client` (IP), `method`, `path`, `status`, `bytes` (body bytes sent), `cache` (`HIT`, `MISS`, `STALE`, `COALESCED`, `PASS` or `NONE`), `ttfb_ms`, `duration_ms`, and `origin_status` when the origin was asked.', optional: true },
    stats: { type: statsType, doc: 'Once a second: the edge\'s counters so far (hits, misses, stale, coalesced, bytes sent, origin requests, evictions, objects refused by admission, requests refused, origin errors, prefetches) and the objects and bytes held.', optional: true },
  },
  settings: z.object({
    listen: listenSetting(8090),
    tls: tlsSetting(),
    access: accessSettingsSchema.prefault({}).meta({ description: 'Access rules checked before anything else is done for a request: signed URLs for path prefixes (`signed`, `sign_key`), IP allow/deny lists (CIDR), referrer rules, a per-client rate limit (token bucket; 429 with `Retry-After`), a cap on a client\'s concurrent requests, geo rules by a load balancer\'s country header or an IP range table. See docs/cdn-access.md.' }),
    purge_bus: z
      .object(purgeBusShape)
      .superRefine(oneBus)
      .optional()
      .meta({ description: 'The purge bus this edge listens on (Redis pub/sub with `redis`, Kafka with `brokers`, and `channel`): it registers under its `name`, applies every purge (`streams purge`, `cdn.purge`) and acknowledges it. Edge names must be unique on a channel.', examples: [{ redis: '${env:REDIS_URL}' }] }),
    name: z.string().min(1).optional().meta({ description: 'The edge\'s name in access records and stats; the node\'s name unless set.', examples: ['edge-paris-1'] }),
    origin: z
      .string()
      .refine((text) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol), { message: 'must be an http:// or https:// URL such as `http://127.0.0.1:8080`' })
      .meta({ description: 'The origin\'s URL; its path, if any, is prefixed to every request path.', examples: ['http://127.0.0.1:8080', 'https://origin.example.com/media'] }),
    size: size().prefault('1GiB').meta({ description: 'The bytes the cache may hold (bodies plus about 512 bytes an object).', examples: ['2GiB', '256MiB'] }),
    max_object: size().prefault('64MiB').meta({ description: 'The largest object kept; larger ones are streamed through to the clients asking at that moment, without being kept or buffered whole.', examples: ['64MiB', '1GiB'] }),
    default_ttl: duration().prefault('1m').meta({ description: 'The lifetime of a response whose origin gives none (no `Cache-Control` lifetime, no `Expires`) and that no rule matches.', examples: ['1m', '10s'] }),
    ttl: z
      .array(
        z.object({
          match: z.string().min(1).meta({ description: 'A path glob (`*.m3u8`, `/live/*`; `*` matches any characters, `/` included) or a content type (`video/mp4`, `video/*`).' }),
          ttl: duration().meta({ description: 'The lifetime to use.' }),
        }),
      )
      .default([])
      .meta({ description: 'Lifetimes by rule, overriding the origin\'s `Cache-Control`/`Expires` lifetime; the first matching rule wins.', examples: [[{ match: '*.m3u8', ttl: '1s' }, { match: '*.m4s', ttl: '1d' }]] }),
    stale_while_revalidate: duration().prefault('0s').meta({ description: 'How long past its lifetime an object is served while one background request refreshes it (the origin\'s `stale-while-revalidate` directive wins).', examples: ['10s'] }),
    stale_if_error: duration().prefault('1m').meta({ description: 'How long past its lifetime an object is served when the origin fails (cannot connect, times out, answers 5xx); the origin\'s `stale-if-error` directive wins.', examples: ['5m'] }),
    prefetch: z.number().int().min(0).max(16).default(0).meta({ description: 'New segments of a media playlist fetched before anyone asks, per playlist refresh.', examples: [2] }),
    origin_timeout: duration().prefault('10s').meta({ description: 'How long the origin may take to send the response headers, and the longest silence within a body. Blocking LL-HLS playlist requests wait at least 30 s.', examples: ['5s'] }),
    backlog: z.number().int().min(1).max(65535).default(4096).meta({ description: 'The listen backlog: connections the kernel has accepted and holds until the edge takes them, so a burst of new clients (a live event starting, a reconnect storm) waits in the queue instead of for a SYN retry a second later. The kernel caps it at `net.core.somaxconn` (4096 on Linux since 5.4). Node\'s default is 511.', examples: [4096, 16384] }),
    max_connections: z.number().int().min(1).default(20_000).meta({ description: 'Open client connections accepted; past it new ones are closed at once.', examples: [20000] }),
  }),
  requires: ['listen'],
  checkPaths: (settings, resolvePath) => checkTlsPaths(settings.tls, resolvePath),
  example: { listen: '127.0.0.1:8090', origin: 'http://127.0.0.1:8080', size: '2GiB', ttl: [{ match: '*.m3u8', ttl: '1s' }, { match: '*.m4s', ttl: '1d' }], prefetch: 2 },
  create(ctx) {
    const settings = ctx.settings;
    const name = settings.name ?? ctx.node;
    return function cacheNode(input) {
      return new Observable<Batch>((subscriber) => {
        const store = new EdgeStore<CachedObject>({
          maxBytes: settings.size,
          expectedObjects: Math.min(4_000_000, Math.max(1024, Math.floor(settings.size / sketchObjectBytes))),
        });
        let backlog: AccessRecord[] = [];
        let flushTimer: (() => void) | undefined;
        let logFullWarned = false;
        const logging = ctx.connected('log');

        function flushLog(): void {
          flushTimer?.();
          flushTimer = undefined;
          if (backlog.length === 0) return;
          // Downstream full: hold records (bounded) until it has room; the engine's gate says when.
          const wait = ctx.ready();
          if (wait) {
            void wait.then(() => scheduleFlush(0));
            return;
          }
          const items = backlog;
          backlog = [];
          subscriber.next({ items, ack: ctx.newAck(), port: 'log' });
        }
        function scheduleFlush(ms: number): void {
          if (flushTimer === undefined) flushTimer = ctx.schedule(ms, flushLog);
        }
        function logRecord(record: AccessRecord): void {
          if (backlog.length >= logBacklog) {
            ctx.metrics.dropped(1, 'log_full');
            if (!logFullWarned) {
              logFullWarned = true;
              ctx.log.warn({ backlog: logBacklog }, `${ctx.label}: the \`log\` port's consumer is too slow; access records past ${logBacklog} waiting are dropped and counted (reason \`log_full\`)`);
            }
            return;
          }
          backlog.push(record);
          if (backlog.length >= logBatch) flushLog();
          else scheduleFlush(logFlushMs);
        }

        const policy = createAccessPolicy(settings.access);
        const edge = new Edge({
          name,
          admit: policy.admitsAll ? undefined : admitWith(policy, () => ctx.now()),
          origin: new URL(settings.origin),
          maxObject: settings.max_object,
          originTimeoutMs: settings.origin_timeout,
          rules: settings.ttl.map(compileRule),
          defaultTtl: settings.default_ttl,
          staleWhileRevalidate: settings.stale_while_revalidate,
          staleIfError: settings.stale_if_error,
          prefetch: settings.prefetch,
          store,
          now: () => ctx.now(),
          log: logging ? logRecord : undefined,
        });

        ctx.metrics.expose(() => edgeMetrics(name, edge, store, () => policy.refusals()));
        function requestFailed(response: ServerResponse, error: unknown): void {
          ctx.log.error({ error: reasonOf(error) }, 'request failed');
          if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('internal error\n');
          else response.destroy();
        }
        // The edge answers GET and HEAD and never reads a request body: Node skips an idle request's body stream.
        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath), ignoresRequestBodies: true }, function onEdgeRequest(request, response) {
          traceRequest(ctx.tracing, request, response);
          let answering: Promise<void> | undefined;
          try {
            answering = edge.handle(request, response);
          } catch (error) {
            requestFailed(response, error);
            return;
          }
          // A hit is answered synchronously: no promise to watch.
          answering?.catch((error: unknown) => requestFailed(response, error));
        });
        server.maxConnections = settings.max_connections;
        server.headersTimeout = headersTimeout;
        let purgeListener: PurgeListener | undefined;
        const run = new ServerRun(ctx, server, subscriber, { listen: settings.listen, path: ['/'], backlog: settings.backlog }, {
          serving: 'serving the edge cache',

          closeClients: async () => {
            flushLog();
            stopped = true;
            await purgeListener?.stop();
          },
          dropClients: () => edge.close(),
        });

        // The edge serves while its purge listener connects (on Redis it waits for the server, logging each failure); a Kafka bus that cannot be reached fails the node, which restarts.
        let stopped = false;
        if (settings.purge_bus) {
          startPurgeListener({ ...busOptions(settings.purge_bus), edge: name }, (selector) => edge.purge(selector), ctx.log).then(
            (listener) => {
              if (stopped) void listener.stop();
              else purgeListener = listener;
            },
            (error: unknown) => subscriber.error(error),
          );
        }

        let bytesCounted = 0;
        let cancelStats: (() => void) | undefined;
        function everySecond(): void {
          const counters = edge.counters;
          ctx.metrics.bytes(counters.bytes - bytesCounted, 'written');
          bytesCounted = counters.bytes;
          if (ctx.connected('stats')) {
            const record: EventRecord = { edge: name, ...counters, evictions: store.counters.evictions, admission_rejected: store.counters.rejected, objects: store.count, stored_bytes: store.bytes };
            subscriber.next({ items: [record], ack: ctx.newAck(), port: 'stats' });
          }
          cancelStats = ctx.schedule(1000, everySecond);
        }
        cancelStats = ctx.schedule(1000, everySecond);

        const inputSubscription: Subscription = input.subscribe({
          next(batch) {
            for (const item of batch.items) {
              const selector = purgeSelectorOf(item, false);
              if (typeof selector === 'string') {
                ctx.fail(item, new Error(selector), batch.ack);
                continue;
              }
              const count = edge.purge(selector);
              ctx.log.info({ kind: selector.kind, value: selector.value, soft: selector.soft, count }, `purged ${count} object(s)`);
            }
            batch.ack.release();
          },
          error: (error: unknown) => subscriber.error(error),
          complete: () => void run.drain(),
        });

        return function cacheTeardown() {
          inputSubscription.unsubscribe();
          cancelStats?.();
          flushTimer?.();
          stopped = true;
          run.teardown();
          void purgeListener?.stop();
          edge.close();
          store.clear();
        };
      });
    };
  },
});

/** Nothing to read: the policy does not look at queries. */
const noQuery = new URLSearchParams();

/**
 * The edge's admit step for an access policy: the query is parsed only when
 * the policy reads it, and a request on a signed link has the links of the
 * playlists sent to it signed with its link's expiry.
 */
function admitWith(policy: AccessPolicy, now: () => number): Admit {
  return function admitByPolicy(request) {
    const query = policy.readsQuery && request.query !== '' ? new URLSearchParams(request.query) : noQuery;
    const decision = policy.admit({ path: request.path, query, ip: request.client, headers: request.headers }, now());
    if (!decision.ok || decision.signedExpires === undefined) return decision;
    const { path } = request;
    const expires = decision.signedExpires;
    return { ok: true, release: decision.release, rewritePlaylist: (body: string) => policy.signPlaylist(body, path, expires), target: withoutSignature(path, request.query) };
  };
}

/** A signed link's target without its `expires` and `sig` parameters (the others, `_HLS_msn` for one, kept in order). */
export function withoutSignature(path: string, query: string): string {
  const kept = query.split('&').filter((pair) => {
    const equals = pair.indexOf('=');
    const name = equals < 0 ? pair : pair.slice(0, equals);
    return pair !== '' && name !== 'expires' && name !== 'sig';
  });
  return kept.length === 0 ? path : `${path}?${kept.join('&')}`;
}
