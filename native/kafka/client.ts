/**
 * The Kafka client behind `kafka.consume` and `kafka.produce` (and, later,
 * the transport of cross-host edges), wrapped in a small interface of our
 * own so that its users do not depend on the client library's API shape.
 * The library is imported when the first client opens, not before. The implementation uses `@platformatic/kafka`
 * (pure TypeScript, maintained, Kafka 3.5 to 4.x): against the Kafka 4.4
 * broker it did consumer groups, commits, transactions with offsets and the
 * idempotent producer, as kafkajs 2.2.4 also did; it produced about 1.7
 * times faster and consumed about 0.85 times as fast (`bench/kafka-clients.ts`),
 * and it compresses with gzip, snappy, lz4 and zstd without extra packages,
 * where kafkajs has only gzip.
 */
import type { Consumer, Message, MessageToProduce, Producer } from '@platformatic/kafka';
import { backoffDelay } from '../backoff.ts';
import { NativeError } from '../client-owner.ts';
import { guardMembership } from './member-guard.ts';
import { requestsOf } from './request-size.ts';
import type { DoubtEvent } from './membership.ts';

/** Where a consumer starts reading a partition it is assigned. */
export type StartFrom = 'earliest' | 'latest' | 'committed';
export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
/** How many replicas must have a record before the broker acknowledges it. */
export type Acks = 'all' | 'leader' | 'none';
export type Isolation = 'read_committed' | 'read_uncommitted';

/** One record as read from a partition. Payloads are the client's buffers, not copies. */
export interface KafkaMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key?: Buffer | null;
  value?: Buffer | null;
  headers: Map<Buffer | string, Buffer | string | undefined>;
  timestamp: bigint;
  leaderEpoch: number;
}

