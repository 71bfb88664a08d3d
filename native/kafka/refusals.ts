/**
 * Records the broker refuses for good for their size. A broker refuses a
 * partition's record batch above the topic's `max.message.bytes` (its own
 * `message.max.bytes`, 1 MiB by default) with MESSAGE_TOO_LARGE (or
 * RECORD_LIST_TOO_LARGE), and refuses it again on every retry: a writer that
 * retries a request holding such a record never ends. `writeIsolating`
 * writes what the broker takes, in order, and hands back the records it
 * refuses alone, for the caller to dead-letter.
 */
import { keyPartition } from './partitioner.ts';
import { messageBytes, requestBytesLimit, requestsOf } from './request-size.ts';
import type { KafkaProducer, OutgoingMessage } from './client.ts';

/** The broker's answers that refuse a record batch for its size, by Kafka error code. */
const tooLargeCodes = new Map<number, string>([
  [10, 'MESSAGE_TOO_LARGE'],
  [18, 'RECORD_LIST_TOO_LARGE'],
]);

/** A record the broker refused, alone in its request, for its size. */
export interface RefusedMessage {
  message: OutgoingMessage;
  /** The broker's error: `MESSAGE_TOO_LARGE` or `RECORD_LIST_TOO_LARGE`. */
  code: string;
  /** Its keys, values and headers, in bytes. */
  bytes: number;
  /** One line: the size, the topic and the limit that refused it; never the payload. */
  reason: string;
}

/** What `writeIsolating` needs of a producer (`send` one request, and a topic's partition count). */
export type IsolatingProducer = Pick<KafkaProducer, 'send' | 'partitions'>;

/**
 * Writes `messages` as `KafkaProducer.send` does, in requests one after the
 * other, except that a record the broker refuses for its size does not fail
 * the write: the rest is written, a partition's records in order, and the
 * refused records come back (an empty list when there are none). Any other
 * failure rejects as `send` does, `options.progress` holding how far the
 * write got for the next attempt. Keyless records without a partition are
 * given one first (in turn, per record, as the client would), so that the
 * partitions a refusal names tell which records it refused.
 */
export async function writeIsolating(producer: IsolatingProducer, messages: readonly OutgoingMessage[], options: IsolatingOptions = {}): Promise<RefusedMessage[]> {
  const progress = options.progress ?? { done: 0, refused: [] };
  const placed = await placeKeyless(producer, progress.done === 0 ? messages : messages.slice(progress.done), options.turns ?? new Map());
  for (const request of requestsOf(placed, options.requestBytes)) {
    const refusedBefore = progress.refused.length;
    try {
      await writeRequest(producer, request, progress.refused, options);
    } catch (error) {
      // The request is written again whole: what it refused so far will be refused again.
      progress.refused.length = refusedBefore;
      throw error;
    }
    progress.done += request.length;
  }
  return progress.refused;
}

/**
 * How far one write got, kept by its caller across attempts: an attempt
 * after a failure goes on from the first request not written, so the
 * requests the broker took before it are not written twice.
 */
export interface IsolatingProgress {
  /** The messages, from the start of the list, in requests the broker took (or refused records of). */
  done: number;
  /** The records refused so far. */
  refused: RefusedMessage[];
}

/** How `writeIsolating` writes: where keyless records go, the request size, and what replaces a refused message. */
export interface IsolatingOptions {
  /** The turn of keyless records over each topic's partitions, kept across calls. */
  turns?: Map<string, number>;
  /** The most bytes a request carries (see `requestsOf`): under the topic's limit when it is known, so that few requests are refused. */
  requestBytes?: number;
  /**
   * What to write in place of a message refused alone (a pack: its
   * records), or undefined to refuse it. Written where the message was, so
   * its partition's order is kept, in requests of up to `requestBytes` like
   * the rest; a refused one is halved, down to a record alone, which is refused.
   */
  instead?(message: OutgoingMessage): readonly OutgoingMessage[] | undefined;
  /** Where an earlier attempt of this write stopped (it is updated as requests are written); from the start when absent. */
  progress?: IsolatingProgress;
}

/**
 * Writes one request; when the broker refuses some of its partitions for
 * size (the others are written: the broker takes or refuses each
 * partition's batch whole), writes the refused partitions' records again
 * in halves, down to a record alone, which is refused.
 */
async function writeRequest(producer: IsolatingProducer, request: readonly OutgoingMessage[], refused: RefusedMessage[], options: IsolatingOptions): Promise<void> {
  try {
    // Already cut to `requestBytes`: sent as one request, not measured again.
    await producer.send(request, Infinity);
  } catch (error) {
    const verdicts = tooLargeVerdicts(error);
    if (!verdicts) throw error;
    const again: OutgoingMessage[] = [];
    let code = '';
    for (const message of request) {
      const verdict = verdicts.get(`${message.topic}:${await partitionOf(producer, message)}`);
      if (verdict === undefined) continue;
      again.push(message);
      code = verdict;
    }
    // Refused, but for none of these records' partitions: not something to isolate.
    if (again.length === 0) throw error;
    if (again.length === 1) {
      const replacement = options.instead?.(again[0]);
      if (replacement !== undefined && replacement.length > 0) {
        // Not replaced again: what replaces a message is refused alone.
        for (const part of requestsOf(replacement, options.requestBytes)) await writeRequest(producer, part, refused, { requestBytes: options.requestBytes });
        return;
      }
      const bytes = messageBytes(again[0]);
      refused.push({ message: again[0], code, bytes, reason: refusalReason(again[0].topic, bytes, code) });
      return;
    }
    const half = Math.ceil(again.length / 2);
    await writeRequest(producer, again.slice(0, half), refused, options);
    await writeRequest(producer, again.slice(half), refused, options);
  }
}

