/**
 * Settings shared by the Kafka operators, and the records `kafka.consume`
 * makes of Kafka messages.
 */
import { z, type BytesItem, type EventRecord } from '../../../runtime/api.ts';
import type { KafkaMessage } from '../../../native/kafka/client.ts';

/**
 * `brokers`: bootstrap brokers as `host:port`, a list or one comma-separated
 * string (what `${env:KAFKA_BROKERS}` usually holds).
 */
export function brokersSetting() {
  return z
    .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
    .transform(function splitBrokers(value, ctx) {
      const list = (Array.isArray(value) ? value : value.split(',')).map((b) => b.trim()).filter((b) => b.length > 0);
      for (const broker of list) {
        if (!/^[^\s:/]+:\d{1,5}$/.test(broker)) {
          ctx.addIssue({ code: 'custom', message: `a broker is \`host:port\`, found \`${broker}\`` });
          return z.NEVER;
        }
      }
      if (list.length === 0) {
        ctx.addIssue({ code: 'custom', message: 'no broker given' });
        return z.NEVER;
      }
      return list;
    })
    .meta({ description: 'Bootstrap brokers as `host:port`: a list, or one comma-separated string.', examples: [['127.0.0.1:9092'], '${env:KAFKA_BROKERS}'] });
}

/** A topic name as Kafka accepts it. */
export function topicName() {
  return z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,249}$/, { error: 'a topic name is 1 to 249 of the characters `a-z A-Z 0-9 . _ -`' });
}

/** What a record says of the Kafka message it came from. */
export interface KafkaMeta {
  topic: string;
  partition: number;
  offset: number;
  /** The key as UTF-8 text, or null. */
  key: string | null;
  /** Header names to their values as UTF-8 text. */
  headers: Record<string, string>;
  /** Milliseconds since the epoch (the producer's or the broker's, per the topic's settings). */
  timestamp: number;
}

function text(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : value.toString('utf8');
}

export function metaOf(message: KafkaMessage): KafkaMeta {
  const headers: Record<string, string> = {};
  if (message.headers.size > 0) for (const [name, value] of message.headers) headers[text(name) ?? ''] = text(value) ?? '';
  return {
    topic: message.topic,
    partition: message.partition,
    offset: Number(message.offset),
    key: text(message.key),
    headers,
    timestamp: Number(message.timestamp),
  };
}

/** A message as a Bytes item: the value, with the message's facts in `meta`. */
export function bytesRecord(message: KafkaMessage): BytesItem {
  return { data: message.value ?? Buffer.alloc(0), meta: metaOf(message) as unknown as Record<string, unknown> };
}

/**
 * A message's value parsed as a JSON object; throws when it is not one. With
 * `field`, the message's facts are added under that name.
 */
export function jsonRecord(message: KafkaMessage, field: string | undefined): EventRecord {
  if (!message.value || message.value.length === 0) throw new TypeError('empty value (a tombstone?), expected a JSON object');
  const value: unknown = JSON.parse(message.value.toString('utf8'));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  if (field !== undefined) (value as EventRecord)[field] = metaOf(message);
  return value as EventRecord;
}

/** What a dead letter shows of a message that could not be decoded. */
export function failedMessage(message: KafkaMessage): EventRecord {
  return { ...metaOf(message), value: text(message.value) };
}
