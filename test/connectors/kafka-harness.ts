/**
 * What the Kafka tests share: the registry with the Kafka operators and test
 * operators (a collecting sink that can hold acknowledgements, a slow
 * transform), pipelines run through the real engine, a logger that keeps
 * what it is told, unique topic names, and the client wrapper for the
 * test's own producing and reading.
 */
import { randomUUID } from 'node:crypto';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import kafkaConsume from '../../nodes/messaging/kafka-consume.ts';
import kafkaProduce from '../../nodes/messaging/kafka-produce.ts';
import { afterAll, beforeAll } from 'vitest';
import { clientsClosed, openAdmin, openConsumer, openProducer, type KafkaAdmin, type KafkaMessage, type OutgoingMessage } from '../../native/kafka/client.ts';
import { registry } from '../../nodes/all.ts';
import { defineOperator, perBatchAsync, sinkBatches, z, type Logger, type OperatorDefinition } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';

/** The brokers from `test/services/start.sh kafka`; fails (never skips) without them. */
export function kafkaBrokers(): string {
  const brokers = process.env.STREAMS_KAFKA_BROKERS;
  if (!brokers) {
    throw new Error('STREAMS_KAFKA_BROKERS is not set: run `npm run services:start` (or `bash test/services/start.sh kafka`) and load its settings (`set -a; . /tmp/ami-streams-services/env.sh; set +a`)');
  }
  return brokers;
}

/** A topic (or group) name no other test run uses. */
export function unique(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

export const collected = new Map<string, unknown[]>();
const holding = new Map<string, { after: number; taken: number }>();

/**
 * A sink that keeps what it receives under `into`. With `hold_after: N` it
 * acknowledges its first N batches and holds every later one forever (a sink
 * that never finishes, to show what is committed).
 */
export const collectOperator = defineOperator({
  name: 'test.collect',
  summary: 'Test sink: keep records in memory.',
  doc: 'Keeps every record it receives in the test process, under `into`.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({ into: z.string(), hold_after: z.number().int().optional() }),
  create(ctx) {
    const { into, hold_after: holdAfter } = ctx.settings;
    const list = records(into);
    const state = { after: holdAfter ?? Infinity, taken: 0 };
    holding.set(into, state);
    return sinkBatches<unknown>(async function collect(items) {
      list.push(...items);
      state.taken += 1;
      if (state.taken > state.after) await new Promise<never>(() => undefined);
    });
  },
});

/** A transform that passes records on at about `per_second` records a second. */
export const slowOperator = defineOperator({
  name: 'test.slow',
  summary: 'Test transform: pass records on slowly.',
  doc: 'Waits in proportion to each batch\'s size, then passes it on.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: { out: { type: 'Any', doc: 'The same records.' } },
  settings: z.object({ per_second: z.number().positive() }),
  paced: true,
  create(ctx) {
    return perBatchAsync<unknown, unknown>(ctx, async function slowly(items) {
      await new Promise((resolve) => setTimeout(resolve, (items.length / ctx.settings.per_second) * 1000));
      return items;
    });
  },
});

export function records(into: string): unknown[] {
  let list = collected.get(into);
  if (!list) {
    list = [];
    collected.set(into, list);
  }
  return list;
}

export const kafkaRegistry = new Map<string, OperatorDefinition>([
  ...registry,
  ...[kafkaConsume, kafkaProduce, collectOperator, slowOperator].map((op) => [op.name, op] as const),
]);

export interface LogEntry {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

export type RecordingLogger = Logger & { entries: LogEntry[]; child(bindings: object): Logger };

/** A logger that keeps every entry; `STREAMS_TEST_LOG=1` also prints them. */
export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const print = process.env.STREAMS_TEST_LOG === '1';
  const make = (bindings: object): RecordingLogger => {
    const at = (level: string) => (fields: object, message: string) => {
      const entry = { level, fields: { ...bindings, ...fields } as Record<string, unknown>, message };
      entries.push(entry);
      if (print) console.log(JSON.stringify(entry));
    };
    return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more: object) => make({ ...bindings, ...more }) };
  };
  return make({});
}

