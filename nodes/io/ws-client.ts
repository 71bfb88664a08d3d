import { Observable, type Subscription } from 'rxjs';
import { backoffDelay, defineOperator, duration, reasonOf, redactUrl, size, z, type Batch, type BytesItem } from '../../runtime/api.ts';
import { loadWebSocketClient, socketClosed, socketOpen, type WebSocket } from '../../native/http/websocket.ts';
import { secretSetting } from './web/settings.ts';
import { InboundBatcher } from './web/inbound.ts';
import { parseJsonObject, payloadLength, wirePayload } from './web/payload.ts';

/** A connection that lasted this long was healthy: the next failure starts the backoff afresh. */
const healthyAfterMs = 5_000;

export default defineOperator({
  name: 'ws.client',
  summary: 'A WebSocket client: sends its input to a server and emits what the server sends.',
  doc: 'Connects to `url` (`ws://` or `wss://`) and keeps connected: when the connection fails or drops it reconnects with exponential backoff (from `reconnect_delay` up to `reconnect_max`, with jitter), logging the first failure with the node and the URL (passwords and tokens hidden). Each input record is sent as one message (events as JSON, Bytes as they are). A batch is acknowledged once the socket has taken all of it; while the client is disconnected it takes no more input, so records wait in its input channel and backpressure reaches the sources. A batch cut off by a dropped connection is sent again in full on the next one (at least once). Messages from the server are emitted as Bytes, or with `format: json` as events (a message that is not a JSON object goes to the dead-letter port); while too many wait downstream (`max_in_flight`) the client stops reading. Every `ping_interval` the server is pinged; a server that missed the previous pong is taken for dead and the client reconnects. The node stops when its input ends.',
  inputs: { in: { type: 'Any', doc: 'Records to send to the server.' } },
  outputs: { out: { type: 'Bytes', doc: 'Messages from the server; events with `format: json`.', optional: true } },
  settings: z.object({
    url: z.string().regex(/^wss?:\/\//, 'must start with `ws://` or `wss://`').meta({ description: 'The server to connect to.', examples: ['ws://127.0.0.1:8081/feed'] }),
    token: secretSetting().optional().meta({ description: 'A bearer token sent as `Authorization: Bearer TOKEN`; write it as `${env:NAME}`.', examples: ['${env:WS_TOKEN}'] }),
    headers: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional().meta({ description: 'Extra headers of the handshake; values may use `${env:NAME}`.', examples: [{ 'X-Client': 'streams' }] }),
    format: z.enum(['bytes', 'json']).default('bytes').meta({ description: 'How received messages are emitted: `bytes` or `json` (each parsed as one JSON object).' }),
    frame: z.enum(['text', 'binary']).default('text').meta({ description: 'The WebSocket frame type of sent messages.' }),
    reconnect_delay: duration().prefault('500ms').meta({ description: 'The wait before the first reconnection; it doubles at each failure.', examples: ['1s'] }),
    reconnect_max: duration().prefault('30s').meta({ description: 'The longest wait between reconnections.', examples: ['1m'] }),
    connect_timeout: duration().prefault('10s').meta({ description: 'How long the opening handshake may take.', examples: ['5s'] }),
    ping_interval: duration().prefault('30s').meta({ description: 'How often the server is pinged; one that misses a pong is taken for dead.', examples: ['10s'] }),
    max_message: size().prefault('1MiB').meta({ description: 'The largest message accepted from the server.', examples: ['16MiB'] }),
    max_in_flight: z.number().int().min(1).default(4096).meta({ description: 'Received messages emitted and not yet acknowledged downstream before the client stops reading.' }),
  }),
  example: { url: 'ws://127.0.0.1:8081/feed', format: 'json' },
  paced: true,
  infer(settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    const settings = ctx.settings;
    const shownUrl = redactUrl(settings.url);
    const binary = settings.frame === 'binary';
    const headers: Record<string, string> = { ...settings.headers };
    if (settings.token !== undefined) headers.Authorization = `Bearer ${settings.token}`;

    return function wsClientNode(input) {
      return new Observable<Batch>((subscriber) => {
        let WebSocketClient: typeof WebSocket | undefined;
        let socket: WebSocket | undefined;
        let open: WebSocket | undefined;
        let stopped = false;
        let attempt = 0;
        let alive = true;
        let reconnectTimer: NodeJS.Timeout | undefined;
        let waiters: ((ws: WebSocket | undefined) => void)[] = [];
        let chain: Promise<void> = Promise.resolve();
        let inputSubscription: Subscription | undefined;

        const inbound = new InboundBatcher(ctx, {
          maxInFlight: settings.max_in_flight,
          emit: (batch) => subscriber.next(batch),
          pause: () => open?.pause(),
          resume: () => open?.resume(),
        });

        function connect(): void {
          if (stopped || !WebSocketClient) return;
          let lastError = 'connection closed';
          let openedAt: number | undefined;
          const ws = new WebSocketClient(settings.url, { headers, handshakeTimeout: settings.connect_timeout, maxPayload: settings.max_message, perMessageDeflate: false });
          socket = ws;
          ws.on('open', function opened() {
            openedAt = Date.now();
            open = ws;
            alive = true;
            if (attempt > 0) ctx.log.info({ url: shownUrl, attempts: attempt }, 'connected');
            else ctx.log.debug({ url: shownUrl }, 'connected');
            if (inbound.paused) ws.pause();
            for (const wake of waiters.splice(0)) wake(ws);
          });
          ws.on('message', function message(data: Buffer, isBinary: boolean) {
            alive = true;
            receive(data, isBinary);
          });
          ws.on('pong', function pong() {
            alive = true;
          });
          ws.on('error', function failed(error) {
            lastError = error.message;
          });
          ws.on('close', function closed(code: number, reason: Buffer) {
            if (open === ws) open = undefined;
            if (socket === ws) socket = undefined;
            if (stopped) return;
            if (openedAt !== undefined && Date.now() - openedAt >= healthyAfterMs) attempt = 0;
            const why = openedAt !== undefined ? `connection closed (code ${code}${reason.length > 0 ? `: ${reason.toString('utf8')}` : ''})` : lastError;
            scheduleReconnect(why, openedAt !== undefined);
          });
        }

        function scheduleReconnect(reason: string, wasOpen: boolean): void {
          const delay = backoffDelay(attempt, settings.reconnect_delay, settings.reconnect_max);
          attempt += 1;
          const fields = { url: shownUrl, error: reason, retryInMs: delay, attempt };
          // The first failure of an outage is news; the rest repeat it, so only now and then.
          if (wasOpen) ctx.log.warn(fields, `${ctx.label}: lost the connection to ${shownUrl}; reconnecting`);
          else if (attempt === 1 || attempt % 10 === 0) ctx.log.warn(fields, `${ctx.label}: cannot connect to ${shownUrl}: ${reason}; retrying`);
          else ctx.log.debug(fields, 'reconnection failed');
          reconnectTimer = setTimeout(() => {
            reconnectTimer = undefined;
            connect();
          }, delay);
        }

        function receive(data: Buffer, isBinary: boolean): void {
          ctx.metrics.bytes(data.length, 'read');
          if (settings.format === 'bytes') {
            inbound.push(isBinary ? ({ data } satisfies BytesItem) : ({ text: data.toString('utf8') } satisfies BytesItem));
            return;
          }
          const text = data.toString('utf8');
          try {
            inbound.push(parseJsonObject(text));
          } catch (error) {
            ctx.fail({ text }, error);
          }
        }

        /** The open connection, once there is one; undefined once stopped. */
        function connected(): Promise<WebSocket | undefined> {
          if (stopped) return Promise.resolve(undefined);
          if (open && open.readyState === socketOpen) return Promise.resolve(open);
          return new Promise((resolve) => waiters.push(resolve));
        }

        function sendAll(ws: WebSocket, items: unknown[]): Promise<void> {
          return new Promise((resolve, reject) => {
            let waiting = items.length;
            let failed = false;
            const done = (error?: Error | null): void => {
              if (failed) return;
              if (error) {
                failed = true;
                reject(error);
                return;
              }
              if (--waiting === 0) resolve();
            };
            if (waiting === 0) return resolve();
            for (const item of items) {
              const payload = wirePayload(item);
              ctx.metrics.bytes(payloadLength(payload));
              ws.send(payload, { binary }, done);
            }
          });
        }

        async function sendBatch(batch: Batch): Promise<void> {
          for (;;) {
            const ws = await connected();
            // Stopped before it could be sent: left unacknowledged, so the source sends it again.
            if (!ws) return;
            try {
              await sendAll(ws, batch.items);
              break;
            } catch (error) {
              ctx.log.debug({ error: reasonOf(error), records: batch.items.length }, 'connection lost while sending; the batch goes again on the next connection');
            }
          }
          batch.ack.release();
          ctx.batchDone();
        }

        const pinger = setInterval(function checkLiveness() {
          if (!open) return;
          if (!alive) {
            ctx.log.warn({ url: shownUrl }, 'server did not answer a ping; reconnecting');
            open.terminate();
            return;
          }
          alive = false;
          open.ping();
        }, settings.ping_interval);

        async function shutdown(): Promise<void> {
          if (stopped) return;
          stopped = true;
          clearInterval(pinger);
          if (reconnectTimer) clearTimeout(reconnectTimer);
          for (const wake of waiters.splice(0)) wake(undefined);
          inbound.close();
          const ws = socket;
          if (ws && ws.readyState !== socketClosed) {
            await new Promise<void>((resolve) => {
              const grace = setTimeout(() => ws.terminate(), 1000);
              ws.once('close', () => {
                clearTimeout(grace);
                resolve();
              });
              ws.close(1000, 'client stopping');
            });
          }
          subscriber.complete();
        }

        function onAbort(): void {
          void shutdown();
        }
        ctx.signal.addEventListener('abort', onAbort, { once: true });

        loadWebSocketClient().then((client) => {
          WebSocketClient = client;
          connect();
        }, (error: unknown) => subscriber.error(error));
        inputSubscription = input.subscribe({
          next(batch) {
            chain = chain.then(() => sendBatch(batch)).catch((error: unknown) => subscriber.error(error));
          },
          error: (error: unknown) => subscriber.error(error),
          complete() {
            chain = chain.then(shutdown);
          },
        });

        return function wsClientTeardown() {
          stopped = true;
          clearInterval(pinger);
          if (reconnectTimer) clearTimeout(reconnectTimer);
          ctx.signal.removeEventListener('abort', onAbort);
          inputSubscription?.unsubscribe();
          waiters = [];
          inbound.close();
          socket?.terminate();
        };
      });
    };
  },
});
