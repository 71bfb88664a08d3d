import { Observable, type Subscriber } from 'rxjs';
import { backoffDelay, defineOperator, duration, reasonOf, redactUrl, size, z, type Batch, type BytesItem, type NodeContext } from '../../runtime/api.ts';
import { loadWebSocketClient, socketClosed, socketOpen, type WebSocket } from '../../native/http/websocket.ts';
import { secretSetting } from './web/settings.ts';
import { InboundBatcher } from './web/inbound.ts';
import { payloadLength, wirePayload } from './web/payload.ts';
import { parseJsonObject } from '../events/json-objects.ts';

/** A connection that lasted this long was healthy: the next failure starts the backoff afresh. */
const healthyAfterMs = 5_000;

const settings = z.object({
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
});

type Settings = z.infer<typeof settings>;

export default defineOperator({
  name: 'ws.client',
  summary: 'A WebSocket client: sends its input to a server and emits what the server sends.',
  doc: 'Connects to `url` (`ws://` or `wss://`) and keeps connected: when the connection fails or drops it reconnects with exponential backoff (from `reconnect_delay` up to `reconnect_max`, with jitter), logging the first failure with the node and the URL (passwords and tokens hidden). Each input record is sent as one message (events as JSON, Bytes as they are). A batch is acknowledged once the socket has taken all of it; while the client is disconnected it takes no more input, so records wait in its input channel and backpressure reaches the sources. A batch cut off by a dropped connection is sent again in full on the next one (at least once). Messages from the server are emitted as Bytes, or with `format: json` as events (a message that is not a JSON object goes to the dead-letter port); while too many wait downstream (`max_in_flight`) the client stops reading. Every `ping_interval` the server is pinged; a server that missed the previous pong is taken for dead and the client reconnects. The node stops when its input ends.',
  inputs: { in: { type: 'Any', doc: 'Records to send to the server.' } },
  outputs: { out: { type: 'Bytes', doc: 'Messages from the server; events with `format: json`.', optional: true } },
  settings,
  example: { url: 'ws://127.0.0.1:8081/feed', format: 'json' },
  paced: true,
  infer(settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    const headers: Record<string, string> = { ...ctx.settings.headers };
    if (ctx.settings.token !== undefined) headers.Authorization = `Bearer ${ctx.settings.token}`;

    return function wsClientNode(input) {
      return new Observable<Batch>((subscriber) => {
        const session = new WsClientSession(ctx, subscriber, headers);
        let chain: Promise<void> = Promise.resolve();
        const onAbort = (): void => void session.shutdown();
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        session.start();
        const inputSubscription = input.subscribe({
          next(batch) {
            chain = chain.then(() => session.send(batch)).catch((error: unknown) => subscriber.error(error));
          },
          error: (error: unknown) => subscriber.error(error),
          complete() {
            chain = chain.then(() => session.shutdown());
          },
        });
        return function wsClientTeardown() {
          session.close();
          ctx.signal.removeEventListener('abort', onAbort);
          inputSubscription.unsubscribe();
        };
      });
    };
  },
});

/**
 * One run of a `ws.client` node: the connection (reconnected with backoff
 * when it fails or drops, pinged for liveness), the batches sent on it, and
 * the server's messages emitted through `out`.
 */
class WsClientSession {
  readonly #ctx: NodeContext<Settings>;
  readonly #out: Subscriber<Batch>;
  readonly #headers: Record<string, string>;
  readonly #shownUrl: string;
  readonly #inbound: InboundBatcher;
  #WebSocketClient: typeof WebSocket | undefined;
  /** The latest socket, open or not. */
  #socket: WebSocket | undefined;
  /** The socket once open, until it closes. */
  #open: WebSocket | undefined;
  #stopped = false;
  #attempt = 0;
  /** Whether the server showed a sign of life since the last ping. */
  #alive = true;
  /** Cancels the pending reconnection, if any (timers run on the runtime's clock). */
  #cancelReconnect: (() => void) | undefined;
  #cancelPing: (() => void) | undefined;
  /** Senders waiting for an open connection. */
  #waiters: ((ws: WebSocket | undefined) => void)[] = [];

