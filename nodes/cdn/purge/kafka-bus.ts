/**
 * The purge bus over Kafka: commands on the topic named after the channel
 * (`streams.cdn.purge`), acks on `<topic>.acks`, heartbeats on
 * `<topic>.edges` (keyed by edge name). Each of the three topics has one
 * partition (created if missing), so every reader sees one order.
 *
 * Every edge reads the command topic in a consumer group of its own (a
 * fresh name per start: two edges must never share partitions, and a
 * restarted edge must not replay purges its empty cache does not need), from
 * the latest offset. "Latest" is resolved some time after joining, so a
 * reader writes a probe record to its topic and waits to read it back: once
 * it has, every record written later reaches it. Only then does an edge
 * register, and only then does a sender publish.
 *
 * A sender reads the registry topic from the start (its own probe tells it
 * when it has caught up) and keeps reading it while it is open.
 */
import { randomUUID } from 'node:crypto';
import type { ClientOwner } from '../../../native/client-owner.ts';
import { clientReason, describeBrokers, ensureTopics as ensureKafkaTopics, openConsumer, openProducer, type KafkaConsumer, type KafkaProducer, type StartFrom } from '../../../native/kafka/client.ts';
import { encodeBusMessage, PurgeBusError, type EdgeBus, type RawHandler, type SenderBus } from './bus.ts';
import { newProbe, parseBusMessage } from './command.ts';
import { kafkaNames, kafkaTiming, type RegisteredEdge } from './registry.ts';

/** How long a reader may take to read its probe back (joining a group included). */
const positionTimeoutMs = 30_000;
/** How often the probe is written again while it has not come back. */
const probeEveryMs = 1_000;

/**
 * What the bus's topics keep: an hour. Readers of commands and acks start
 * from the latest offset, and a sender reads the registry from the start,
 * so old records only slow senders down; ten-minute segments let the
 * broker delete them (retention drops whole closed segments).
 */
const topicConfigs = { 'retention.ms': String(60 * 60_000), 'segment.ms': String(10 * 60_000) };

/** Creates the bus's topics (one partition each, kept an hour) unless they exist; a broker that cannot be reached, or a topic it cannot create, is a `PurgeBusError`. */
export async function ensureTopics(brokers: string[], topics: string[]): Promise<void> {
  let failed: { topic: string; error: string }[];
  try {
    failed = await ensureKafkaTopics(brokers, 'ami-streams-purge-admin', topics.map((topic) => ({ topic, partitions: 1, configs: topicConfigs })));
  } catch (error) {
    throw new PurgeBusError('bus_unreachable', `cannot list the purge topics on Kafka at ${describeBrokers(brokers)}: ${clientReason(error)}`, { cause: error });
  }
  if (failed.length > 0) throw new PurgeBusError('bus_unreachable', `cannot create the purge topic${failed.length > 1 ? 's' : ''} ${failed.map((f) => `\`${f.topic}\``).join(', ')} on Kafka at ${describeBrokers(brokers)}: ${failed[0].error}`);
}

/**
 * A consumer of `topic` in group `group` whose every record goes to
 * `onMessage` (the probes it wrote included: a bus `probe` message),
 * returned once it has read back a probe it wrote (so it misses nothing
 * written afterwards). `bench/cdn-purge.ts` reads its bare baselines with it.
 */
export async function positionedConsumer(options: { brokers: string[]; topic: string; group: string; from: StartFrom; producer: KafkaProducer; onMessage: RawHandler; onFailure(error: Error): void }): Promise<KafkaConsumer> {
  const probe = newProbe();
  let positioned = false;
  let arrived: () => void = () => undefined;
  const probeBack = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let consumer: KafkaConsumer;
  try {
    consumer = await openConsumer({
      brokers: options.brokers,
      clientId: 'ami-streams-purge',
      group: options.group,
      topics: [options.topic],
      from: options.from,
      isolation: 'read_uncommitted',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 3_000,
      handlers: {
        messages(_topic, _partition, messages) {
          for (const message of messages) {
            if (!message.value) continue;
            if (!positioned && message.value.includes(probe.nonce)) {
              positioned = true;
              arrived();
            }
            options.onMessage(message.value);
          }
        },
        revoking: () => undefined,
        assigned: () => undefined,
        failed: (error) => options.onFailure(error),
      },
    });
  } catch (error) {
    throw new PurgeBusError('bus_unreachable', `cannot read \`${options.topic}\` from Kafka at ${describeBrokers(options.brokers)}: ${clientReason(error)}`, { cause: error });
  }
  const deadline = Date.now() + positionTimeoutMs;
  try {
    while (!positioned) {
      if (Date.now() > deadline) throw new PurgeBusError('bus_timeout', `no record of \`${options.topic}\` came back from Kafka at ${describeBrokers(options.brokers)} within ${positionTimeoutMs / 1000} s`);
      await options.producer.send([{ topic: options.topic, value: encodeBusMessage(probe) }]);
      await Promise.race([probeBack, new Promise((resolve) => setTimeout(resolve, probeEveryMs))]);
    }
  } catch (error) {
    await consumer.close().catch(() => undefined);
    throw error instanceof PurgeBusError ? error : new PurgeBusError('bus_unreachable', `cannot write to \`${options.topic}\` on Kafka at ${describeBrokers(options.brokers)}: ${clientReason(error)}`, { cause: error });
  }
  return consumer;
}