/**
 * Why a record was refused, in one line (no payload); `limit` is the
 * topic's `max.message.bytes` when it could be read.
 */
export function refusalReason(topic: string, bytes: number, code: string, limit?: number): string {
  const what = limit !== undefined ? `its \`max.message.bytes\` is ${limit}` : `its limit is the topic's \`max.message.bytes\`, or the broker's \`message.max.bytes\`, 1 MiB by default`;
  return `a record of ${bytes} bytes is larger than topic \`${topic}\` takes (the broker answered ${code}; ${what}, counting the batch's own bytes); it was not written`;
}

/**
 * The partitions a failed send's answers refused for size, as
 * `topic:partition` to the error's name; undefined when the failure holds
 * anything else (a network error, another refusal), which is retried whole.
 */
export function tooLargeVerdicts(error: unknown): Map<string, string> | undefined {
  type Nested = Error & { errors?: Nested[]; response?: { responses?: { name?: string; topic?: string; partitionResponses?: { index: number; errorCode: number }[] }[] } };
  const verdicts = new Map<string, string>();
  let other = false;
  const visit = (e: Nested): void => {
    const responses = e.response?.responses;
    if (responses) {
      for (const topic of responses) {
        for (const partition of topic.partitionResponses ?? []) {
          if (partition.errorCode === 0) continue;
          const code = tooLargeCodes.get(partition.errorCode);
          if (code === undefined) other = true;
          else verdicts.set(`${topic.name ?? topic.topic}:${partition.index}`, code);
        }
      }
      return;
    }
    if (e.errors && e.errors.length > 0) for (const inner of e.errors) visit(inner);
    else other = true;
  };
  if (error instanceof Error) visit(error as Nested);
  else other = true;
  return other || verdicts.size === 0 ? undefined : verdicts;
}

/** What a record batch of one record adds to its keys, values and headers, at most (the batch's header and the record's lengths). */
const batchOverhead = 61 + 40;

/**
 * The messages that cannot fit in a topic taking `limit` bytes a batch, even
 * alone and compressed by nothing, refused before they are sent; the others
 * (the list itself when none is refused) to write. A transaction cannot
 * isolate a refusal after the fact: the client's sequence numbers would no
 * longer match the broker's.
 */
export function screenOversized(messages: readonly OutgoingMessage[], limit: number): { fitting: readonly OutgoingMessage[]; refused: RefusedMessage[] } {
  const refused: RefusedMessage[] = [];
  let fitting: OutgoingMessage[] | undefined;
  for (let i = 0; i < messages.length; i++) {
    const bytes = messageBytes(messages[i]);
    if (bytes + batchOverhead <= limit) {
      fitting?.push(messages[i]);
      continue;
    }
    fitting ??= messages.slice(0, i);
    refused.push({ message: messages[i], code: 'MESSAGE_TOO_LARGE', bytes, reason: refusalReason(messages[i].topic, bytes, 'MESSAGE_TOO_LARGE', limit) });
  }
  return { fitting: fitting ?? messages, refused };
}

/** The request size for a topic taking `limit` bytes a batch: half of it, as `requestBytesLimit` is of the broker's default. */
export function requestBytesFor(limit: number | undefined): number | undefined {
  return limit === undefined ? undefined : Math.max(1, Math.min(requestBytesLimit, Math.floor(limit / 2)));
}

/** The partition the client writes `message` to: its own, its key's, or (keyless, placed by `placeKeyless`) 0. */
async function partitionOf(producer: IsolatingProducer, message: OutgoingMessage): Promise<number> {
  const count = await producer.partitions(message.topic);
  if (message.partition !== undefined) return message.partition % count;
  return message.key ? keyPartition(message.key, count) : 0;
}

/**
 * `messages` with a partition for each keyless record that has none, taken
 * in turn per topic (`turns` keeps the turn across calls): the client would
 * spread them so itself, but only the caller's own choice can be read back.
 * The list itself when there is none to place.
 */
async function placeKeyless(producer: IsolatingProducer, messages: readonly OutgoingMessage[], turns: Map<string, number>): Promise<readonly OutgoingMessage[]> {
  if (!messages.some((m) => m.partition === undefined && !m.key)) return messages;
  const placed: OutgoingMessage[] = [];
  const counts = new Map<string, number>();
  for (const message of messages) {
    if (message.partition !== undefined || message.key) {
      placed.push(message);
      continue;
    }
    let count = counts.get(message.topic);
    if (count === undefined) counts.set(message.topic, (count = await producer.partitions(message.topic)));
    const turn = turns.get(message.topic) ?? 0;
    turns.set(message.topic, turn + 1);
    placed.push({ ...message, partition: turn % count });
  }
  return placed;
}
