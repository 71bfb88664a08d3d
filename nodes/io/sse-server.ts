import type { IncomingMessage, ServerResponse } from 'node:http';
import { Observable, type Subscription } from 'rxjs';
import { bytesText, defineOperator, duration, size, sinkBatches, z, type Batch } from '../../runtime/api.ts';
import { tokenAccepted } from '../../native/http/auth.ts';
import { createWebServer } from '../../native/http/server.ts';
import { SendWindow } from '../../native/http/client-queue.ts';
import { ServerRun } from './web/server-run.ts';
import { checkTlsPaths, clientQueueSetting, listenSetting, pathsSetting, secretSetting, tlsFiles, tlsSetting } from './web/settings.ts';
import { isBytesItem } from './web/payload.ts';
import { ReplayBuffer, type ReplayState } from './web/replay-buffer.ts';

interface Client {
  response: ServerResponse;
  window: SendWindow;
}

export default defineOperator({
  name: 'sse.server',
  summary: 'Server-Sent Events: pushes its input to browsers and other EventSource clients.',
  doc: 'Listens on `listen` and streams every input record to each client connected to `path` as one Server-Sent Event: events as JSON, Bytes as their text (a line per `data:` field), each with an increasing `id` and, with `event`, that event type. The last `replay` events are kept, so a client that reconnects with `Last-Event-ID` (browsers send it by themselves; `?last_event_id=` works too) first receives what it missed, when it is still kept. The ids and the kept events survive a reload of the node. A comment line goes to every client each `heartbeat`, so proxies keep idle connections open and dead ones are noticed. Each client has a bounded send queue (`client_queue`): a client that reads slower than events arrive is disconnected and what it missed is counted as dropped with reason `slow_client` (it may reconnect and resume from its last id). With `token`, a client must present it as `Authorization: Bearer TOKEN` or `?token=TOKEN` (browsers cannot set headers on an EventSource), or it gets 401. Connections past `max_connections` get 503. A record is acknowledged once it has been handed to the connected clients: delivery is best effort, with the replay buffer to bridge reconnections. With `tls`, it serves HTTPS, and a renewed certificate is picked up without a restart.',
  inputs: { in: { type: 'Any', doc: 'Records to stream: events are sent as JSON, Bytes as text.' } },
  outputs: {},
  settings: z.object({
    listen: listenSetting(8082),
    tls: tlsSetting(),
    path: pathsSetting('The path, or paths, of the event stream; other paths get 404.'),
    event: z.string().regex(/^[^\r\n]+$/, 'must be one line').optional().meta({ description: 'The event type of every event (`event:` field); absent means the default `message`.', examples: ['reading'] }),
    replay: z.number().int().min(0).default(1000).meta({ description: 'Events kept for clients resuming with `Last-Event-ID`; 0 keeps none.', examples: [10000] }),
    replay_bytes: size().prefault('16MiB').meta({ description: 'The most bytes the kept events may take; the oldest go first.', examples: ['64MiB'] }),
    heartbeat: duration().prefault('15s').meta({ description: 'How often a comment line is sent to every client to keep the connection alive.', examples: ['30s'] }),
    retry: duration().optional().meta({ description: 'The reconnection delay suggested to clients (`retry:` field).', examples: ['2s'] }),
    token: secretSetting().optional().meta({ description: 'A bearer token clients must present (header or `?token=`); write it as `${env:NAME}`.', examples: ['${env:SSE_TOKEN}'] }),
    max_connections: z.number().int().min(1).default(1000).meta({ description: 'Clients connected at once; more get 503.', examples: [100] }),
    client_queue: clientQueueSetting(),
    cors: z.string().optional().meta({ description: 'The `Access-Control-Allow-Origin` to answer with, for pages served from another origin.', examples: ['*', 'https://dashboard.example.com'] }),
  }),
  requires: ['listen'],
  checkPaths: (settings, resolvePath) => checkTlsPaths(settings.tls, resolvePath),
  example: { listen: '127.0.0.1:8082', path: '/events', replay: 1000 },
  create(ctx) {
    const settings = ctx.settings;
    const replay = new ReplayBuffer(settings.replay, settings.replay_bytes, ctx.restored as ReplayState | undefined);
    ctx.snapshot(() => replay.state());

    function frameOf(id: number, item: unknown): string {
      const text = isBytesItem(item) ? bytesText(item) : JSON.stringify(item);
      let frame = `id: ${id}\n`;
      if (settings.event !== undefined) frame += `event: ${settings.event}\n`;
      for (const line of text.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
      return `${frame}\n`;
    }

    return function sseServerNode(input) {
      return new Observable<Batch>((subscriber) => {
        const clients = new Set<Client>();
        let refused = 0;
        let sinkSubscription: Subscription | undefined;
        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath) }, handle);
        // On the runtime's clock (one timer at a time, each setting the next), so tests can drive it.
        let cancelHeartbeat = ctx.schedule(settings.heartbeat, function sendHeartbeat() {
          for (const client of clients) deliver(client, ': heartbeat\n\n');
          cancelHeartbeat = ctx.schedule(settings.heartbeat, sendHeartbeat);
        });
        const run = new ServerRun(ctx, server, subscriber, settings, {
          serving: 'serving Server-Sent Events',
          closeClients() {
            cancelHeartbeat();
            for (const client of clients) client.response.end();
            clients.clear();
          },
          dropClients() {
            cancelHeartbeat();
            for (const client of clients) client.response.destroy();
            clients.clear();
          },
        });

        function refuse(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
          response.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close', ...headers });
          response.end(`${message}\n`);
        }

        function handle(request: IncomingMessage, response: ServerResponse): void {
          const url = new URL(request.url ?? '/', 'http://localhost');
          const cors: Record<string, string> = settings.cors === undefined ? {} : { 'Access-Control-Allow-Origin': settings.cors };
          if (request.method === 'OPTIONS' && settings.cors !== undefined) {
            response.writeHead(204, { ...cors, 'Access-Control-Allow-Headers': 'Authorization, Last-Event-ID', 'Access-Control-Allow-Methods': 'GET' });
            response.end();
            return;
          }
          if (run.stopping) return refuse(response, 503, 'shutting down', { 'Retry-After': '1', ...cors });
          if (!settings.path.includes(url.pathname)) return refuse(response, 404, 'not found', cors);
          if (request.method !== 'GET') return refuse(response, 405, 'use GET', { Allow: 'GET', ...cors });
          if (!tokenAccepted(request, url, settings.token)) return refuse(response, 401, 'unauthorized', { 'WWW-Authenticate': 'Bearer', ...cors });
          if (clients.size >= settings.max_connections) {
            // Said once, then now and then: a crowd of refused clients must not flood the log.
            if (refused++ % 100 === 0) ctx.log.warn({ limit: settings.max_connections, refused }, 'connection refused: too many clients');
            return refuse(response, 503, 'too many connections', { 'Retry-After': '5', ...cors });
          }
          response.writeHead(200, {
            'Content-Type': 'text/event-stream; charset=utf-8',
            'Cache-Control': 'no-cache, no-transform',
            Connection: 'keep-alive',
            'X-Accel-Buffering': 'no',
            ...cors,
          });
          request.socket.setNoDelay(true);
          const client: Client = { response, window: new SendWindow(settings.client_queue, () => response.writableLength) };
          clients.add(client);
          response.on('close', () => clients.delete(client));
          let opening = settings.retry === undefined ? ': connected\n\n' : `retry: ${settings.retry}\n\n`;
          const header = request.headers['last-event-id'];
          const lastId = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('last_event_id') ?? '';
          if (/^\d+$/.test(lastId.trim())) opening += replay.since(Number(lastId));
          deliver(client, opening);
        }

        function deliver(client: Client, chunk: string): void {
          const bytes = Buffer.byteLength(chunk);
          if (!client.window.fits(bytes)) {
            ctx.metrics.dropped(client.window.pending + 1, 'slow_client');
            ctx.log.warn({ waiting: client.window.pending, bufferedBytes: client.response.writableLength }, 'slow client disconnected: its send queue is full');
            clients.delete(client);
            client.response.destroy();
            return;
          }
          client.response.write(chunk, client.window.track());
          ctx.metrics.bytes(bytes);
        }

        function broadcast(items: unknown[]): void {
          // One write per client per batch: the frames are joined once.
          let chunk = '';
          for (const item of items) {
            const id = replay.nextId();
            const frame = frameOf(id, item);
            replay.add(id, frame);
            chunk += frame;
          }
          for (const client of clients) deliver(client, chunk);
        }

        sinkSubscription = sinkBatches<unknown>(broadcast, () => run.drain())(input).subscribe({
          error: (error: unknown) => subscriber.error(error),
        });

        return function sseServerTeardown() {
          sinkSubscription?.unsubscribe();
          run.teardown();
        };
      });
    };
  },
});
