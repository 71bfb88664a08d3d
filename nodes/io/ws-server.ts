import { randomUUID } from 'node:crypto';
import { Observable, type Subscription } from 'rxjs';
import { defineOperator, duration, size, z, type Batch, type BytesItem, type EventRecord } from '../../runtime/api.ts';
import { tokenAccepted } from '../../native/http/auth.ts';
import { createWebServer } from '../../native/http/server.ts';
import { SendWindow } from '../../native/http/client-queue.ts';
import { rejectUpgrade } from '../../native/http/upgrade.ts';
import { createWebSocketServer, socketOpen, type WebSocket, type WebSocketServer } from '../../native/http/websocket.ts';
import { ServerRun } from './web/server-run.ts';
import { checkTlsPaths, clientQueueSetting, listenSetting, pathsSetting, secretSetting, tlsFiles, tlsSetting } from './web/settings.ts';
import { InboundBatcher } from './web/inbound.ts';
import { isBytesItem, payloadLength, wirePayload } from './web/payload.ts';
import { parseJsonObject } from '../events/json-objects.ts';

interface Client {
  id: string;
  socket: WebSocket;
  path: string;
  window: SendWindow;
  /** Cleared at each ping, set again by the pong (or any message). */
  alive: boolean;
}

/** WebSocket close code 1013, "try again later": the server is full. */
const closeTryAgainLater = 1013;
const closeGoingAway = 1001;

