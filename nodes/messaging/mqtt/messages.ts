/**
 * Received MQTT messages into batches of records, shared by `mqtt.subscribe`
 * and `mqtt.broker`: the `format` and `topic_field` settings, decoding, and
 * a batcher that gathers the messages of one socket read into one batch.
 */
import { z, type Batch, type BytesItem, type EventRecord, type NodeContext } from '../../../runtime/api.ts';

/** One message as received. */
export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
}

/** The settings that shape records from messages. */
export const recordSettings = {
  format: z
    .enum(['bytes', 'json'])
    .default('bytes')
    .meta({ description: '`bytes`: Bytes items `{data, meta: {topic, qos, retain}}`; `json`: events parsed from each payload, which must be a JSON object (anything else goes to the dead-letter port).' }),
  topic_field: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'With `format: json`, the field that receives each message\'s topic (it replaces a field of that name in the payload).', examples: ['topic'] }),
};

const recordObject = z.object(recordSettings);
export type RecordSettings = z.output<typeof recordObject>;

/** Output types by format, for an operator's `infer`. */
export function inferRecords(settings: RecordSettings) {
  return settings.format === 'json' ? { out: { kind: 'event' as const } } : {};
}

/** Turns a message into a record; throws when a JSON payload is not a JSON object. */
export function recordDecoder(settings: RecordSettings): (message: ReceivedMessage) => BytesItem | EventRecord {
  const topicField = settings.topic_field;
  if (settings.format === 'bytes') {
    return function bytesRecord(message) {
      return { data: message.payload, meta: { topic: message.topic, qos: message.qos, retain: message.retain } };
    };
  }
  return function jsonRecord(message) {
    const value: unknown = JSON.parse(message.payload.toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new TypeError(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
    }
    if (topicField !== undefined) (value as EventRecord)[topicField] = message.topic;
    return value as EventRecord;
  };
}

/** What a dead letter shows of a message that could not be decoded. */
function failedMessage(message: ReceivedMessage): EventRecord {
  return { topic: message.topic, qos: message.qos, retain: message.retain, payload: message.payload.toString('utf8') };
}

/** How a batcher cuts what one socket read brings. */
export interface Batching {
  /** Records in a batch, at most: a read with more is split. */
  maxBatch: number;
  /** Whether the reader's next message waits for one turn of the event loop after each full batch. */
  turnAfterBatch: boolean;
}

/**
 * For `mqtt.subscribe` (mqtt.js). mqtt.js parses a socket read (up to
 * 64 KiB: some 500 small messages) one packet at a time and hands over the
 * next only once the batcher calls back; so batches of 128 and a turn of the
 * event loop after each let downstream (a sink's socket write too) have a
 * batch before the rest of the read is parsed: without the turn, every
 * message of a large read would wait for the whole read.
 */
export const clientBatching: Batching = { maxBatch: 128, turnAfterBatch: true };

/**
 * For `mqtt.broker` (aedes). Aedes parses a whole socket read and hands its
 * messages over in parallel, without waiting for the callback of one before
 * the next: a turn between batches would not get the first batch out any
 * sooner, and smaller batches would only cost more per record (about 4x as
 * many batches). So batches of up to 1024, and no turn.
 */
export const brokerBatching: Batching = { maxBatch: 1024, turnAfterBatch: false };

/**
 * Gathers messages into batches. Messages that arrive together (one socket
 * read: mqtt.js handles its packets one after the other in process ticks,
 * before any promise job runs) leave together, in a batch emitted from a
 * microtask; a batch never holds more than the `Batching`'s `maxBatch`
 * records. Each batch's
 * ack is made by `ackFor` from the tokens of its messages (what must be
 * acknowledged to the broker); a message that cannot be decoded goes to the
 * dead-letter port holding that ack, so it is acknowledged to the broker
 * only once its dead letter is written.
 */
export class MessageBatcher<Token> {
  #ctx: NodeContext<unknown>;
  #decode: (message: ReceivedMessage) => unknown;
  #ackFor: (tokens: Token[]) => (() => void) | undefined;
  #emit: (batch: Batch) => void;
  #items: unknown[] = [];
  #failed: { message: ReceivedMessage; error: unknown }[] = [];
  #tokens: Token[] = [];
  #bytes = 0;
  #scheduled = false;
  readonly #batching: Batching;
  /** Turns waited for after full batches (see `Batching`), with the reader each calls back; cleared by `stop`. */
  readonly #turns = new Map<NodeJS.Immediate, () => void>();

  constructor(
    ctx: NodeContext<unknown>,
    settings: RecordSettings,
    batching: Batching,
    ackFor: (tokens: Token[]) => (() => void) | undefined,
    emit: (batch: Batch) => void,
  ) {
    this.#ctx = ctx;
    this.#batching = batching;
    this.#decode = recordDecoder(settings);
    this.#ackFor = ackFor;
    this.#emit = emit;
  }

  /**
   * Adds a message; `next` runs when the reader may hand over the next one:
   * at once, once downstream has room again (`ctx.ready()`), and, when this
   * message filled a batch, after one turn of the event loop if the
   * `Batching` says so.
   */
  add(message: ReceivedMessage, token: Token | undefined, next: () => void): void {
    try {
      this.#items.push(this.#decode(message));
    } catch (error) {
      this.#failed.push({ message, error });
    }
    if (token !== undefined) this.#tokens.push(token);
    this.#bytes += message.payload.length;
    if (this.#items.length + this.#failed.length >= this.#batching.maxBatch) {
      this.flush();
      if (this.#batching.turnAfterBatch) {
        const turn = setImmediate(() => {
          this.#turns.delete(turn);
          this.#whenReady(next);
        });
        this.#turns.set(turn, next);
        return;
      }
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
    this.#whenReady(next);
  }

  #whenReady(next: () => void): void {
    const wait = this.#ctx.ready();
    if (wait) wait.then(next, next);
    else next();
  }

  /**
   * The node is stopping: no turn is left waiting. A reader waiting for one
   * is handed on now (its node ignores what it reads from then on), so it
   * is left as it would be after the turn.
   */
  stop(): void {
    const waiting = [...this.#turns];
    this.#turns.clear();
    for (const [turn, next] of waiting) {
      clearImmediate(turn);
      this.#whenReady(next);
    }
  }

  /** Emits what has been gathered. */
  flush(): void {
    this.#scheduled = false;
    const items = this.#items;
    const failed = this.#failed;
    if (items.length === 0 && failed.length === 0) return;
    const tokens = this.#tokens;
    this.#items = [];
    this.#failed = [];
    this.#tokens = [];
    this.#ctx.metrics.bytes(this.#bytes);
    this.#bytes = 0;
    // The broker is acknowledged once the records are settled (done, or folded
    // into a window's state): holding QoS 1/2 acks until a window closes would
    // fill the broker's in-flight window and stop delivery for good.
    const acknowledge = tokens.length > 0 ? this.#ackFor(tokens) : undefined;
    let acknowledged = false;
    const once = acknowledge
      ? () => {
          if (acknowledged) return;
          acknowledged = true;
          acknowledge();
        }
      : undefined;
    const ack = this.#ctx.newAck(once, once);
    for (const { message, error } of failed) this.#ctx.fail(failedMessage(message), error, ack);
    if (items.length > 0) this.#emit({ items, ack });
    else ack.release();
  }
}