/** A record to write. Headers are a Map: the client cannot serialise a plain object's string keys. */
export interface OutgoingMessage {
  topic: string;
  /** `null` writes a tombstone: on a compacted topic it removes the key. */
  value: Buffer | null;
  key?: Buffer;
  headers?: Map<Buffer, Buffer>;
  partition?: number;
  /** The writer's own note on what this message carries (its record, a pack's records): never sent, handed back with a refusal. */
  tag?: unknown;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A position in a partition: `offset` is the next record to read (what a commit stores). */
export interface PartitionOffset extends TopicPartition {
  offset: bigint;
  leaderEpoch: number;
}

/** A consumer's membership of its group, which a transactional offset commit must present. */
export interface GroupMember {
  groupId: string;
  generationId: number;
  memberId: string;
  coordinatorId: number;
}

export interface ConsumerHandlers {
  /** Records of one partition from one fetch, in offset order. */
  messages(topic: string, partition: number, messages: KafkaMessage[]): void;
  /** The group is rebalancing: partitions may be revoked, so commit what is acknowledged now. */
  revoking(): void;
  /** The group has (re)assigned this member's partitions. */
  assigned(partitions: TopicPartition[]): void;
  /** The consumer failed and reads no more. */
  failed(error: Error): void;
  /** The membership went in doubt or came out of it. */
  doubt?(event: DoubtEvent): void;
}

export interface ConsumerOptions {
  brokers: string[];
  clientId: string;
  group: string;
  topics: string[];
  from: StartFrom;
  isolation: Isolation;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Bytes fetched from one partition per request at most. */
  maxPartitionBytes?: number;
  handlers: ConsumerHandlers;
}

/** A group member reading `topics`; records arrive through the handlers. */
export interface KafkaConsumer {
  member(): GroupMember | undefined;
  /** Stops fetching (records already fetched may still arrive). */
  pause(): void;
  resume(): void;
  /**
   * Commits the offsets; resolves true once they are committed (or the
   * group's committed offsets are already past them), false when they were
   * not: the membership is in doubt, or the group moved to a new generation
   * while the commit was under way (it then commits nothing: see
   * `membership.ts`). Try again after more records are acknowledged.
   */
  commit(offsets: readonly PartitionOffset[]): Promise<boolean>;
  /** Leaves the group and closes the connections. */
  close(): Promise<void>;
}

export interface ProducerOptions {
  brokers: string[];
  clientId: string;
  acks: Acks;
  compression: Compression;
  idempotent: boolean;
  /** Makes the producer transactional (`begin` / `commitTransaction`). */
  transactionalId?: string;
  /** Attempts of one request before it fails (a broker restart takes seconds). */
  retries?: number;
}

export interface KafkaProducer {
  /**
   * Writes the messages; resolves once the broker has acknowledged them (per
   * `acks`). They go as requests of at most `requestBytes` (512 KiB by
   * default; see `request-size.ts`; `Infinity` for messages already cut to
   * one request), one after the other.
   */
  send(messages: readonly OutgoingMessage[], requestBytes?: number): Promise<void>;
  /**
   * Writes one message outside any transaction and resolves with the offset
   * the broker gave it (needs `acks: 'all'` or `'leader'`): a single-partition
   * topic's offsets then number its records in the order the broker took them.
   */
  write(message: OutgoingMessage): Promise<bigint>;
  /** The topic's partition count, as the client's metadata has it (the topic is created when missing, as a write would). */
  partitions(topic: string): Promise<number>;
  /** Opens a transaction; `send` then writes inside it until it is committed or aborted. */
  begin(): Promise<void>;
  /** Commits the open transaction, with a consumer group's offsets when given (they commit or abort with the records). */
  commitTransaction(offsets?: { member: GroupMember; offsets: readonly PartitionOffset[] }): Promise<void>;
  abortTransaction(): Promise<void>;
  close(): Promise<void>;
}

const acksValue: Record<Acks, number> = { all: -1, leader: 1, none: 0 };

/** The brokers as `host:port` strings, for messages. */
export function describeBrokers(brokers: readonly string[]): string {
  return brokers.join(',');
}

/**
 * A client error in one line: the client wraps the cause in layers of
 * "failed N times", so give the innermost two reasons.
 */
export function clientReason(error: unknown): string {
  const chain: string[] = [];
  let current = error as (Error & { errors?: unknown[] }) | undefined;
  while (current) {
    const message = (current.message ?? String(current)).split('\n')[0].trim().replace(/\.$/, '');
    if (message && chain.at(-1) !== message) chain.push(message);
    current = (current.errors?.[0] ?? (current.cause instanceof Error ? current.cause : undefined)) as typeof current;
  }
  return chain.slice(-2).join(': ') || String(error);
}

/**
 * An error's message with its causes' and the broker's per-topic messages
 * (`Topic 'x' already exists.`), for telling one answer from another.
 */
export function errorMessages(error: unknown): string {
  type Nested = Error & { errors?: Nested[]; response?: { topics?: { errorMessage?: string | null }[] } };
  const parts: string[] = [];
  const visit = (e: Nested | undefined): void => {
    if (!e) return;
    parts.push(e.message);
    for (const topic of e.response?.topics ?? []) if (topic.errorMessage) parts.push(topic.errorMessage);
    for (const inner of e.errors ?? []) visit(inner);
  };
  visit(error as Nested);
  return parts.join('; ');
}

/** The oldest Node the client library runs on (its `engines`: `>= 22.22.0`); the rest of the engine runs on 20.19. */
const oldestNode = [22, 22, 0] as const;

/**
 * Why the client cannot run on Node `version` (`process.versions.node`), or
 * undefined when it can. On older Node the library fails inside its first
 * call (`Promise.withResolvers is not a function`), which reads as a broker
 * problem and would be retried for ever.
 */
export function kafkaNodeProblem(version: string): string | undefined {
  const parts = version.split('.').map(Number);
  for (let i = 0; i < oldestNode.length; i++) {
    if ((parts[i] ?? 0) > oldestNode[i]) return undefined;
    if ((parts[i] ?? 0) < oldestNode[i]) return `the Kafka client needs Node ${oldestNode.join('.')} or later; this is Node ${version}`;
  }
  return undefined;
}

/** Imports the client library, or rejects with a permanent error when this Node cannot run it. */
function loadKafka(): Promise<typeof import('@platformatic/kafka')> {
  const problem = kafkaNodeProblem(process.versions.node);
  if (problem) return Promise.reject(new NativeError('node_too_old', problem, { cure: 'settings' }));
  return import('@platformatic/kafka');
}

/** Joins the group and starts reading; rejects when the brokers cannot be reached. */
export async function openConsumer(options: ConsumerOptions): Promise<KafkaConsumer> {
  const { Consumer } = await loadKafka();
  const consumer = new Consumer({
    clientId: options.clientId,
    bootstrapBrokers: options.brokers,
    groupId: options.group,
    sessionTimeout: options.sessionTimeoutMs,
    heartbeatInterval: options.heartbeatIntervalMs,
    rebalanceTimeout: Math.max(options.sessionTimeoutMs, 30_000),
    isolationLevel: options.isolation === 'read_committed' ? 1 : 0,
    maxWaitTime: 500,
    autocommit: false,
    retries: 3,
    retryDelay: 500,
  });
  const { handlers } = options;
  const guard = guardMembership(consumer, { sessionTimeoutMs: options.sessionTimeoutMs, assigned: (partitions) => handlers.assigned(partitions), doubt: (event) => handlers.doubt?.(event) });
  consumer.on('consumer:group:rebalance', () => handlers.revoking());
  let stream: Awaited<ReturnType<Consumer['consume']>>;
  let closing = false;
  try {
    stream = await consumer.consume({
      topics: options.topics,
      mode: options.from,
      fallbackMode: options.from === 'latest' ? 'latest' : 'earliest',
      autocommit: false,
      maxBytesPerPartition: options.maxPartitionBytes ?? 1024 * 1024,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
    });
  } catch (error) {
    await consumer.close(true).catch(() => undefined);
    throw error;
  }
  const messages = stream;
  guard.watch(messages);

  // The client hands records over one at a time, all of a fetch in one go:
  // gather them per partition and pass each partition's run on in one call,
  // unless the membership is in doubt (the run is refused: see membership.ts).
  let gathered = new Map<string, KafkaMessage[]>();
  /** The run the last record joined: a fetch hands over each partition's records in a row. */
  let current: KafkaMessage[] | undefined;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const runs = gathered;
    gathered = new Map();
    current = undefined;
    for (const run of runs.values()) {
      const first = run[0];
      if (guard.admit(first.topic, first.partition, first.offset, run[run.length - 1].offset, run.length)) handlers.messages(first.topic, first.partition, run);
    }
  };
  messages.on('data', function gather(message: Message) {
    // Per record: the run is looked up by name only when the partition changes.
    const last = current?.[0];
    if (last !== undefined && last.partition === message.partition && last.topic === message.topic) {
      current!.push(message as KafkaMessage);
      return;
    }
    const key = `${message.topic}:${message.partition}`;
    current = gathered.get(key);
    if (current) current.push(message as KafkaMessage);
    else gathered.set(key, (current = [message as KafkaMessage]));
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  });
  messages.on('error', (error: Error) => {
    if (!closing) handlers.failed(error);
  });
  messages.on('close', () => {
    if (!closing) handlers.failed(new Error('the consumer stream closed'));
  });

