import { Observable } from 'rxjs';
import { defineOperator, NodeError, z, type Batch } from '../../runtime/api.ts';
import { AckSequence, type AckToken } from './mqtt/ack-sequence.ts';
import { MqttConnection, SubscriptionRefused, type ConnectionHooks } from '../../native/mqtt/connection.ts';
import { localBrokers } from './mqtt/local-brokers.ts';
import { checkConnection, connectionSettings, urlSetting } from './mqtt/settings.ts';
import { inferRecords, MessageBatcher, recordSettings, type ReceivedMessage } from './mqtt/messages.ts';
import { qosSetting, sharedFilter, topicsSetting } from './mqtt/topics.ts';

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
    const options = ctx.settings;
    const filters = options.topics.map((filter) => sharedFilter(filter, options.group));
    return function mqttSubscribeNode() {
      return new Observable<Batch>((subscriber) => {
        let connection: MqttConnection | undefined;
        let stopping = false;
        let completed = false;
        /** Whether the broker holds our subscriptions (a persistent session keeps them across connections). */
        let subscribed = false;
        const acks = new AckSequence(() => connection);
        const batcher = new MessageBatcher<AckToken>(ctx, options, (tokens) => acks.track(tokens), (batch) => subscriber.next(batch));

        /** Lets mqtt.js read the next packet now, or once downstream has room; never while draining. */
        function next(resume: () => void): void {
          if (stopping) return;
          const wait = ctx.ready();
          if (wait) wait.then(resume, resume);
          else resume();
        }

        function received(packet: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2; retain: boolean }): ReceivedMessage {
          const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
          return { topic: packet.topic, payload, qos: packet.qos, retain: packet.retain };
        }

        function subscribe(current: MqttConnection): void {
          current.subscribe(filters, options.qos).then(
            (granted) => {
              if (stopping || completed) return;
              subscribed = true;
              ctx.log.info({ url: current.url, topics: filters, granted }, `${ctx.label}: subscribed to ${filters.join(', ')}`);
            },
            (error: unknown) => {
              // Any error but a refusal is the connection closing before the SUBACK: the next connection subscribes again.
              if (stopping || completed || !(error instanceof SubscriptionRefused)) return;
              subscriber.error(new NodeError(error.code, `${ctx.label}: ${error.message}`, { cause: error }));
            },
          );
        }

        const onAbort = (): void => {
          if (stopping) return;
          stopping = true;
          batcher.flush();
          completed = true;
          subscriber.complete();
          // Acknowledge what is still in the graph, then disconnect. Not awaited by the
          // node: a window downstream may hold acknowledgements until its input ends.
          const current = connection;
          if (!current) return;
          current.retire();
          const timer = setTimeout(() => void current.end(), 30_000);
          timer.unref();
          void acks.idle().then(() => {
            clearTimeout(timer);
            return current.end();
          });
        };

        // A broker of this same pipeline is waited for: its port may not be open yet.
        const hooks: ConnectionHooks = {
          onMessage(packet, resume) {
            if (stopping) return;
            batcher.add(received(packet));
            next(resume);
          },
          onDeferred(packet, resume) {
            if (stopping) return;
            batcher.add(received(packet), { messageId: packet.messageId!, qos: packet.qos as 1 | 2, link: connection!.link });
            next(resume);
          },
          onConnect(connack) {
            if (!subscribed || !connack.sessionPresent) subscribe(connection!);
          },
        };
        localBrokers(ctx).ready(options.url).then(() => MqttConnection.open(ctx, options, hooks)).then(
          (opened) => {
            connection = opened;
            if (stopping || completed) opened.destroy();
          },
          (error: unknown) => subscriber.error(error),
        );
        ctx.signal.addEventListener('abort', onAbort);
        if (ctx.signal.aborted) onAbort();

        return () => {
          ctx.signal.removeEventListener('abort', onAbort);
          stopping = true;
          // A failure or a forced stop: nothing more will be acknowledged on this connection.
          if (!completed) connection?.destroy();
          completed = true;
        };
      });
    };
  },
});
