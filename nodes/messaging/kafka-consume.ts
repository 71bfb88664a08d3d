import type { Subscriber } from 'rxjs';
import { defineOperator, duration, NodeError, partitionEvents, partitionName, size, z, type Batch, type BytesItem, type EventRecord, type NodeContext, type TraceCarrier, type TraceContext } from '../../runtime/api.ts';
import { clientReason, closingInBackground, describeBrokers, openConsumer, type KafkaConsumer, type KafkaMessage } from '../../native/kafka/client.ts';
import { OffsetLedger } from './kafka/offsets.ts';
import { packedCount, unpackValues } from './kafka/packing.ts';
import { brokersSetting, bytesRecord, failedMessage, jsonRecord, topicName } from './kafka/records.ts';
import { offsetPairing, type OffsetPairing } from './kafka/transactions.ts';
import { sessionSource, type SourceSession } from './source-session.ts';

const settings = z.object({
  brokers: brokersSetting(),
  topics: z.array(topicName()).min(1).meta({ description: 'Topics to read.', examples: [['readings']] }),
  group: z.string().min(1).meta({ description: 'The consumer group: members of a group share the topics\' partitions, and the group\'s committed offsets say where reading resumes.', examples: ['rollup'] }),
  from: z
    .enum(['committed', 'earliest', 'latest'])
    .default('committed')
    .meta({ description: 'Where to start reading a partition: `committed` resumes from the group\'s committed offset (from the beginning where the group has none); `earliest` reads from the beginning and `latest` only what is written from now on, whatever the group committed.' }),
  format: z.enum(['bytes', 'json']).default('bytes').meta({ description: '`bytes`: Bytes items `{data, meta}`; `json`: events parsed from each value, which must be a JSON object (anything else goes to the dead-letter port).' }),
  kafka_field: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'With `format: json`, the field that receives the message\'s `{topic, partition, offset, key, headers, timestamp}`.', examples: ['_kafka'] }),
  unpack: z.boolean().default(false).meta({ description: 'Read back the records of packed messages (written by a `kafka.produce` with `pack_bytes`, marked by the header `ami-streams-packed`): each record becomes an item of its own, with the message\'s facts (its offset shared by all of them). The message\'s offset is committed once every record of it is acknowledged. Messages without the header are one record each, as always; with `unpack: false` a packed message is one item (its raw bytes, or with `format: json` a dead letter).' }),
  isolation: z
    .enum(['read_committed', 'read_uncommitted'])
    .default('read_committed')
    .meta({ description: '`read_committed` skips records of aborted and open transactions; `read_uncommitted` reads them all.' }),
  commit_interval: duration().default(1000).meta({ description: 'How often acknowledged offsets are committed (also on a rebalance and when the node stops).', examples: ['1s', '200ms'] }),
  max_partition_bytes: size().default(1024 * 1024).meta({ description: 'Bytes fetched from one partition per request at most (the broker still returns a whole record batch larger than that); smaller means smaller batches and less memory per partition.', examples: ['1MiB', '64KiB'] }),
  session_timeout: duration().default(10_000).meta({ description: 'How long the group waits for a silent member before giving its partitions to the others; a member that has heard nothing from the group for that long holds its records and commits until it has (see the doc).', examples: ['10s'] }),
});

type ConsumeSettings = z.output<typeof settings>;

const drainWaitMs = 30_000;

/**
 * The W3C trace contexts of a batch's messages, each once, in order: a
 * fetched batch may mix messages of several producers' batches, each with
 * its own trace. The consumer span continues the first sampled one and
 * links to the others.
 */