/** Checks and starts a pipeline on the engine. */
export function startPipeline(text: string, log: Logger = recordingLogger(), registry: ReadonlyMap<string, OperatorDefinition> = kafkaRegistry): Engine {
  const result = checkPipeline({ file: 'kafka-test.yaml', text, registry, env: process.env });
  if (!result.graph) throw new Error(`pipeline invalid:\n${result.diagnostics.map(formatDiagnostic).join('\n')}`);
  const engine = new Engine(result.graph, { registry, log });
  engine.start();
  return engine;
}

/** Stops an engine hard, as a crash would: nothing drains (the consumers leave without waiting for acknowledgements). */
export function kill(engine: Engine): void {
  for (const runner of engine.runners.values()) runner.force();
}

/** Polls `check` until it is true or `timeoutMs` passes; then throws with `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function admin(): KafkaAdmin {
  return openAdmin(kafkaBrokers().split(','));
}

/** The topics a services test file makes, and the admin client it makes them with. */
export interface FileTopics {
  readonly admin: KafkaAdmin;
  /** Creates a topic with a unique name from `name` (and topic settings `configs`), deleted after the file's tests. */
  topic(name: string, partitions?: number, configs?: Record<string, string>): Promise<string>;
}

/**
 * Registers the hooks of a services test file that makes topics: an admin
 * client before its tests (failing, never skipping, without a broker); after
 * them, the clients closing in the background are waited for and every topic
 * made is deleted.
 */
export function topicsOfThisFile(): FileTopics {
  let client: KafkaAdmin | undefined;
  const made: string[] = [];
  beforeAll(() => {
    kafkaBrokers();
    client = admin();
  });
  afterAll(async () => {
    await clientsClosed();
    await client?.deleteTopics(made).catch(() => undefined);
    await client?.close();
  });
  return {
    get admin(): KafkaAdmin {
      if (!client) throw new Error('the admin client opens before the tests (beforeAll)');
      return client;
    },
    async topic(name, partitions = 1, configs) {
      const created = unique(name);
      await this.admin.createTopic(created, partitions, configs);
      made.push(created);
      return created;
    },
  };
}

/** Writes messages to a topic with the test's own producer. */
export async function produce(topic: string, messages: readonly Omit<OutgoingMessage, 'topic'>[], chunk = 1000): Promise<void> {
  const producer = openProducer({ brokers: kafkaBrokers().split(','), clientId: 'kafka-test', acks: 'all', compression: 'none', idempotent: true });
  try {
    for (let i = 0; i < messages.length; i += chunk) await producer.send(messages.slice(i, i + chunk).map((m) => ({ ...m, topic })));
  } finally {
    await producer.close();
  }
}

/** JSON values `{id}` as messages, ids `from` to `to` - 1. */
export function idMessages(from: number, to: number): Omit<OutgoingMessage, 'topic'>[] {
  return Array.from({ length: to - from }, (_, k) => ({ key: Buffer.from(`k${(from + k) % 16}`), value: Buffer.from(JSON.stringify({ id: from + k })) }));
}

/**
 * Reads a topic from the beginning with a fresh group until `expected`
 * records came and nothing more arrives for `settleMs`.
 */
export async function readTopic(topic: string, expected: number, options: { isolation?: 'read_committed' | 'read_uncommitted'; timeoutMs?: number; settleMs?: number } = {}): Promise<KafkaMessage[]> {
  const messages: KafkaMessage[] = [];
  let last = Date.now();
  const consumer = await openConsumer({
    brokers: kafkaBrokers().split(','),
    clientId: 'kafka-test-reader',
    group: unique('reader'),
    topics: [topic],
    from: 'earliest',
    isolation: options.isolation ?? 'read_committed',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    handlers: {
      messages(_topic, _partition, run) {
        messages.push(...run);
        last = Date.now();
      },
      revoking() {},
      assigned() {},
      failed() {},
    },
  });
  try {
    await until(`${expected} records in \`${topic}\` (have ${messages.length})`, () => messages.length >= expected && Date.now() - last >= (options.settleMs ?? 1000), options.timeoutMs ?? 60_000);
  } finally {
    await consumer.close();
  }
  return messages;
}

/** Ids of JSON `{id}` values, and how many of them came more than once. */
export function idCounts(values: readonly unknown[]): { distinct: Set<number>; duplicates: number } {
  const distinct = new Set<number>();
  let duplicates = 0;
  for (const value of values) {
    const id = (value as { id: number }).id;
    if (distinct.has(id)) duplicates += 1;
    else distinct.add(id);
  }
  return { distinct, duplicates };
}
