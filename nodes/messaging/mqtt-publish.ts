import { Observable } from 'rxjs';
import { compileExpression, defineOperator, expression, sinkBatches, toPlain, z, type Batch, type BytesItem, type EventRecord } from '../../runtime/api.ts';
import { MqttConnection, type MqttClient } from '../../native/mqtt/connection.ts';
import { localBrokers } from './mqtt/local-brokers.ts';
import { checkConnection, connectionSettings, urlSetting } from './mqtt/settings.ts';
import { qosSetting, topicProblem } from './mqtt/topics.ts';

const settings = z
  .object({
    url: urlSetting,
    topic: z
      .string()
      .superRefine(function checkTopic(topic, ctx) {
        const problem = topicProblem(topic);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .meta({ description: 'The topic every record is published to. Give this or `topic_expr`.', examples: ['stats/per-second'] }),
    topic_expr: expression()
      .optional()
      .meta({ description: 'A CEL expression computing each record\'s topic from its fields (for Bytes, from its `meta`, such as `topic`). Give this or `topic`.', examples: ['"devices/" + device + "/stats"'] }),
    qos: qosSetting('QoS to publish at: 0 (a batch is acknowledged once written to the socket), 1 or 2 (once the broker has acknowledged every message of it).'),
    retain: z.boolean().default(false).meta({ description: 'Publish retained messages: the broker keeps the last one per topic and gives it to each new subscriber.' }),
    ...connectionSettings,
  })
  .superRefine(function checkTopicSettings(value, ctx) {
    checkConnection(value, ctx);
    if ((value.topic === undefined) === (value.topic_expr === undefined)) {
      ctx.addIssue({ code: 'custom', path: value.topic === undefined ? [] : ['topic_expr'], message: 'give exactly one of `topic` (a fixed topic) and `topic_expr` (a topic per record)' });
    }
  });

function isBytes(item: unknown): item is BytesItem {
  const bytes = item as BytesItem;
  return bytes !== null && typeof bytes === 'object' && (Buffer.isBuffer(bytes.data) || typeof bytes.text === 'string');
}

/**
 * `mqtt.publish`: records to an MQTT broker; a batch is acknowledged once the
 * broker has acknowledged it (QoS 1/2) or it is written (QoS 0).
 */
export default defineOperator({
  name: 'mqtt.publish',
  summary: 'Publish records to an MQTT broker (3.1.1 or 5).',
  doc: 'Publishes each input to the broker at `url`: events as JSON, Bytes as they are. The topic is `topic`, or computed per record by the CEL expression `topic_expr` (over an event\'s fields, or a Bytes item\'s `meta`, so `meta.topic` of an `mqtt.subscribe` can be reused). A record whose topic cannot be computed, or is not a valid topic name (empty, with a wildcard), goes to the dead-letter port, as does one the broker rejects (MQTT 5 reason codes). A batch is acknowledged upstream once every message of it has been acknowledged by the broker (PUBACK at QoS 1, PUBCOMP at QoS 2) or, at QoS 0, written to the socket; so a sink that cannot publish holds back its sources. While the broker is unreachable, messages wait and go out when it is back (unacknowledged QoS 1/2 messages are sent again); at QoS 0 what was in the socket when the connection dropped is lost, as QoS 0 allows: the message the node was waiting to write is counted as dropped (`connection lost`, the first such loss logged) and the rest of its batch follows on the next connection, in order; the outage is logged with the node and the URL and connecting is retried with exponential backoff. With `retain`, the broker keeps the last message of each topic for new subscribers. TCP no-delay is set on the socket.',
  inputs: { in: { type: 'Any', doc: 'Events (sent as JSON) or Bytes (sent as they are).' } },
  outputs: {},
  settings,
  example: { url: 'mqtt://127.0.0.1:1883', topic: 'stats/per-second', qos: 1 },
  create(ctx) {
    const options = ctx.settings;
    const topicExpr = options.topic_expr === undefined ? undefined : compileExpression(options.topic_expr);
    const publishOptions = { qos: options.qos, retain: options.retain };

    function topicOf(item: unknown): string {
      if (!topicExpr) return options.topic!;
      const fields = isBytes(item) ? (item.meta ?? {}) : (item as EventRecord);
      const topic = toPlain(topicExpr(fields));
      if (typeof topic !== 'string') throw new TypeError(`\`topic_expr\` gave ${topic === null ? 'null' : typeof topic}, not a string`);
      const problem = topicProblem(topic);
      if (problem) throw new TypeError(problem);
      return topic;
    }

    function payloadOf(item: unknown): Buffer | string {
      if (isBytes(item)) return item.data ?? item.text!;
      return JSON.stringify(item);
    }

    let loggedLoss = false;
    /** Counts a QoS 0 message lost in a socket that closed while it waited for `drain`; logs the first. */
    function lostWithSocket(): void {
      ctx.metrics.dropped(1, 'connection lost');
      if (loggedLoss) return;
      loggedLoss = true;
      ctx.log.warn(
        { url: options.url },
        `${ctx.label}: a QoS 0 message was lost with the connection to ${options.url} (it was in the socket when that closed); the rest goes out on the next connection. Later losses are only counted (dropped: 'connection lost')`,
      );
    }

    /** Whether the node has ended the client (stopping), rather than the connection dropping. */
    function ended(client: MqttClient): boolean {
      return client.disconnecting || client.disconnected;
    }

    /** Resolves true once the client is connected, false if it ends first (the node stopping). */
    function connected(client: MqttClient): Promise<boolean> {
      if (ended(client)) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const settle = (isConnected: boolean) => (): void => {
          client.off('connect', onConnect);
          client.off('end', onEnd);
          resolve(isConnected);
        };
        const onConnect = settle(true);
        const onEnd = settle(false);
        client.on('connect', onConnect);
        client.on('end', onEnd);
      });
    }

    return function mqttPublishNode(input) {
      return new Observable<Batch>((subscriber) => {
        // A broker of this same pipeline is waited for: its port may not be open yet.
        const opening = localBrokers(ctx).ready(options.url).then(() => MqttConnection.open(ctx, options));

        /** Publishes a batch; resolves once the broker (QoS 1/2) or the socket (QoS 0) has every message. */
        async function publishBatch(client: MqttClient, batch: Batch): Promise<void> {
          for (let from = 0; from < batch.items.length; ) {
            // At QoS 0 only a connected client is written to: mqtt.js's offline queue would call each message back on a `drain` of its own again.
            if (options.qos === 0 && !client.connected && !(await connected(client))) {
              // Stopped meanwhile: the batch is not acknowledged, so what it still held is not taken as published.
              throw new Error(`${ctx.label}: the connection to ${options.url} ended before the batch was published`);
            }
            from = await publishPart(client, batch, from);
          }
        }

        /**
         * Publishes the batch's records from `from` on; resolves with where it
         * stopped once the broker or the socket has them. At QoS 0 it stops
         * once the socket's buffer is full: mqtt.js would call back every
         * message after that on `drain`, each through a listener of its own,
         * which Node removes one by one (quadratic in the batch). The message
         * that filled the buffer is called back on that socket's `drain`,
         * which a socket that closes never emits: then that message is lost
         * with the socket (counted as dropped), and the part resolves so the
         * rest goes on, in order, once the client has reconnected; unless the
         * node closed it (a forced stop): then the part rejects, and the batch
         * is not acknowledged, even when that message was its last.
         */
        function publishPart(client: MqttClient, batch: Batch, from: number): Promise<number> {
          const items = batch.items;
          return new Promise<number>((resolve, reject) => {
            // Starts at 1 for the loop itself: mqtt.js may call back synchronously (QoS 0, socket writable).
            let waiting = 1;
            let bytes = 0;
            let next = from;
            let unwatch: (() => void) | undefined;
            const settle = (): void => {
              if (--waiting > 0) return;
              unwatch?.();
              ctx.metrics.bytes(bytes);
              resolve(next);
            };
            while (next < items.length) {
              const item = items[next++];
              let topic: string;
              let payload: Buffer | string;
              try {
                topic = topicOf(item);
                payload = payloadOf(item);
              } catch (error) {
                ctx.fail(item, error, batch.ack);
                continue;
              }
              waiting += 1;
              const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
              bytes += size;
              let calledBack = false;
              const published = (error?: Error): void => {
                if (calledBack) return;
                calledBack = true;
                if (error) ctx.fail(item, error, batch.ack);
                settle();
              };
              client.publish(topic, payload, publishOptions, published);
              const stream = client.stream;
              if (options.qos === 0 && stream?.writableNeedDrain) {
                const lost = (): void => {
                  if (calledBack) return;
                  bytes -= size;
                  if (ended(client)) {
                    // The node closing its own connection (a forced stop) loses nothing: the part fails, so the batch is not acknowledged.
                    calledBack = true;
                    unwatch?.();
                    reject(new Error(`${ctx.label}: stopped before the batch was published to ${options.url}`));
                    return;
                  }
                  lostWithSocket();
                  published();
                };
                stream.once('close', lost);
                unwatch = () => stream.off('close', lost);
                break;
              }
            }
            settle();
          });
        }

        const sink = sinkBatches<unknown>(
          async function publishToBroker(_items, batch) {
            await publishBatch((await opening).client, batch);
          },
          async function endConnection() {
            await (await opening).end();
          },
        );
        const subscription = sink(input).subscribe(subscriber);
        // A connection that cannot even be set up (a TLS file missing) fails the node now, not at its first batch.
        opening.catch((error: unknown) => subscriber.error(error));
        return () => {
          subscription.unsubscribe();
          // After a failure or a forced stop (after a completion the client has ended already, and this does nothing).
          void opening.then((opened) => opened.destroy(), () => undefined);
        };
      });
    };
  },
});
