import { Observable, type Subscription } from 'rxjs';
import { defineOperator, duration, reasonOf, sinkBatches, traceRequest, z, type Batch } from '../../runtime/api.ts';
import type { CmafItem } from '../../media/segment.ts';
import { createWebServer } from '../../native/http/server.ts';
import { ServerRun } from '../io/web/server-run.ts';
import { checkTlsPaths, listenSetting, tlsFiles, tlsSetting } from '../io/web/settings.ts';
import { OriginStore } from './origin/store.ts';
import { originRoutes } from './origin/routes.ts';
import { sendError } from './origin/respond.ts';

/** How long a client may take to send its request headers, and the whole request, ms. */
const headersTimeout = 10_000;
const requestTimeout = 30_000;

export default defineOperator({
  name: 'serve.http',
  summary: 'The origin: serves live streams from memory as HLS, LL-HLS and DASH.',
  doc: 'Keeps the window of CMAF segments of every live stream it receives from a packager (`segment.hls`) in memory and serves it over HTTP: `{path_prefix}/{key}/master.m3u8` (a variant per video track with its measured `BANDWIDTH`, `AVERAGE-BANDWIDTH`, `RESOLUTION`, `CODECS`, `FRAME-RATE`, and the audio group), `{path_prefix}/{key}/{track}/index.m3u8` (sliding window, `EXT-X-PROGRAM-DATE-TIME`, discontinuities, `EXT-X-ENDLIST` at the end; with parts, LL-HLS `EXT-X-PART`, `EXT-X-PRELOAD-HINT` and blocking reload through `_HLS_msn` and `_HLS_part`, answered the moment the part exists, 503 after three target durations; a media playlist\'s `X-Streams-Closed-At` header is when the packet that closed its newest part or segment reached the engine, ms since the epoch, for latency measurements), `init-{epoch}-1.mp4` (a configuration change gives `init-{epoch}-2.mp4`, ...), `{epoch}-{msn}.m4s` and `{epoch}-{msn}.{part}.m4s` (a preload-hinted part is held until it is complete), where the epoch names the publish (`CmafInit.epoch`; a new publish gets a new one, so a cached URL never gets other bytes), `{path_prefix}/{key}/manifest.mpd` when the packager publishes DASH (dynamic, SegmentTimeline; with parts, `availabilityTimeOffset` and the segment being cut is streamed as it grows), a player page at `{path_prefix}/{key}/` (hls.js, or dash.js with `?dash`, served from the origin itself), and `/healthz`. Playlists are `no-cache`, finished segments and inits immutable; `Range` and CORS are honoured. Requests held open are bounded (`max_waiting_per_stream`, `max_waiting`: more get 503 with `Retry-After`) and released when the client goes away; connections are bounded by `max_connections`, and a client has 10 s to send its headers. Memory is the window of each stream and no more; an ended stream is kept `keep_ended`, then dropped. Stream keys and track names must be letters, digits, `_`, `.` or `-`: items with others go to the dead-letter port, as do items past `max_streams`. With `tls`, it serves HTTPS, and a renewed certificate is picked up without a restart.',
  inputs: { in: { type: 'Segment<cmaf>', doc: 'Init segments, parts, segments and ends from a CMAF packager.' } },
  outputs: {},
  settings: z.object({
    listen: listenSetting(8080),
    tls: tlsSetting(),
    path_prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9_.\/-]*$/, 'must be a URL path such as `/live`')
      .default('/live')
      .transform((prefix) => prefix.replace(/\/+$/, ''))
      .meta({ description: 'The URL path the streams are served under: `{path_prefix}/{key}/master.m3u8`.', examples: ['/live', '/hls'] }),
    cors: z
      .union([z.string().min(1), z.literal(false)])
      .default('*')
      .meta({ description: 'The `Access-Control-Allow-Origin` sent to browser players; `false` sends no CORS headers.', examples: ['*', 'https://player.example.com', false] }),
    max_streams: z.number().int().min(1).default(100).meta({ description: 'Streams served at once; items of more streams go to the dead-letter port.', examples: [500] }),
    max_waiting: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .meta({ description: 'Requests held open at once over all streams (blocking playlist reloads, preload-hinted parts, DASH segments streamed while cut); more get 503 with `Retry-After`.', examples: [10000] }),
    max_waiting_per_stream: z.number().int().min(1).default(1000).meta({ description: 'Requests held open at once on one stream; more get 503 with `Retry-After`.', examples: [1000] }),
    max_connections: z.number().int().min(1).default(20_000).meta({ description: 'Open connections the server accepts; past it new ones are closed at once.', examples: [20000] }),
    master_wait: duration().prefault('0s').meta({ description: 'How long after a stream starts a master playlist may be held back, so rungs an encoder starts a moment after the source are listed too (players do not reload the master). The hold ends sooner once every rendition the encoder announced has a segment (`encode` announces its rungs), so this is a bound for a late encoder: `3s` with `encode` upstream.', examples: ['3s'] }),
    keep_ended: duration().prefault('30s').meta({ description: 'How long an ended stream stays served (its playlists end with `EXT-X-ENDLIST`) before it is dropped.', examples: ['2m'] }),
  }),
  requires: ['listen'],
  checkPaths: (settings, resolvePath) => checkTlsPaths(settings.tls, resolvePath),
  example: { listen: '127.0.0.1:8080', path_prefix: '/live' },
  create(ctx) {
    const settings = ctx.settings;
    return function serveHttpNode(input) {
      return new Observable<Batch>((subscriber) => {
        const store = new OriginStore(
          { now: () => ctx.now(), schedule: (ms, fn) => ctx.schedule(ms, fn) },
          { maxStreams: settings.max_streams, keepEndedMs: settings.keep_ended, hold: { perStream: settings.max_waiting_per_stream, total: settings.max_waiting } },
        );
        const refusals = new Map<string, number>();
        const routes = originRoutes(store, { prefix: settings.path_prefix, cors: settings.cors, now: () => ctx.now(), schedule: (ms, fn) => ctx.schedule(ms, fn), masterWaitMs: settings.master_wait, stopping: () => run.stopping });
        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath) }, function onOriginRequest(request, response) {
          traceRequest(ctx.tracing, request, response);
          routes(request, response).catch((error: unknown) => {
            ctx.log.error({ error: reasonOf(error) }, 'request failed');
            sendError(response, 500, 'internal error');
          });
        });
        server.maxConnections = settings.max_connections;
        // A client must send its request promptly (slow-loris bounds); held answers are not counted against these.
        server.headersTimeout = headersTimeout;
        server.requestTimeout = requestTimeout;
        const run = new ServerRun(ctx, server, subscriber, { listen: settings.listen, path: [settings.path_prefix] }, {
          serving: 'serving live streams',
          // Waiting requests are answered (the streams are gone) before the port closes.
          closeClients: () => store.clear(),
          dropClients: () => store.clear(),
        });

        function apply(items: CmafItem[], batch: Batch): void {
          for (const item of items) {
            const rejection = store.apply(item);
            if (rejection === undefined) {
              if (item.type !== 'end') ctx.metrics.bytes(item.data.length);
              continue;
            }
            // Said once per reason, then every hundredth time; never with the stream key, which is a secret.
            const count = (refusals.get(rejection.reason) ?? 0) + 1;
            refusals.set(rejection.reason, count);
            if (count % 100 === 1) ctx.log.warn({ reason: rejection.reason, count }, `item refused: ${rejection.message}`);
            ctx.fail(item, new Error(rejection.message), batch.ack);
          }
        }

        const sinkSubscription: Subscription = sinkBatches<CmafItem>(apply, () => run.drain())(input).subscribe({
          error: (error: unknown) => subscriber.error(error),
        });

        return function serveHttpTeardown() {
          sinkSubscription.unsubscribe();
          run.teardown();
          store.clear();
        };
      });
    };
  },
});
