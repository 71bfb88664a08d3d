/**
 * A compacted topic read as a table: the latest value of every key, kept up
 * to date by a consumer that reads the topic from its start and goes on
 * reading. Compaction keeps the last record of every key, so a reader that
 * starts late still finds every key's current value.
 *
 * The consumer joins a group of its own (a fresh id per table): every table
 * reads every partition, commits nothing, and the broker forgets the group
 * once it leaves.
 */
import { randomUUID } from 'node:crypto';
import { backoffDelay } from '../backoff.ts';
import { openAdmin, openConsumer, type KafkaConsumer, type KafkaMessage } from './client.ts';

/** A key's latest value and the offset of the record that wrote it. */
export interface TableEntry {
  value: string;
  offset: bigint;
  partition: number;
}

export interface KafkaTable {
  /** The latest value of every key; a tombstone (null value) removes its key. */
  entries(): ReadonlyMap<string, TableEntry>;
  /** Resolves once every record written before the call has been read; rejects after `timeoutMs`. */
  caughtUp(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface TableOptions {
  brokers: string[];
  topic: string;
  /** The client id; the group is this id and a random suffix. */
  clientId: string;
  /** Called after a fetch changed the table, with the keys it wrote (in offset order). */
  changed?(keys: string[]): void;
  /** The consumer failed; the table reopens it after a backoff. */
  failed?(error: Error): void;
}

/** Starts reading `topic` from its start; resolves once the consumer has joined its group. */
export async function openTable(options: TableOptions): Promise<KafkaTable> {
  const entries = new Map<string, TableEntry>();
  /** partition → the next offset to read. */
  const positions = new Map<number, bigint>();
  const waiters = new Set<() => void>();
  let consumer: KafkaConsumer | undefined;
  let closed = false;
  let attempt = 0;

  const take = (messages: KafkaMessage[]): void => {
    const keys: string[] = [];
    for (const message of messages) {
      positions.set(message.partition, message.offset + 1n);
      if (!message.key) continue;
      const key = message.key.toString('utf8');
      keys.push(key);
      if (message.value == null) entries.delete(key);
      else entries.set(key, { value: message.value.toString('utf8'), offset: message.offset, partition: message.partition });
    }
    for (const wake of waiters) wake();
    if (keys.length > 0) options.changed?.(keys);
  };

  const open = async (): Promise<KafkaConsumer> =>
    openConsumer({
      brokers: options.brokers,
      clientId: options.clientId,
      group: `${options.clientId}.${randomUUID()}`,
      topics: [options.topic],
      from: 'earliest',
      isolation: 'read_uncommitted',
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 1000,
      handlers: {
        messages: (_topic, _partition, messages) => take(messages),
        revoking: () => undefined,
        assigned: () => undefined,
        failed: (error) => {
          options.failed?.(error);
          reopen();
        },
      },
    });

  const reopen = (): void => {
    const previous = consumer;
    consumer = undefined;
    void previous?.close().catch(() => undefined);
    if (closed) return;
    attempt += 1;
    // Positions start again from the topic's start: the new group has no commits, and re-reading only rewrites the same values.
    setTimeout(() => {
      if (closed) return;
      open().then(
        (next) => {
          attempt = 0;
          if (closed) void next.close().catch(() => undefined);
          else consumer = next;
        },
        (error: Error) => {
          options.failed?.(error);
          reopen();
        },
      );
    }, backoffDelay(attempt, 200, 5000)).unref();
  };

  consumer = await open();

  return {
    entries: () => entries,
    async caughtUp(timeoutMs) {
      const admin = openAdmin(options.brokers, options.clientId);
      let ends: bigint[];
      try {
        ends = await withTimeout(admin.endOffsets(options.topic), timeoutMs, `reading the end of topic ${options.topic}`);
      } finally {
        await admin.close().catch(() => undefined);
      }
      const reached = (): boolean => ends.every((end, partition) => end <= 0n || (positions.get(partition) ?? 0n) >= end);
      if (reached()) return;
      await withTimeout(
        new Promise<void>((resolve) => {
          const wake = (): void => {
            if (!reached()) return;
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
        }),
        timeoutMs,
        `reading topic ${options.topic} to its end`,
      );
    },
    async close() {
      closed = true;
      waiters.clear();
      await consumer?.close().catch(() => undefined);
    },
  };
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