function producerFor(brokers: string[]): KafkaProducer {
  return openProducer({ brokers, clientId: 'ami-streams-purge', acks: 'all', compression: 'none', idempotent: false, retries: 5 });
}

/** A group name nobody else uses, readable in `kafka-consumer-groups` listings. */
function freshGroup(topic: string, who: string): string {
  return `ami-streams-purge.${topic}.${who}.${randomUUID().slice(0, 8)}`;
}

/** An edge's side; `owner.node` is the edge name. */
export async function openKafkaEdgeBus(brokers: string[], channel: string, owner: ClientOwner): Promise<EdgeBus> {
  const names = kafkaNames(channel);
  await ensureTopics(brokers, [names.commands, names.acks, names.registry]);
  const producer = producerFor(brokers);
  let consumer: KafkaConsumer | undefined;
  let failure: Error | undefined;
  return {
    timing: kafkaTiming,
    async listen(onMessage) {
      consumer = await positionedConsumer({
        brokers,
        topic: names.commands,
        group: freshGroup(names.commands, owner.node),
        from: 'latest',
        producer,
        onMessage,
        onFailure(error) {
          // The edge hears no more commands: stop beating so senders see it as stale and name it.
          failure = error;
          owner.log.error({ topic: names.commands, error: clientReason(error) }, `${owner.label}: stopped reading purge commands from \`${names.commands}\`: ${clientReason(error)}`);
        },
      });
    },
    async reply(ack) {
      await producer.send([{ topic: names.acks, value: encodeBusMessage(ack) }]);
    },
    async heartbeat(edge, at) {
      if (failure) throw new Error(`not reading \`${names.commands}\`: ${clientReason(failure)}`);
      await producer.send([{ topic: names.registry, key: Buffer.from(edge), value: encodeBusMessage({ v: 1, type: 'heartbeat', edge, at }) }]);
    },
    async close() {
      await consumer?.close().catch(() => undefined);
      await producer.close().catch(() => undefined);
    },
  };
}

/** A sender's side: reads the registry from the start, then the acks from now on. */
export async function openKafkaSenderBus(brokers: string[], channel: string, owner: ClientOwner): Promise<SenderBus> {
  const names = kafkaNames(channel);
  await ensureTopics(brokers, [names.commands, names.acks, names.registry]);
  const producer = producerFor(brokers);
  const seen = new Map<string, number>();
  const consumers: KafkaConsumer[] = [];
  let failure: Error | undefined;
  const onFailure = (error: Error): void => {
    failure = error;
    owner.log.error({ error: clientReason(error) }, `${owner.label}: a purge bus reader failed: ${clientReason(error)}`);
  };
  const close = async (): Promise<void> => {
    await Promise.all(consumers.map((consumer) => consumer.close().catch(() => undefined)));
    await producer.close().catch(() => undefined);
  };
  try {
    consumers.push(
      await positionedConsumer({
        brokers,
        topic: names.registry,
        group: freshGroup(names.registry, 'sender'),
        from: 'earliest',
        producer,
        onMessage(raw) {
          const parsed = parseBusMessage(raw);
          if (parsed.ok && parsed.message.type === 'heartbeat') seen.set(parsed.message.edge, Math.max(seen.get(parsed.message.edge) ?? 0, parsed.message.at));
        },
        onFailure,
      }),
    );
  } catch (error) {
    await close();
    throw error;
  }
  return {
    timing: kafkaTiming,
    async listenReplies(onMessage) {
      consumers.push(await positionedConsumer({ brokers, topic: names.acks, group: freshGroup(names.acks, 'sender'), from: 'latest', producer, onMessage, onFailure }));
    },
    async edges(): Promise<RegisteredEdge[]> {
      return [...seen].map(([edge, lastSeen]) => ({ edge, lastSeen }));
    },
    async publish(command) {
      await producer.send([{ topic: names.commands, value: encodeBusMessage(command) }]);
    },
    notListening() {
      return failure ? `a reader of the purge topics failed: ${clientReason(failure)}` : undefined;
    },
    close,
  };
}