function traceCarriers(messages: readonly KafkaMessage[]): TraceCarrier[] | undefined {
  let carriers: TraceCarrier[] | undefined;
  let last: string | undefined;
  for (const message of messages) {
    if (message.headers.size === 0) continue;
    let carrier: TraceCarrier | undefined;
    for (const [name, value] of message.headers) {
      const key = name.toString();
      if (key === 'traceparent') (carrier ??= {}).traceparent = value?.toString();
      else if (key === 'tracestate') (carrier ??= {}).tracestate = value?.toString();
    }
    // The messages of one producer batch are next to each other and share one context.
    if (!carrier?.traceparent || carrier.traceparent === last) continue;
    last = carrier.traceparent;
    (carriers ??= []).push(carrier);
  }
  return carriers;
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * `kafka.consume`: records from Kafka topics as a member of a consumer
 * group, with offsets committed only for what the graph has acknowledged.
 */
export default defineOperator({
  name: 'kafka.consume',
  summary: 'Read records from Kafka topics as a member of a consumer group.',
  doc: 'Joins consumer `group` on `brokers` and reads `topics`; the group spreads the partitions over its members (several nodes or processes with one `group` share the work, and a member that leaves or fails has its partitions moved to the others). Each fetched run of one partition becomes one batch: by default Bytes items `{data, meta: {topic, partition, offset, key, headers, timestamp}}` (key and header values as UTF-8 text, timestamp in epoch ms), or with `format: json` the events parsed from the values, with those facts under `kafka_field` when set; a value that is not a JSON object goes to the dead-letter port. Offsets are committed only for records the graph has acknowledged: per partition, the highest offset below which every record has been acknowledged by every sink downstream, every `commit_interval`, when the group rebalances and when the node stops; so after a crash, a restart or a rebalance, records not yet acknowledged are read again (at least once; duplicates are possible, losses are not). While downstream is full the node stops fetching. `from` picks where a partition starts: the group\'s committed offset (`committed`, the default), its beginning (`earliest`) or its end (`latest`); use `committed` for groups that share work or resume. With a `kafka.produce` downstream that has `exactly_once: true` and the same `group`, the offsets are committed inside that producer\'s transactions instead (see `kafka.produce`). `isolation: read_committed` (the default) hides records of transactions not committed. A member cut off from the group (a network cut, a paused process) does not go on as if it still owned its partitions once the group may have given them away: shortly before `session_timeout` has passed since the group coordinator last heard from it (timed from when its last answered heartbeat was sent, on a monotonic clock looked at whenever it fetches, takes a fetch\'s answer, hands on or commits and whenever the coordinator answers it, with no timer: the doubt begins at the first of those past that time, so a member cut off notices as its link comes back, before it takes any answer), it logs that its membership is in doubt, stops fetching, hands on no record it had fetched and commits nothing; when the coordinator answers again (or it has rejoined), it reads the group\'s committed offsets and resumes each partition it still owns at the later of that offset and its first record not handed on, never committing below the group\'s offset, and logs where it resumed. So it does not hand on records of partitions the group may have given to another member, and none is skipped; records it handed on before the doubt but had not committed are read again by the partition\'s new owner (at least once). Brokers that cannot be reached fail the node with a message naming them; it restarts with backoff and the graph keeps running. A drain stops fetching, lets what was read reach the sinks, commits it, and leaves the group.',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Records as Bytes `{data, meta}`; events with `format: json`.' } },
  settings,
  example: { brokers: ['127.0.0.1:9092'], topics: ['readings'], group: 'rollup', format: 'json' },
  infer(settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    return sessionSource(ctx, (out) => new ConsumeSession(ctx, out));
  },
});

/**
 * One run of a `kafka.consume` node: a group member whose records go out
 * with acks, whose acknowledged offsets are committed by itself or, under
 * exactly-once, by the transactional producer that claims its group.
 */
class ConsumeSession implements SourceSession {
  readonly #ctx: NodeContext<ConsumeSettings>;
  readonly #out: Subscriber<Batch>;
  readonly #pairing: OffsetPairing;
  readonly #brokers: string;
  readonly #ledger: OffsetLedger;
  readonly #withdraw: () => void;
  #opening: Promise<KafkaConsumer | undefined> = Promise.resolve(undefined);
  #consumer: KafkaConsumer | undefined;
  #stopping = false;
  #completed = false;
  #paused = false;
  #cancelCommit: (() => void) | undefined;
  #committing: Promise<void> = Promise.resolve();
  /** No commit is under way: the next one starts at once, not after a turn of the event loop. */
  #commitIdle = true;

  constructor(ctx: NodeContext<ConsumeSettings>, out: Subscriber<Batch>) {
    this.#ctx = ctx;
    this.#out = out;
    this.#pairing = offsetPairing(ctx);
    this.#brokers = describeBrokers(ctx.settings.brokers);
    const group = ctx.settings.group;
    this.#ledger = new OffsetLedger(() => {
      const claim = this.#pairing.offsetClaim(group);
      if (claim) claim.acknowledged();
      else this.#scheduleCommit();
    });
    this.#withdraw = this.#pairing.offerOffsets(group, {
      node: ctx.node,
      member: () => this.#consumer?.member(),
      acknowledged: () => this.#ledger.committable(),
      committed: (offsets) => this.#ledger.committed(offsets),
    });
  }

  get #claim() {
    return this.#pairing.offsetClaim(this.#ctx.settings.group);
  }

  async start(): Promise<void> {
    const { settings: options, label, node } = this.#ctx;
    const ledger = this.#ledger;
    const where = `group \`${options.group}\`, topics ${options.topics.map((t) => `\`${t}\``).join(', ')}`;
    this.#opening = openConsumer({
      brokers: options.brokers,
      clientId: `ami-streams-${node}`,
      group: options.group,
      topics: options.topics,
      from: options.from,
      isolation: options.isolation,
      sessionTimeoutMs: options.session_timeout,
      maxPartitionBytes: options.max_partition_bytes,
      heartbeatIntervalMs: Math.max(100, Math.min(3000, Math.floor(options.session_timeout / 3))),
      handlers: {
        messages: (topic, partition, messages) => this.#emit(topic, partition, messages),
        revoking: () => {
          // Keyed nodes downstream checkpoint the partitions that may go, before they move.
          partitionEvents(this.#ctx).revoking(options.topics);
          const claim = this.#claim;
          if (claim) claim.revoking();
          // Called as the client starts to rejoin: a commit started now is sent ahead of the
          // rejoin on the coordinator's connection and counts under the generation that ends;
          // sent after it, the coordinator refuses it and the member that takes a partition
          // reads what this one acknowledged again.
          else void this.#commit();
        },
        assigned: (partitions) => {
          const claim = this.#claim;
          const lost = claim ? ledger.busyOutside(partitions) : [];
          if (lost.length > 0) claim!.sourceFailed(`the group took partitions ${lost.join(', ')} from node \`${node}\` while their records were in flight`);
          ledger.keep(partitions);
          partitionEvents(this.#ctx).assigned(options.topics, partitions);
          this.#ctx.log.info({ group: options.group, partitions: partitions.map((p) => `${p.topic}:${p.partition}`) }, `${label}: partitions assigned`);
        },
        doubt: (event) => {
          const group = options.group;
          if (event.phase === 'begin') {
            this.#ctx.log.warn({ group, silent_ms: event.silentMs }, `${label}: membership of group \`${group}\` in doubt: not confirmed by the coordinator for ${event.silentMs} ms; fetching paused, records and commits refused until it does`);
            return;
          }
          const resume = event.resume.map((p) => `${p.topic}:${p.partition}@${p.offset}`);
          this.#ctx.log.info({ group, doubt_ms: event.durationMs, refused: event.refused, rejoined: event.rejoined, resume }, `${label}: membership of group \`${group}\` confirmed after ${event.durationMs} ms in doubt${event.rejoined ? ' (rejoined)' : ''}; ${event.refused} records refused, resuming at ${resume.join(', ') || 'the committed offsets'}`);
        },
        failed: (error) => {
          if (this.#stopping) return;
          this.#stopping = true;
          this.#out.error(new NodeError('kafka_consumer_failed', `${label}: the consumer (${where}) on ${this.#brokers} failed: ${clientReason(error)}`, { cause: error }));
        },
      },
    }).then(
      (opened): KafkaConsumer => {
        this.#consumer = opened;
        if (this.#paused || this.#stopping) opened.pause();
        if (!this.#stopping) this.#ctx.log.info({ brokers: this.#brokers, group: options.group, topics: options.topics, from: options.from }, `${label}: consuming`);
        return opened;
      },
      (error: unknown): undefined => {
        if (this.#stopping) return undefined;
        this.#stopping = true;
        this.#out.error(new NodeError('kafka_unreachable', `${label}: cannot consume from Kafka at ${this.#brokers} (${where}): ${clientReason(error)}`, { cause: error }));
        return undefined;
      },
    );
    await this.#opening;
  }

  drain(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#consumer?.pause();
    // A forced stop aborts and then unsubscribes at once: decide after it
    // whether this is a drain (wait for acknowledgements) or a hard stop.
    queueMicrotask(() => {
      if (this.#completed) return;
      this.#completed = true;
      this.#out.complete();
      // Commit what the graph still holds once it is acknowledged, then leave the
      // group. Not awaited by the node: a window downstream may hold
      // acknowledgements until its input ends.
      this.#closeInBackground(async () => {
        await this.#opening;
        await within(this.#ledger.whenIdle(), drainWaitMs);
        const claim = this.#claim;
        if (claim) await within(claim.flushed(), drainWaitMs);
        else await this.#commit();
      }, true);
    });
  }

  close(): void {
    this.#cancelCommit?.();
    if (this.#completed) return;
    // A failure or a forced stop: commit what is acknowledged, and leave.
    this.#stopping = true;
    this.#completed = true;
    if (!this.#ledger.idle) this.#claim?.sourceFailed(`node \`${this.#ctx.node}\` stopped with records in flight`);
    this.#closeInBackground(async () => {
      if (!this.#claim) await this.#commit();
    }, false);
  }

  /** Runs `settle`, withdraws the offsets and closes the consumer, in the background; a failure is logged when `report`. */
  #closeInBackground(settle: () => Promise<void>, report: boolean): void {
    const ctx = this.#ctx;
    closingInBackground(
      (async () => {
        await settle();
        this.#withdraw();
        await (await this.#opening)?.close();
      })().catch((error: unknown) => {
        if (report) ctx.log.warn({ brokers: this.#brokers, error: clientReason(error) }, `${ctx.label}: closing the consumer failed`);
      }),
    );
  }

  #scheduleCommit(): void {
    if (this.#stopping) return;
    this.#cancelCommit ??= this.#ctx.schedule(this.#ctx.settings.commit_interval, () => {
      this.#cancelCommit = undefined;
      void this.#commit();
    });
  }

  /**
   * Commits what is acknowledged, unless a transactional producer does it.
   * One commit at a time; when none is under way the request is sent before
   * this returns (see `revoking`).
   */
  #commit(): Promise<void> {
    const next = this.#commitIdle ? this.#commitAcknowledged() : this.#committing.then(() => this.#commitAcknowledged());
    this.#commitIdle = false;
    const settled: Promise<void> = next.finally(() => {
      if (this.#committing === settled) this.#commitIdle = true;
    });
    this.#committing = settled;
    return settled;
  }

  async #commitAcknowledged(): Promise<void> {
    const current = this.#consumer;
    if (!current || this.#claim) return;
    const offsets = this.#ledger.committable();
    if (offsets.length === 0) return;
    try {
      // Refused while the membership is in doubt: the offsets wait for the next acknowledgement after it.
      if (await current.commit(offsets)) this.#ledger.committed(offsets);
    } catch (error) {
      const { settings, label } = this.#ctx;
      this.#ctx.log.warn({ brokers: this.#brokers, group: settings.group, error: clientReason(error) }, `${label}: committing offsets failed; trying again in ${settings.commit_interval} ms`);
      this.#scheduleCommit();
    }
  }

  /** Stops fetching while downstream is full. */
  #throttle(): void {
    if (this.#paused || this.#stopping) return;
    const wait = this.#ctx.ready();
    if (!wait) return;
    this.#paused = true;
    this.#consumer?.pause();
    wait.then(() => {
      this.#paused = false;
      if (!this.#stopping) this.#consumer?.resume();
    });
  }

  #emit(topic: string, partition: number, messages: KafkaMessage[]): void {
    if (this.#stopping) return;
    const ctx = this.#ctx;
    const admitted = this.#ledger.admit(topic, partition, messages);
    if (!admitted) return;
    const ack = ctx.newAck(admitted.done);
    const items: (BytesItem | EventRecord)[] = [];
    // Each record's offset, so a keyed node downstream keeps state per partition (docs/keyed-state.md).
    const offsets: number[] = [];
    let bytes = 0;
    const { format, kafka_field: field, unpack } = ctx.settings;
    /** One record's item, with the offset of the message it came in. */
    function take(message: KafkaMessage): void {
      if (format !== 'json') {
        items.push(bytesRecord(message));
        offsets.push(Number(message.offset));
        return;
      }
      try {
        items.push(jsonRecord(message, field));
        offsets.push(Number(message.offset));
      } catch (error) {
        ctx.fail(failedMessage(message), error, ack);
      }
    }
    for (const message of admitted.fresh) {
      if (message.value) bytes += message.value.length;
      const count = unpack ? packedCount(message.headers) : undefined;
      if (count === undefined) {
        take(message);
        continue;
      }
      let values: Buffer[];
      try {
        values = unpackValues(message.value, count);
      } catch (error) {
        ctx.fail(failedMessage(message), error, ack);
        continue;
      }
      // All of a message's records go out in this batch, under its one ack: the offset is
      // committed once every one of them is acknowledged, and a keyed node downstream sees
      // them with one offset, so its checkpoints cover all of them or none.
      for (const value of values) take({ ...message, value });
    }
    ctx.metrics.bytes(bytes);
    let trace: TraceContext | null | undefined;
    if (ctx.tracing.enabled) {
      const attributes = { 'messaging.system': 'kafka', 'messaging.operation.type': 'receive', 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'messaging.batch.message_count': admitted.fresh.length };
      const span = ctx.tracing.receive(traceCarriers(admitted.fresh), `${topic} receive`, 'consumer', attributes);
      span?.end();
      trace = span ? span.context : null;
    }
    if (items.length === 0) ack.release();
    else {
      const origin = { partition: partitionName(topic, partition), offsets };
      this.#out.next(trace === undefined ? { items, ack, origin } : { items, ack, origin, trace });
    }
    this.#throttle();
  }
}
