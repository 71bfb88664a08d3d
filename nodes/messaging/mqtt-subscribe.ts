import type { Subscriber } from 'rxjs';
import { defineOperator, NodeError, z, type Batch, type NodeContext } from '../../runtime/api.ts';
import { MqttConnection, SubscriptionRefused, type IPublishPacket } from '../../native/mqtt/connection.ts';
import { AckSequence, type AckToken } from './mqtt/ack-sequence.ts';
import { localBrokers } from './mqtt/local-brokers.ts';
import { checkConnection, connectionSettings, urlSetting } from './mqtt/settings.ts';
import { clientBatching, inferRecords, MessageBatcher, recordSettings, type ReceivedMessage } from './mqtt/messages.ts';
import { qosSetting, sharedFilter, topicsSetting } from './mqtt/topics.ts';
import { sessionSource, type SourceSession } from './source-session.ts';

const settings = z
  .object({
    url: urlSetting,
    topics: topicsSetting('Topic filters to subscribe to; `+` matches one level, `#` the rest (`sensors/+/temperature`, `sensors/#`); `$share/GROUP/FILTER` is a shared subscription.'),
    qos: qosSetting('The highest QoS to receive at: 0 (at most once), 1 (at least once) or 2. At 1 and 2 the broker hears the acknowledgement only once every sink downstream is done with the message.'),
    group: z
      .string()
      .regex(/^[^/+#]+$/, { error: 'a group name cannot contain `/`, `+` or `#`' })
      .optional()
      .meta({ description: 'Share the subscriptions with the other subscribers of this group: each message goes to one of them (`$share/GROUP/FILTER`; MQTT 5 brokers and Mosquitto, also under MQTT 3.1.1).', examples: ['ingest'] }),
    ...recordSettings,
    ...connectionSettings,
  })
  .superRefine(checkConnection);

type SubscribeSettings = z.output<typeof settings>;

/**
 * `mqtt.subscribe`: messages from an MQTT broker, acknowledged to the broker
 * (QoS 1/2) only once the graph is done with them.
 */
export default defineOperator({
  name: 'mqtt.subscribe',
  summary: 'Receive messages from an MQTT broker (3.1.1 or 5).',
  doc: 'Subscribes to `topics` on the broker at `url` and emits each message: by default as Bytes `{data, meta: {topic, qos, retain}}` (`retain` is set on retained messages the broker sends because of a new subscription), or with `format: json` as the event parsed from the payload, with the topic in `topic_field` when set; a payload that is not a JSON object goes to the dead-letter port. QoS 1 and 2 messages are acknowledged to the broker (PUBACK, PUBREC) only once every sink downstream has finished with them, in the order they arrived, so with `clean: false` and a fixed `client_id` a message the graph had not finished when the process died is delivered again: at least once. When downstream is full the node stops reading the socket; the broker then queues QoS 1/2 messages for the client up to its limits, and at QoS 0 drops what it cannot queue (Mosquitto: `max_queued_messages`, 1000 by default), a loss the node cannot see. A pause longer than about 1.5 `keepalive` may drop the connection, which is then made again. An unreachable broker, or one that refuses the connection (a wrong password), is logged with the node and the URL and retried with exponential backoff up to `reconnect_max`; the graph keeps running. A subscription the broker refuses fails the node, which restarts with backoff. TCP no-delay is set on the socket. A drain stops reading, emits what was read, and disconnects once the graph has acknowledged it.',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Messages as Bytes `{data, meta: {topic, qos, retain}}`; events with `format: json`.' } },
  settings,
  example: { url: 'mqtt://127.0.0.1:1883', topics: ['sensors/#'], qos: 1 },
  infer: inferRecords,
  create(ctx) {
    return sessionSource(ctx, (out) => new SubscribeSession(ctx, out));
  },
});

/**
 * One run of an `mqtt.subscribe` node: a connection that subscribes on
 * every connection without a session, hands messages to the batcher, and
 * acknowledges QoS 1/2 messages once the graph is done with them.
 */
class SubscribeSession implements SourceSession {
  readonly #ctx: NodeContext<SubscribeSettings>;
  readonly #out: Subscriber<Batch>;
  readonly #filters: string[];
  readonly #acks: AckSequence;
  readonly #batcher: MessageBatcher<AckToken>;
  #connection: MqttConnection | undefined;
  #stopping = false;
  #completed = false;
  /** Whether the broker holds our subscriptions (a persistent session keeps them across connections). */
  #subscribed = false;

  constructor(ctx: NodeContext<SubscribeSettings>, out: Subscriber<Batch>) {
    this.#ctx = ctx;
    this.#out = out;
    this.#filters = ctx.settings.topics.map((filter) => sharedFilter(filter, ctx.settings.group));
    this.#acks = new AckSequence(() => this.#connection);
    this.#batcher = new MessageBatcher<AckToken>(ctx, ctx.settings, clientBatching, (tokens) => this.#acks.track(tokens), (batch) => out.next(batch));
  }

  async start(): Promise<void> {
    // A broker of this same pipeline is waited for: its port may not be open yet.
    await localBrokers(this.#ctx).ready(this.#ctx.settings.url);
    const opened = await MqttConnection.open(this.#ctx, this.#ctx.settings, {
      onMessage: (packet, resume) => this.#receive(packet, undefined, resume),
      onDeferred: (packet, resume) => this.#receive(packet, { messageId: packet.messageId!, qos: packet.qos as 1 | 2, link: this.#connection!.link }, resume),
      onConnect: (connack) => {
        if (!this.#subscribed || !connack.sessionPresent) this.#subscribe(this.#connection!);
      },
    });
    this.#connection = opened;
    if (this.#stopping || this.#completed) opened.destroy();
  }

  drain(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#batcher.flush();
    this.#batcher.stop();
    this.#completed = true;
    this.#out.complete();
    // Acknowledge what is still in the graph, then disconnect. Not awaited by the
    // node: a window downstream may hold acknowledgements until its input ends.
    const current = this.#connection;
    if (!current) return;
    current.retire();
    const cancelTimer = this.#ctx.schedule(30_000, () => void current.end(), { keepsProcessAlive: false });
    void this.#acks.idle().then(() => {
      cancelTimer();
      return current.end();
    });
  }

  close(): void {
    this.#stopping = true;
    this.#batcher.stop();
    // A failure or a forced stop: nothing more will be acknowledged on this connection.
    if (!this.#completed) this.#connection?.destroy();
    this.#completed = true;
  }

  #receive(packet: IPublishPacket, token: AckToken | undefined, resume: () => void): void {
    if (this.#stopping) return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const message: ReceivedMessage = { topic: packet.topic, payload, qos: packet.qos, retain: packet.retain };
    // mqtt.js reads the next packet once `resume` runs.
    this.#batcher.add(message, token, resume);
  }

  #subscribe(current: MqttConnection): void {
    const ctx = this.#ctx;
    current.subscribe(this.#filters, ctx.settings.qos).then(
      (granted) => {
        if (this.#stopping || this.#completed) return;
        this.#subscribed = true;
        ctx.log.info({ url: current.url, topics: this.#filters, granted }, `${ctx.label}: subscribed to ${this.#filters.join(', ')}`);
      },
      (error: unknown) => {
        // Any error but a refusal is the connection closing before the SUBACK: the next connection subscribes again.
        if (this.#stopping || this.#completed || !(error instanceof SubscriptionRefused)) return;
        this.#out.error(new NodeError(error.code, `${ctx.label}: ${error.message}`, { cause: error }));
      },
    );
  }
}