export default defineOperator({
  name: 'ws.server',
  summary: 'A WebSocket server: sends its input to connected clients and emits what they send.',
  doc: 'Listens on `listen` for WebSocket connections on `path` (one or several). Every input record is sent to every connected client as one message (events as JSON, Bytes as they are), or only to the client it names: the event field `client_field`, or `meta.client` of a Bytes item (that client\'s id arrives with each message it sends). Messages from clients are emitted as Bytes with `meta.client` (an id) and `meta.path`, or with `format: json` as events (a message that is not a JSON object goes to the dead-letter port); with `client_field` set, the client id is written to that field. Each client has a bounded send queue (`client_queue`): a client that reads slower than records arrive is disconnected and what it missed is counted as dropped with reason `slow_client`, so one slow reader never grows the server\'s memory. Connections past `max_connections` are accepted and closed at once with code 1013 (try again later). Every `ping_interval` each client is pinged; one that has not answered the previous ping is terminated. With `token`, a connection must present it as `Authorization: Bearer TOKEN` or `?token=TOKEN` (browsers cannot set headers), or the upgrade is refused with 401. While too many received messages wait downstream (`max_in_flight`), the server stops reading from its clients, which then wait in TCP. The node stops when its input ends: clients are closed with code 1001 (going away). Delivery to clients is best effort: a record is acknowledged once handed to the sockets. With `tls`, it serves WebSocket over TLS (`wss://`), and a renewed certificate is picked up without a restart.',
  inputs: { in: { type: 'Any', doc: 'Records to send: to every client, or to the one named by `client_field` (events) or `meta.client` (Bytes).' } },
  outputs: { out: { type: 'Bytes', doc: 'Messages from clients, with `meta.client` and `meta.path`; events with `format: json`.', optional: true } },
  settings: z.object({
    listen: listenSetting(8081),
    tls: tlsSetting(),
    path: pathsSetting('The path, or paths, clients connect to; other paths get 404.'),
    format: z.enum(['bytes', 'json']).default('bytes').meta({ description: 'How received messages are emitted: `bytes` (with `meta.client`, `meta.path`) or `json` (each message parsed as one JSON object).' }),
    client_field: z.string().min(1).optional().meta({ description: 'An event field naming a client: on input, a record with it goes only to that client (the field is not sent); on output (`format: json`), the sender\'s id is written there.', examples: ['client'] }),
    frame: z.enum(['text', 'binary']).default('text').meta({ description: 'The WebSocket frame type of sent messages.' }),
    max_connections: z.number().int().min(1).default(1000).meta({ description: 'Clients connected at once; more are closed with code 1013.', examples: [100] }),
    client_queue: clientQueueSetting(),
    ping_interval: duration().prefault('30s').meta({ description: 'How often clients are pinged; a client that misses a pong is terminated.', examples: ['10s'] }),
    token: secretSetting().optional().meta({ description: 'A bearer token clients must present (header or `?token=`); write it as `${env:NAME}`.', examples: ['${env:WS_TOKEN}'] }),
    max_message: size().prefault('1MiB').meta({ description: 'The largest message accepted from a client; a larger one closes its connection (code 1009).', examples: ['64KiB'] }),
    max_in_flight: z.number().int().min(1).default(4096).meta({ description: 'Received messages emitted and not yet acknowledged downstream before the server stops reading from clients.' }),
  }),
  requires: ['listen'],
  checkPaths: (settings, resolvePath) => checkTlsPaths(settings.tls, resolvePath),
  example: { listen: '127.0.0.1:8081', path: '/feed' },
  infer(settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    const settings = ctx.settings;
    const binary = settings.frame === 'binary';
    const clientField = settings.client_field;

    return function wsServerNode(input) {
      return new Observable<Batch>((subscriber) => {
        const clients = new Map<string, Client>();
        let refused = 0;
        let inputSubscription: Subscription | undefined;
        // Made before the server listens: no upgrade arrives without it.
        let wss: WebSocketServer | undefined;
        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath) }, function notAnUpgrade(_request, response) {
          response.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'close' });
          response.end('this endpoint takes WebSocket connections\n');
        });
        const inbound = new InboundBatcher(ctx, {
          maxInFlight: settings.max_in_flight,
          emit: (batch) => subscriber.next(batch),
          pause: () => {
            for (const client of clients.values()) client.socket.pause();
          },
          resume: () => {
            for (const client of clients.values()) client.socket.resume();
          },
        });

        server.on('upgrade', function upgrade(request, socket, head) {
          const url = new URL(request.url ?? '/', 'http://localhost');
          if (run.stopping) return rejectUpgrade(socket, 503);
          if (!settings.path.includes(url.pathname)) return rejectUpgrade(socket, 404);
          if (!tokenAccepted(request, url, settings.token)) return rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer' });
          wss!.handleUpgrade(request, socket, head, function upgraded(ws) {
            if (run.stopping) {
              ws.close(closeGoingAway, 'server shutting down');
            } else if (clients.size >= settings.max_connections) {
              // Said once, then now and then: a crowd of refused clients must not flood the log.
              if (refused++ % 100 === 0) ctx.log.warn({ limit: settings.max_connections, refused }, 'connection refused: too many clients');
              ws.close(closeTryAgainLater, 'too many connections');
            } else {
              accept(ws, url.pathname);
            }
          });
        });

        function accept(ws: WebSocket, path: string): void {
          const id = randomUUID();
          const client: Client = { id, socket: ws, path, alive: true, window: new SendWindow(settings.client_queue, () => ws.bufferedAmount) };
          clients.set(id, client);
          if (inbound.paused) ws.pause();
          ws.on('pong', function pong() {
            client.alive = true;
          });
          ws.on('message', function message(data: Buffer, isBinary: boolean) {
            client.alive = true;
            receive(client, data, isBinary);
          });
          ws.on('close', function closed() {
            clients.delete(id);
          });
          ws.on('error', function clientError(error) {
            ctx.log.debug({ client: id, error: error.message }, 'client connection failed');
          });
          ctx.log.debug({ client: id, path }, 'client connected');
        }

        function receive(client: Client, data: Buffer, isBinary: boolean): void {
          ctx.metrics.bytes(data.length, 'read');
          const meta = { client: client.id, path: client.path };
          if (settings.format === 'bytes') {
            inbound.push(isBinary ? ({ data, meta } satisfies BytesItem) : ({ text: data.toString('utf8'), meta } satisfies BytesItem));
            return;
          }
          const text = data.toString('utf8');
          let record: EventRecord;
          try {
            record = parseJsonObject(text);
          } catch (error) {
            ctx.fail({ text, meta }, error);
            return;
          }
          if (clientField !== undefined) record[clientField] = client.id;
          inbound.push(record);
        }

        /** The client a record is addressed to, if any. */
        function addressee(item: unknown): string | undefined {
          if (isBytesItem(item)) {
            const target = item.meta?.client;
            return typeof target === 'string' ? target : undefined;
          }
          if (clientField === undefined || item === null || typeof item !== 'object') return undefined;
          const target = (item as EventRecord)[clientField];
          return typeof target === 'string' ? target : undefined;
        }

        function deliver(client: Client, payload: string | Buffer, bytes: number): void {
          if (client.socket.readyState !== socketOpen) return;
          if (!client.window.fits(bytes)) {
            // What waits for it is lost with the connection, and this message too.
            const lost = client.window.pending + 1;
            ctx.metrics.dropped(lost, 'slow_client');
            ctx.log.warn({ client: client.id, waiting: client.window.pending, bufferedBytes: client.socket.bufferedAmount }, 'slow client disconnected: its send queue is full');
            clients.delete(client.id);
            client.socket.terminate();
            return;
          }
          client.socket.send(payload, { binary }, client.window.track());
          ctx.metrics.bytes(bytes);
        }

        function send(batch: Batch): void {
          for (const item of batch.items) {
            const target = addressee(item);
            const payload = wirePayload(item, target === undefined ? undefined : clientField);
            const bytes = payloadLength(payload);
            if (target === undefined) {
              for (const client of clients.values()) deliver(client, payload, bytes);
              continue;
            }
            const client = clients.get(target);
            if (client) deliver(client, payload, bytes);
            else ctx.metrics.dropped(1, 'unknown_client');
          }
          batch.ack.release();
        }

        // Pings run on the runtime's clock, so tests (and a paused clock) decide when a silent client is dropped.
        let cancelPing = ctx.schedule(settings.ping_interval, function checkLiveness() {
          for (const client of clients.values()) {
            if (!client.alive) {
              ctx.log.info({ client: client.id }, 'client did not answer a ping; terminating it');
              clients.delete(client.id);
              client.socket.terminate();
              continue;
            }
            client.alive = false;
            client.socket.ping();
          }
          cancelPing = ctx.schedule(settings.ping_interval, checkLiveness);
        });

        const run = new ServerRun(ctx, server, subscriber, settings, {
          serving: 'listening for WebSocket connections',
          async prepare() {
            wss = await createWebSocketServer({ noServer: true, maxPayload: settings.max_message, perMessageDeflate: false, clientTracking: false });
          },
          closeClients,
          dropClients() {
            cancelPing();
            inbound.close();
            for (const client of clients.values()) client.socket.terminate();
            clients.clear();
          },
        });

        async function closeClients(): Promise<void> {
          cancelPing();
          inbound.close();
          const closing = [...clients.values()].map(
            (client) =>
              new Promise<void>((resolve) => {
                client.socket.once('close', () => resolve());
                client.socket.close(closeGoingAway, 'server shutting down');
              }),
          );
          const cancelGrace = ctx.schedule(1000, function terminateLingering() {
            for (const client of clients.values()) client.socket.terminate();
          });
          await Promise.all(closing);
          cancelGrace();
        }

        inputSubscription = input.subscribe({
          next: send,
          error: (error: unknown) => subscriber.error(error),
          complete: () => void run.drain(),
        });

        return function wsServerTeardown() {
          inputSubscription?.unsubscribe();
          run.teardown();
        };
      });
    };
  },
});
