/**
 * The MQTT client shared by `mqtt.subscribe` and `mqtt.publish`: the
 * connection settings, mqtt.js options built from them, reconnection with
 * exponential backoff, log lines that name the node and the broker (with the
 * password redacted), and acknowledgements of received QoS 1/2 messages
 * sent only when the graph is done with them.
 */
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { duration, NodeError, reasonOf, z, type NodeContext } from '../../../runtime/api.ts';

/** The `url` setting of the MQTT client nodes. */
export const urlSetting = z
  .string()
  .regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s/]+/, { error: 'expected a broker URL such as `mqtt://127.0.0.1:1883` (`mqtts://` for TLS, `ws://` or `wss://` for WebSocket)' })
  .meta({
    description: 'The broker: `mqtt://host:port`, `mqtts://host:port` for TLS, `ws://` or `wss://` for MQTT over WebSocket. Logs show it with any password replaced by `***`; prefer the `password` setting.',
    examples: ['mqtt://127.0.0.1:1883', 'mqtts://broker.example.com:8883'],
  });

/** The other settings every MQTT client node has, spread into its schema after its own. */
export const connectionSettings = {
  protocol_version: z
    .union([z.literal(4), z.literal(5)])
    .default(4)
    .meta({ description: 'MQTT protocol: `4` for MQTT 3.1.1, `5` for MQTT 5.', examples: [5] }),
  client_id: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .meta({ description: 'The client identifier; a fixed one is needed for a persistent session (`clean: false`). Absent: `streams-NODE-RANDOM`.', examples: ['ingest-sensors-1'] }),
  clean: z
    .boolean()
    .default(true)
    .meta({ description: 'Start a clean session. With `false` (and a fixed `client_id`) the broker keeps the subscriptions and the QoS 1/2 messages not yet acknowledged while the node is away, and delivers them when it is back.' }),
  session_expiry: duration()
    .prefault('1h')
    .meta({ description: 'MQTT 5 with `clean: false`: how long the broker keeps the session after a disconnect.', examples: ['1d'] }),
  username: z.string().optional().meta({ description: 'User name for the broker.', examples: ['${env:MQTT_USER}'] }),
  password: z.string().optional().meta({ description: 'Password for the broker; give it as `${env:NAME}`, never in the file. Never logged.', examples: ['${env:MQTT_PASSWORD}'] }),
  ca: z.string().min(1).optional().meta({ description: 'TLS: a PEM file of the certificate authorities to trust instead of the system ones.', examples: ['certs/ca.pem'] }),
  cert: z.string().min(1).optional().meta({ description: 'TLS: a PEM client certificate file, for brokers that authenticate clients by certificate.', examples: ['certs/client.pem'] }),
  key: z.string().min(1).optional().meta({ description: 'TLS: the PEM private key file of `cert`.', examples: ['certs/client.key'] }),
  keepalive: duration().prefault('60s').meta({ description: 'Keep-alive interval: a ping is sent when the connection is idle this long, and a connection silent for 1.5 times as long is dropped and reconnected.', examples: ['30s'] }),
  connect_timeout: duration().prefault('10s').meta({ description: 'How long to wait for the broker to accept a connection before trying again.', examples: ['5s'] }),
  reconnect_max: duration().prefault('10s').meta({ description: 'The longest wait between connection attempts; waits double from 100 ms up to this.', examples: ['30s'] }),
};

const connectionObject = z.object({ url: urlSetting, ...connectionSettings });

/** Parsed connection settings (durations in milliseconds). */
export type ConnectionSettings = z.output<typeof connectionObject>;

/** Adds the cross-field rules of the connection settings to a node's schema. */
export function checkConnection(settings: { clean: boolean; client_id?: string }, ctx: z.RefinementCtx): void {
  if (!settings.clean && settings.client_id === undefined) {
    ctx.addIssue({ code: 'custom', path: ['clean'], message: '`clean: false` keeps a session on the broker, which is found again by its client id: set `client_id`' });
  }
}

/**
 * The URL with any password replaced by `***`, for logs and errors. The
 * user information runs to the last `@`, so a password holding `/` or `@`
 * is hidden whole.
 */