  constructor(ctx: NodeContext<Settings>, out: Subscriber<Batch>, headers: Record<string, string>) {
    this.#ctx = ctx;
    this.#out = out;
    this.#headers = headers;
    this.#shownUrl = redactUrl(ctx.settings.url);
    this.#inbound = new InboundBatcher(ctx, {
      maxInFlight: ctx.settings.max_in_flight,
      emit: (batch) => out.next(batch),
      pause: () => this.#open?.pause(),
      resume: () => this.#open?.resume(),
    });
  }

  /** Starts the liveness pings and the first connection, once the WebSocket client is loaded. */
  start(): void {
    const ping = (): void => {
      this.#checkLiveness();
      if (!this.#stopped) this.#cancelPing = this.#ctx.schedule(this.#ctx.settings.ping_interval, ping);
    };
    this.#cancelPing = this.#ctx.schedule(this.#ctx.settings.ping_interval, ping);
    loadWebSocketClient().then(
      (client) => {
        this.#WebSocketClient = client;
        this.#connect();
      },
      (error: unknown) => this.#out.error(error),
    );
  }

  /** Sends a batch whole on an open connection, again on the next one when cut off, then acknowledges it. */
  async send(batch: Batch): Promise<void> {
    for (;;) {
      const ws = await this.#connected();
      // Stopped before it could be sent: left unacknowledged, so the source sends it again.
      if (!ws) return;
      try {
        await this.#sendAll(ws, batch.items);
        break;
      } catch (error) {
        this.#ctx.log.debug({ error: reasonOf(error), records: batch.items.length }, 'connection lost while sending; the batch goes again on the next connection');
      }
    }
    batch.ack.release();
    this.#ctx.batchDone();
  }

  /** Stops politely: closes the socket (forced after a second's grace), then completes the output. */
  async shutdown(): Promise<void> {
    if (this.#stopped) return;
    this.#stopTimers();
    for (const wake of this.#waiters.splice(0)) wake(undefined);
    this.#inbound.close();
    const ws = this.#socket;
    if (ws && ws.readyState !== socketClosed) {
      await new Promise<void>((resolve) => {
        const cancelGrace = this.#ctx.schedule(1000, () => ws.terminate());
        ws.once('close', () => {
          cancelGrace();
          resolve();
        });
        ws.close(1000, 'client stopping');
      });
    }
    this.#out.complete();
  }

  /** The subscription ended: frees everything at once. */
  close(): void {
    this.#stopTimers();
    this.#waiters = [];
    this.#inbound.close();
    this.#socket?.terminate();
  }

  #stopTimers(): void {
    this.#stopped = true;
    this.#cancelPing?.();
    this.#cancelReconnect?.();
  }

  #connect(): void {
    const Client = this.#WebSocketClient;
    if (this.#stopped || !Client) return;
    const ctx = this.#ctx;
    const settings = ctx.settings;
    const shownUrl = this.#shownUrl;
    let lastError = 'connection closed';
    let openedAt: number | undefined;
    const ws = new Client(settings.url, { headers: this.#headers, handshakeTimeout: settings.connect_timeout, maxPayload: settings.max_message, perMessageDeflate: false });
    this.#socket = ws;
    ws.on('open', () => {
      openedAt = ctx.now();
      this.#open = ws;
      this.#alive = true;
      if (this.#attempt > 0) ctx.log.info({ url: shownUrl, attempts: this.#attempt }, 'connected');
      else ctx.log.debug({ url: shownUrl }, 'connected');
      if (this.#inbound.paused) ws.pause();
      for (const wake of this.#waiters.splice(0)) wake(ws);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#alive = true;
      this.#receive(data, isBinary);
    });
    ws.on('pong', () => {
      this.#alive = true;
    });
    ws.on('error', (error) => {
      lastError = error.message;
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.#open === ws) this.#open = undefined;
      if (this.#socket === ws) this.#socket = undefined;
      if (this.#stopped) return;
      if (openedAt !== undefined && ctx.now() - openedAt >= healthyAfterMs) this.#attempt = 0;
      const why = openedAt !== undefined ? `connection closed (code ${code}${reason.length > 0 ? `: ${reason.toString('utf8')}` : ''})` : lastError;
      this.#scheduleReconnect(why, openedAt !== undefined);
    });
  }

  #scheduleReconnect(reason: string, wasOpen: boolean): void {
    const ctx = this.#ctx;
    const shownUrl = this.#shownUrl;
    const delay = backoffDelay(this.#attempt, ctx.settings.reconnect_delay, ctx.settings.reconnect_max);
    this.#attempt += 1;
    const attempt = this.#attempt;
    const fields = { url: shownUrl, error: reason, retryInMs: delay, attempt };
    // The first failure of an outage is news; the rest repeat it, so only now and then.
    if (wasOpen) ctx.log.warn(fields, `${ctx.label}: lost the connection to ${shownUrl}; reconnecting`);
    else if (attempt === 1 || attempt % 10 === 0) ctx.log.warn(fields, `${ctx.label}: cannot connect to ${shownUrl}: ${reason}; retrying`);
    else ctx.log.debug(fields, 'reconnection failed');
    this.#cancelReconnect = ctx.schedule(delay, () => {
      this.#cancelReconnect = undefined;
      this.#connect();
    });
  }

  #receive(data: Buffer, isBinary: boolean): void {
    const ctx = this.#ctx;
    ctx.metrics.bytes(data.length, 'read');
    if (ctx.settings.format === 'bytes') {
      this.#inbound.push(isBinary ? ({ data } satisfies BytesItem) : ({ text: data.toString('utf8') } satisfies BytesItem));
      return;
    }
    const text = data.toString('utf8');
    try {
      this.#inbound.push(parseJsonObject(text));
    } catch (error) {
      ctx.fail({ text }, error);
    }
  }

  /** A server that missed the previous ping is taken for dead. */
  #checkLiveness(): void {
    const open = this.#open;
    if (!open) return;
    if (!this.#alive) {
      this.#ctx.log.warn({ url: this.#shownUrl }, 'server did not answer a ping; reconnecting');
      open.terminate();
      return;
    }
    this.#alive = false;
    open.ping();
  }

  /** The open connection, once there is one; undefined once stopped. */
  #connected(): Promise<WebSocket | undefined> {
    if (this.#stopped) return Promise.resolve(undefined);
    const open = this.#open;
    if (open && open.readyState === socketOpen) return Promise.resolve(open);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #sendAll(ws: WebSocket, items: unknown[]): Promise<void> {
    const binary = this.#ctx.settings.frame === 'binary';
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
        this.#ctx.metrics.bytes(payloadLength(payload));
        ws.send(payload, { binary }, done);
      }
    });
  }
}
