import { Observable } from 'rxjs';
import { defineOperator, z, type Batch } from '../../runtime/api.ts';
import { formatAddress } from '../../native/http/listen.ts';
import { openBroker, type AedesPublishPacket, type EmbeddedBroker } from '../../native/mqtt/broker.ts';
import { listenSetting } from '../io/web/settings.ts';
import { localBrokers } from './mqtt/local-brokers.ts';
import { brokerBatching, inferRecords, MessageBatcher, recordSettings } from './mqtt/messages.ts';
import { topicsSetting } from './mqtt/topics.ts';

const settings = z
  .object({
    listen: listenSetting(1883),
    topics: topicsSetting('Topic filters of the messages to emit; `+` matches one level, `#` the rest. Topics starting with `$` (`$SYS/...`) match only filters that start with `$`.', ['#']),
    ...recordSettings,
    username: z.string().min(1).optional().meta({ description: 'When set, clients must connect with this user name and `password`.', examples: ['${env:MQTT_USER}'] }),
    password: z.string().optional().meta({ description: 'The password clients must give with `username`; give it as `${env:NAME}`. Never logged.', examples: ['${env:MQTT_PASSWORD}'] }),
    cert: z.string().min(1).optional().meta({ description: 'A PEM certificate file: with `key`, the broker speaks MQTT over TLS (`mqtts://`).', examples: ['certs/broker.pem'] }),
    key: z.string().min(1).optional().meta({ description: 'The PEM private key file of `cert`.', examples: ['certs/broker.key'] }),
  })
  .superRefine(function checkBrokerSettings(value, ctx) {
    if (value.password !== undefined && value.username === undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: '`password` needs `username`' });
    if ((value.cert === undefined) !== (value.key === undefined)) ctx.addIssue({ code: 'custom', path: [value.cert === undefined ? 'key' : 'cert'], message: 'TLS needs both `cert` and `key`' });
  });

type BrokerSettings = z.output<typeof settings>;

/**
 * `mqtt.broker`: an MQTT broker inside the engine (aedes), whose published
 * messages are this node's output.
 */
export default defineOperator({
  name: 'mqtt.broker',
  summary: 'Run an MQTT 3.1.1 broker in the engine and emit what is published to it.',
  doc: 'Runs an MQTT broker (aedes, MQTT 3.1.1) on `listen`, so a pipeline needs no external server: devices, other programs and `mqtt.subscribe`/`mqtt.publish` nodes connect to it as to any broker (QoS 0, 1 and 2, retained messages, persistent sessions kept in memory while the node runs, wildcards; not MQTT 5 nor shared subscriptions). Every message published to it on a topic matching `topics` is also emitted, as Bytes `{data, meta: {topic, qos, retain}}` or, with `format: json`, as the parsed event (with the topic in `topic_field` when set; a payload that is not a JSON object goes to the dead-letter port). The broker acknowledges a publisher\'s message when it receives it, so what the graph has not finished when the process dies is lost: for at-least-once delivery across crashes use an external broker and `mqtt.subscribe`. When downstream is full the broker stops reading from publishers until there is room, which slows them down rather than dropping their messages. With `username` and `password`, clients must present them; with `cert` and `key` it speaks TLS, and picks up renewed files without a restart (see docs/tls.md). A drain closes the broker, disconnecting its clients, and completes.',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Published messages as Bytes `{data, meta: {topic, qos, retain}}`; events with `format: json`. May be left unconnected to run only the broker.', optional: true } },
  settings,
  requires: ['listen'],
  example: { listen: '127.0.0.1:1883', topics: ['sensors/#'], format: 'json', topic_field: 'topic' },
  infer: inferRecords,
  create(ctx) {
    const options = ctx.settings;
    return function mqttBrokerNode() {
      return new Observable<Batch>((subscriber) => {
        let broker: EmbeddedBroker | undefined;
        let stopping = false;
        let completed = false;
        const batcher = new MessageBatcher<never>(ctx, options, brokerBatching, () => undefined, (batch) => subscriber.next(batch));
        /** A message matching two of the filters reaches each of their listeners: emit it once. */
        let lastPacket: AedesPublishPacket | undefined;

        const listeners = options.topics.map((filter) => {
          const systemTopics = filter.startsWith('$');
          return {
            filter,
            deliver(packet: AedesPublishPacket, callback: () => void): void {
              if (packet === lastPacket || (!systemTopics && packet.topic.startsWith('$'))) {
                callback();
                return;
              }
              if (stopping) {
                ctx.metrics.dropped(1, 'draining');
                callback();
                return;
              }
              lastPacket = packet;
              const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
              // The publisher's next packet is read only after this callback: a full graph slows publishers down.
              batcher.add({ topic: packet.topic, payload, qos: packet.qos, retain: packet.retain }, undefined, callback);
            },
          };
        });

        async function start(): Promise<void> {
          broker = await openBroker(ctx, options);
          for (const listener of listeners) await broker.subscribe(listener.filter, listener.deliver);
          ctx.log.info({ listen: formatAddress(broker.address), tls: broker.url.startsWith('mqtts') }, `${ctx.label}: MQTT broker listening on ${broker.url}`);
        }

        function close(): Promise<void> {
          const current = broker;
          broker = undefined;
          return current ? current.close() : Promise.resolve();
        }

        const onAbort = (): void => {
          if (stopping) return;
          stopping = true;
          batcher.flush();
          void close().then(() => {
            completed = true;
            subscriber.complete();
          });
        };

        const starting = start();
        // Clients of this engine wait for it rather than fail their first attempt.
        const withdraw = localBrokers(ctx).announce(options.listen, starting);
        starting.then(
          () => {
            if (stopping) void close();
          },
          (error: unknown) => {
            void close();
            subscriber.error(error);
          },
        );
        ctx.signal.addEventListener('abort', onAbort);
        if (ctx.signal.aborted) onAbort();

        return () => {
          withdraw();
          ctx.signal.removeEventListener('abort', onAbort);
          stopping = true;
          if (!completed) void close();
        };
      });
    };
  },
});