export function redactUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!match) return url;
  const [, scheme, rest] = match;
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${scheme}${rest.slice(0, colon)}:***${rest.slice(at)}`;
}

/** What a node plugs into a connection. */
export interface ConnectionHooks {
  /**
   * A QoS 0 message. Call `resume` when the next packet may be read: later
   * (when downstream is full) pauses the socket.
   */
  onMessage?(packet: IPublishPacket, resume: () => void): void;
  /**
   * A QoS 1 or 2 message, which mqtt.js will not acknowledge: the node calls
   * `acknowledge` once the graph is done with it. `resume` as for `onMessage`.
   */
  onDeferred?(packet: IPublishPacket, resume: () => void): void;
  /** Each accepted connection, once mqtt.js has resent what it had stored. */
  onConnect?(connack: IConnackPacket): void;
}

/** What mqtt.js keeps private but a deferred acknowledgement needs: sending a packet on the current connection. */
interface PacketWriter {
  _sendPacket(packet: { cmd: 'puback' | 'pubrec'; messageId: number }, callback?: (error?: Error) => void): void;
}

/**
 * Passed to mqtt.js's acknowledgement callback to say "not now": mqtt.js then
 * goes on to the next packet without sending PUBACK/PUBREC, and emits this
 * value as an `error` event, which the connection ignores.
 */
const deferAcknowledgement = new Error('acknowledgement deferred until the graph is done with the message');

const firstBackoffMs = 100;
/** A connection up this long before it drops is followed by a quick retry; a shorter one backs off further. */
const stableConnectionMs = 10_000;

/** MQTT 3.1.1 CONNACK return codes (mqtt.js words them by the MQTT 5 table). */
const connackCodes311: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** Why a connection attempt failed, in words a user can act on. */
function describeFailure(error: Error & { code?: string | number }, version: 4 | 5): string {
  if (typeof error.code === 'number' && /^Connection refused/.test(error.message)) {
    const words = version === 4 ? connackCodes311[error.code] : error.message.replace(/^Connection refused: /, '').toLowerCase();
    return `the broker refused the connection: ${words ?? `code ${error.code}`}`;
  }
  if (error.code === 'ECONNREFUSED') return 'connection refused (is the broker running?)';
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') return 'unknown host';
  return reasonOf(error);
}

/**
 * One client connection to a broker, reconnecting by itself. A node opens
 * it when it starts and ends it when it drains.
 */
export class MqttConnection {
  readonly client: MqttClient;
  readonly url: string;
  #ctx: NodeContext<unknown>;
  #settings: ConnectionSettings;
  #failures = 0;
  #lastError: string | undefined;
  #up = false;
  #upSince = 0;
  #delayMs = 0;
  /** The connection whose failure `#delayMs` was computed for. */
  #delayedStream: object | undefined;
  #ended = false;

  private constructor(ctx: NodeContext<unknown>, settings: ConnectionSettings, options: IClientOptions, hooks: ConnectionHooks) {
    this.#ctx = ctx;
    this.#settings = settings;
    this.url = redactUrl(settings.url);
    this.client = connect(settings.url, options);
    this.#wire(hooks);
  }

  /** Reads the TLS files and starts connecting; resolves at once (the connection may come later). */
  static async open(ctx: NodeContext<unknown>, settings: ConnectionSettings, hooks: ConnectionHooks = {}): Promise<MqttConnection> {
    return new MqttConnection(ctx, settings, await clientOptions(ctx, settings), hooks);
  }

  /**
   * The network connection messages arrive on now (mqtt.js makes a new
   * stream for each), to tell later whether an acknowledgement still applies.
   * Not the `connect` event: mqtt.js emits it only after resending its stored
   * packets, so messages a persistent session redelivers come before it.
   */
  get link(): object {
    return this.client.stream;
  }

  /**
   * Acknowledges a received QoS 1 (PUBACK) or QoS 2 (PUBREC) message, if the
   * connection that received it (`link`) is still the current one. Otherwise
   * the broker has forgotten it (clean session) or will send it again
   * (persistent session): an acknowledgement now could only hit another
   * message that reuses the packet id. Returns whether it was sent.
   */
  acknowledge(messageId: number, qos: 1 | 2, link: object): boolean {
    if (link !== this.client.stream || !this.client.connected) return false;
    (this.client as unknown as PacketWriter)._sendPacket({ cmd: qos === 1 ? 'puback' : 'pubrec', messageId });
    return true;
  }

  /**
   * Disconnects cleanly, waiting up to `graceMs` for outgoing messages to be
   * acknowledged; a connection that is down is closed at once.
   */
  end(graceMs = 5000): Promise<void> {
    this.#ended = true;
    const force = !this.client.connected;
    return new Promise((resolve) => {
      // mqtt.js calls back only once its socket closes, which a socket closed already never does again.
      const timer = setTimeout(() => {
        this.client.stream?.destroy();
        resolve();
      }, force ? 200 : graceMs);
      timer.unref();
      this.client.end(force, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * No reconnecting from now on (a draining node): a connection lost now
   * could not acknowledge what it received anyway, and a successor with the
   * same client id must not be fought over.
   */
  retire(): void {
    this.#ended = true;
    this.client.options.reconnectPeriod = 0;
  }

  /** Closes at once, without waiting for anything. */
  destroy(): void {
    this.#ended = true;
    this.client.end(true);
  }

  #wire(hooks: ConnectionHooks): void {
    const { client } = this;
    const ctx = this.#ctx;
    const settings = this.#settings;
    const version = settings.protocol_version;

    // mqtt.js calls `customHandleAcks` on every QoS 1/2 PUBLISH before it would
    // acknowledge it (it only reads the option under MQTT 5, hence the
    // assignment after construction, which works for both versions). Answering
    // with an error makes it move on without a PUBACK/PUBREC; the node sends
    // that later through `acknowledge`, once the graph has the message.
    client.options.customHandleAcks = function deferAck(_topic, _message, packet: IPublishPacket, answer) {
      if (!hooks.onDeferred) {
        answer(0);
        return;
      }
      hooks.onDeferred(packet, () => answer(deferAcknowledgement));
    };
    // QoS 0 messages (the deferred ones above never get here). mqtt.js reads
    // no further packet until `callback` runs: that is how the node pauses.
    client.handleMessage = function handleQos0(packet, callback) {
      if (hooks.onMessage) hooks.onMessage(packet as IPublishPacket, () => callback());
      else callback();
    };

    client.on('connect', (connack) => {
      this.#up = true;
      this.#upSince = performance.now();
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      ctx.log.info({ url: this.url, sessionPresent: connack.sessionPresent, attempts: this.#failures + 1 }, `${ctx.label}: connected to ${this.url}`);
      this.#failures = 0;
      this.#lastError = undefined;
      hooks.onConnect?.(connack);
    });
    client.on('error', (error: Error & { code?: string | number }) => {
      if (error === deferAcknowledgement) return;
      this.#lastError = describeFailure(error, version);
      // A refused CONNACK schedules the retry before the socket closes: set its wait now.
      if (typeof error.code === 'number' && /^Connection refused/.test(error.message)) this.#nextDelay();
    });
    // Before mqtt.js's own listener, which schedules the next attempt with `reconnectPeriod`.
    client.prependListener('close', () => {
      if (this.#ended) return;
      const retryInMs = this.#nextDelay();
      const wasUp = this.#up;
      this.#up = false;
      this.#failures += 1;
      const error = this.#lastError ?? 'the connection closed';
      this.#lastError = undefined;
      if (wasUp) {
        ctx.log.warn({ url: this.url, error, retryInMs }, `${ctx.label}: lost the connection to ${this.url}: ${error}; reconnecting in ${retryInMs} ms`);
        return;
      }
      // The first failure of a streak is an error; the retries that follow are warnings, one per attempt.
      const level = this.#failures === 1 ? 'error' : 'warn';
      ctx.log[level]({ url: this.url, error, retryInMs, attempts: this.#failures }, `${ctx.label}: cannot connect to ${this.url}: ${error}; retrying in ${retryInMs} ms`);
    });
  }

  /**
   * The wait before the next attempt, computed once per failed connection:
   * 100 ms after a connection that had been up for a while, otherwise
   * double the last wait, up to `reconnect_max` (so a broker that accepts
   * and then drops the connection at once is not hammered either).
   */
  #nextDelay(): number {
    if (this.#delayedStream === this.client.stream) return this.#delayMs;
    this.#delayedStream = this.client.stream;
    const stable = this.#up && performance.now() - this.#upSince >= stableConnectionMs;
    this.#delayMs = stable || this.#delayMs === 0 ? firstBackoffMs : Math.min(this.#settings.reconnect_max, this.#delayMs * 2);
    if (!this.#ended) this.client.options.reconnectPeriod = this.#delayMs;
    return this.#delayMs;
  }
}

async function readPem(ctx: NodeContext<unknown>, setting: string, path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (error) {
    throw new NodeError('tls_file', `${ctx.label}: cannot read \`${setting}\` file \`${path}\`: ${reasonOf(error)}`, { cause: error });
  }
}

async function clientOptions(ctx: NodeContext<unknown>, settings: ConnectionSettings): Promise<IClientOptions> {
  const [ca, cert, key] = await Promise.all([readPem(ctx, 'ca', settings.ca), readPem(ctx, 'cert', settings.cert), readPem(ctx, 'key', settings.key)]);
  const persistentV5 = settings.protocol_version === 5 && !settings.clean;
  return {
    protocolVersion: settings.protocol_version,
    clientId: settings.client_id ?? `streams-${ctx.node}-${Math.random().toString(16).slice(2, 10)}`,
    clean: settings.clean,
    username: settings.username,
    password: settings.password,
    ca,
    cert,
    key,
    keepalive: Math.max(1, Math.round(settings.keepalive / 1000)),
    connectTimeout: settings.connect_timeout,
    reconnectPeriod: firstBackoffMs,
    // A refused CONNACK (a wrong password) is retried too, with the same backoff: the broker may be fixed without restarting the graph.
    reconnectOnConnackError: true,
    // Subscriptions are made by the node on each connection that has no session, so it can report a refusal.
    resubscribe: false,
    // mqtt.js traces every packet through `debug`, which costs a few per cent of a busy subscriber even when off.
    log: function noTrace() {},
    // MQTT 5 ends a session at disconnect unless it has an expiry interval.
    properties: persistentV5 ? { sessionExpiryInterval: Math.round(settings.session_expiry / 1000) } : undefined,
  };
}