  return {
    member() {
      if (!consumer.memberId || consumer.generationId < 0) return undefined;
      return { groupId: consumer.groupId, generationId: consumer.generationId, memberId: consumer.memberId, coordinatorId: consumer.coordinatorId ?? -1 };
    },
    pause() {
      messages.pause();
    },
    resume() {
      messages.resume();
    },
    commit(offsets) {
      return guard.commit(offsets);
    },
    async close() {
      if (closing) return;
      closing = true;
      guard.close();
      await messages.close().catch(() => undefined);
      await consumer.close(true);
    },
  };
}

/** A producer; idempotent and transactional ones register with the broker on first use. */
export function openProducer(options: ProducerOptions): KafkaProducer {
  // Returned at once, so a node builds its sink synchronously; the library loads behind the first call.
  const loading = loadKafka().then(({ Producer }) => newProducer(Producer, options));
  loading.catch(() => undefined);
  let transaction: Awaited<ReturnType<Producer['beginTransaction']>> | undefined;
  const groupsAdded = new Set<string>();
  return {
    async send(messages, requestBytes) {
      // One after the other, so a partition's records keep their order across the requests.
      for (const request of requestsOf(messages, requestBytes)) {
        // A tombstone's value is null, which the client writes as such though its type says Buffer | undefined.
        const list = request as unknown as MessageToProduce[];
        if (transaction) await transaction.send({ messages: list });
        else await (await loading).send({ messages: list });
      }
    },
    async write(message) {
      const result = await (await loading).send({ messages: [message as unknown as MessageToProduce] });
      const offset = result.offsets?.find((o) => o.topic === message.topic)?.offset;
      if (offset === undefined) throw new Error(`the broker gave no offset for the record written to ${message.topic} (acks none?)`);
      return BigInt(offset);
    },
    async partitions(topic) {
      const metadata = await (await loading).metadata({ topics: [topic], autocreateTopics: true });
      const count = metadata.topics.get(topic)?.partitionsCount;
      if (count === undefined || count < 1) throw new Error(`the brokers gave no partitions for topic \`${topic}\``);
      return count;
    },
    async begin() {
      transaction = await (await loading).beginTransaction();
      groupsAdded.clear();
    },
    async commitTransaction(offsets) {
      const current = transaction;
      if (!current) throw new Error('no transaction is open');
      if (offsets && offsets.offsets.length > 0) {
        const { member } = offsets;
        if (!groupsAdded.has(member.groupId)) {
          await current.addConsumer({ groupId: member.groupId } as Consumer);
          groupsAdded.add(member.groupId);
        }
        for (const o of offsets.offsets) {
          // The client commits `offset + 1` of the message it is given: hand it the last one read.
          await current.addOffset({ topic: o.topic, partition: o.partition, offset: o.offset - 1n, metadata: { consumer: member } } as unknown as Message);
        }
      }
      await current.commit();
      transaction = undefined;
    },
    async abortTransaction() {
      const current = transaction;
      transaction = undefined;
      if (current && !current.completed) await current.abort();
    },
    async close() {
      await (await loading).close(true);
    },
  };
}

