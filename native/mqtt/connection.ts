/**
 * An MQTT client connection (mqtt.js, loaded when the first connection
 * opens): options built from the settings, reconnection with
 * exponential backoff, log lines that name the node and the broker (with the
 * password redacted), and acknowledgements of received QoS 1/2 messages
 * sent only when the graph is done with them.
 */
import type { Socket } from 'node:net';
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import { NativeError, type ClientOwner } from '../client-owner.ts';
import { redactUrl } from '../redact-url.ts';
import { backoffDelay } from '../backoff.ts';
import { readTlsFile } from '../tls-file.ts';

export type { IPublishPacket, MqttClient };

/** How to connect: the `mqtt.subscribe` / `mqtt.publish` settings, parsed (durations in milliseconds). */
export interface ConnectionSettings {
  url: string;
  protocol_version: 4 | 5;
  client_id?: string;
  clean: boolean;
  session_expiry: number;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  keepalive: number;
  connect_timeout: number;
  reconnect_max: number;
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
  return error.message.split('\n')[0];
}

type MqttLibrary = typeof import('mqtt');

/** The broker refused a subscription (a SUBACK with failure codes); the message names each refused filter and why. */
export class SubscriptionRefused extends NativeError {
  constructor(message: string) {
    super('subscription_refused', message);
    this.name = 'SubscriptionRefused';
  }
}

/**
 * One client connection to a broker, reconnecting by itself. A node opens
 * it when it starts and ends it when it drains.
 */
export class MqttConnection {
  readonly client: MqttClient;
  readonly url: string;
  #ctx: ClientOwner;
  #settings: ConnectionSettings;
  #failures = 0;
  #lastError: string | undefined;
  #up = false;
  #upSince = 0;
  #delayMs = 0;
  /** Failed connections since the last healthy one: the backoff's attempt. */
  #backoffAttempt = 0;
  /** The connection whose failure `#delayMs` was computed for. */
  #delayedStream: object | undefined;
  #ended = false;

  #library: MqttLibrary;

  private constructor(library: MqttLibrary, ctx: ClientOwner, settings: ConnectionSettings, options: IClientOptions, hooks: ConnectionHooks) {
    this.#library = library;
    this.#ctx = ctx;
    this.#settings = settings;
    this.url = redactUrl(settings.url);
    this.client = library.connect(settings.url, options);
    this.#wire(hooks);
  }

  /** Reads the TLS files and starts connecting; resolves at once (the connection may come later). */
  static async open(ctx: ClientOwner, settings: ConnectionSettings, hooks: ConnectionHooks = {}): Promise<MqttConnection> {
    const options = await clientOptions(ctx, settings);
    // Imported here, not at the top: a process with no MQTT node never loads mqtt.js.
    return new MqttConnection(await import('mqtt'), ctx, settings, options, hooks);
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
   * Subscribes to `filters` at `qos`; resolves with the QoS granted to
   * each. Rejects with `SubscriptionRefused` when the broker refused any of
   * them, or with another error when the connection closed before the
   * SUBACK (a next connection without a session subscribes again).
   */
  subscribe(filters: readonly string[], qos: 0 | 1 | 2): Promise<number[]> {
    const request = Object.fromEntries(filters.map((filter) => [filter, { qos }]));
    return new Promise((resolve, reject) => {
      this.client.subscribe(request, (error, granted) => {
        if (!error) resolve((granted ?? []).map((grant) => grant.qos));
        else if (error instanceof this.#library.ErrorWithSubackPacket) reject(this.#refusal(filters, error.packet as { granted?: unknown[] } | undefined));
        else reject(error);
      });
    });
  }

  #refusal(filters: readonly string[], suback: { granted?: unknown[] } | undefined): SubscriptionRefused {
    const codes = (suback?.granted ?? []) as number[];
    const names = this.#library.ReasonCodes as Record<number, string>;
    const refused = filters
      .map((filter, i) => ({ filter, code: codes[i] }))
      .filter(({ code }) => code === undefined || code >= 0x80)
      .map(({ filter, code }) => `\`${filter}\`${code === undefined ? '' : ` (${this.#settings.protocol_version === 5 ? (names[code] ?? `code ${code}`).toLowerCase() : 'failure'})`}`);
    return new SubscriptionRefused(`${this.url} refused the subscription to ${refused.join(', ')}`);
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
   * about 100 ms after a connection that had been up for a while, otherwise
   * the next step of the backoff, up to `reconnect_max` (so a broker that
   * accepts and then drops the connection at once is not hammered either).
   */
  #nextDelay(): number {
    if (this.#delayedStream === this.client.stream) return this.#delayMs;
    this.#delayedStream = this.client.stream;
    const stable = this.#up && performance.now() - this.#upSince >= stableConnectionMs;
    this.#backoffAttempt = stable || this.#delayMs === 0 ? 0 : this.#backoffAttempt + 1;
    this.#delayMs = backoffDelay(this.#backoffAttempt, firstBackoffMs, this.#settings.reconnect_max);
    if (!this.#ended) this.client.options.reconnectPeriod = this.#delayMs;
    return this.#delayMs;
  }
}

async function clientOptions(ctx: ClientOwner, settings: ConnectionSettings): Promise<IClientOptions> {
  const [ca, cert, key] = await Promise.all([readTlsFile(ctx, 'ca', settings.ca), readTlsFile(ctx, 'cert', settings.cert), readTlsFile(ctx, 'key', settings.key)]);
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