function newProducer(ProducerClass: typeof Producer, options: ProducerOptions): Producer {
  return new ProducerClass({
    clientId: options.clientId,
    bootstrapBrokers: options.brokers,
    acks: acksValue[options.acks],
    compression: options.compression,
    idempotent: options.idempotent || options.transactionalId !== undefined,
    transactionalId: options.transactionalId,
    // A new producer must introduce itself as producer -1, epoch -1: the client's default
    // (0, 0) is taken by the broker for a stale incarnation and fenced while an earlier
    // incarnation's transaction is still open (after a crash).
    ...(options.transactionalId !== undefined ? { producerId: -1n, producerEpoch: -1 } : {}),
    retries: options.retries ?? 3,
    // Short first: a transaction begun right after a commit is refused while the commit's
    // markers are written, for a few milliseconds.
    retryDelay: (_client: unknown, _operation: string, attempt: number) => backoffDelay(attempt, 25, 2000),
    autocreateTopics: true,
  });
}

/** Topic administration, for tests, benchmarks and operators that create their topics. */
export interface KafkaAdmin {
  /** Creates a topic; `configs` are topic settings (`retention.ms`, `cleanup.policy`, ...). */
  createTopic(topic: string, partitions: number, configs?: Record<string, string>): Promise<void>;
  deleteTopics(topics: readonly string[]): Promise<void>;
  /** The names of the topics that exist (internal ones left out). */
  listTopics(): Promise<string[]>;
  /** The group's committed offsets for the topic's partitions (`-1n` where none). */
  committedOffsets(group: string, topic: string, partitions: number): Promise<bigint[]>;
  /** The end offset of each partition. */
  endOffsets(topic: string): Promise<bigint[]>;
  /** A topic setting's value as the broker applies it (the topic's own, or the broker's default), or undefined when it has none. */
  topicSetting(topic: string, name: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/** An administration client; like a producer, it loads the library behind its first call. */
export function openAdmin(brokers: string[], clientId = 'ami-streams-admin'): KafkaAdmin {
  const library = loadKafka();
  const loading = library.then(({ Admin }) => new Admin({ clientId, bootstrapBrokers: brokers, retries: 3, retryDelay: 500 }));
  loading.catch(() => undefined);
  return {
    async createTopic(topic, partitions, configs = {}) {
      await (await loading).createTopics({ topics: [topic], partitions, replicas: 1, configs: Object.entries(configs).map(([name, value]) => ({ name, value })) });
    },
    async deleteTopics(topics) {
      await (await loading).deleteTopics({ topics: [...topics] });
    },
    async listTopics() {
      return (await loading).listTopics();
    },
    async committedOffsets(group, topic, partitions) {
      const { Consumer } = await library;
      const probe = new Consumer({ clientId, bootstrapBrokers: brokers, groupId: group, retries: 3, retryDelay: 500 });
      try {
        const offsets = await probe.listCommittedOffsets({ topics: [{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }] });
        return offsets.get(topic) ?? [];
      } finally {
        await probe.close(true);
      }
    },
    async endOffsets(topic) {
      const { Consumer } = await library;
      const probe = new Consumer({ clientId, bootstrapBrokers: brokers, groupId: `${clientId}-probe`, retries: 3, retryDelay: 500 });
      try {
        const offsets = await probe.listOffsets({ topics: [topic] });
        return offsets.get(topic) ?? [];
      } finally {
        await probe.close(true);
      }
    },
    async topicSetting(topic, name) {
      // Resource type 2: a topic.
      const described = await (await loading).describeConfigs({ resources: [{ resourceType: 2, resourceName: topic, configurationKeys: [name] }] });
      return described[0]?.configs.find((c) => c.name === name)?.value ?? undefined;
    },
    async close() {
      await (await loading).close();
    },
  };
}

/** A topic to create, with its partitions and settings. */
export interface WantedTopic {
  topic: string;
  partitions: number;
  configs?: Record<string, string>;
}

/**
 * Creates the topics that do not exist yet, at once; one that exists is
 * left as it is. Lists first: creating a topic that exists is an error the
 * client retries before giving up. Resolves with the topics it could not
 * create and why (the broker may still create them on first use, with its
 * defaults).
 */
export async function createMissingTopics(admin: KafkaAdmin, wanted: readonly WantedTopic[]): Promise<{ topic: string; error: string }[]> {
  const existing = new Set(await admin.listTopics());
  const failed: { topic: string; error: string }[] = [];
  await Promise.all(wanted.filter((t) => !existing.has(t.topic)).map(async function createOne(t) {
    try {
      await admin.createTopic(t.topic, t.partitions, t.configs);
    } catch (error) {
      if (!/exist/i.test(errorMessages(error))) failed.push({ topic: t.topic, error: errorMessages(error) });
    }
  }));
  return failed;
}

/**
 * `createMissingTopics` through an administration client of its own,
 * opened on `brokers` and closed after: what deploy, workers and the
 * control plane do before they write. Rejects when the topics cannot be
 * listed (the brokers cannot be reached).
 */
export async function ensureTopics(brokers: string[], clientId: string, wanted: readonly WantedTopic[]): Promise<{ topic: string; error: string }[]> {
  const admin = openAdmin(brokers, clientId);
  try {
    return await createMissingTopics(admin, wanted);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/**
 * Loads the Kafka library now: a process that will use it (a worker) pays
 * for loading it as it starts, not inside its first deployment.
 */
export async function preloadKafka(): Promise<void> {
  // On a Node too old for it the first client reports that, with the node that opened it.
  if (!kafkaNodeProblem(process.versions.node)) await import('@platformatic/kafka');
}

const closing = new Set<Promise<unknown>>();

/** Registers a client closing in the background (after a drain), so that `clientsClosed` can wait for it. */
export function closingInBackground(work: Promise<unknown>): void {
  const tracked = work.catch(() => undefined).finally(() => closing.delete(tracked));
  closing.add(tracked);
}

/** Resolves once every client closing in the background has closed (tests, before reading committed offsets). */
export async function clientsClosed(): Promise<void> {
  while (closing.size > 0) await Promise.all([...closing]);
}
