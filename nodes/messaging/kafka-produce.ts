import { Observable } from 'rxjs';
import { backoffDelay, bytesBuffer, compileExpression, defineOperator, duration, expression, size, sleep, toPlain, z, type TraceCarrier, type BytesItem, type Batch, type CompiledExpression, type NodeContext, type NodeFunction } from '../../runtime/api.ts';
import { clientReason, describeBrokers, openProducer, type KafkaProducer, type OutgoingMessage } from '../../native/kafka/client.ts';
import { screenOversized, writeIsolating, type IsolatingProgress } from '../../native/kafka/refusals.ts';
import { packMessages } from './kafka/packing.ts';
import { refusalHandler, type RecordTag } from './kafka/refused-records.ts';
import { brokersSetting, topicName } from './kafka/records.ts';
import { offsetPairing } from './kafka/transactions.ts';
import { writePipeline } from './kafka/write-pipeline.ts';

const settings = z
  .object({
    brokers: brokersSetting(),
    topic: topicName().meta({ description: 'The topic to write to.', examples: ['stats'] }),
    key: expression().optional().meta({ description: 'CEL expression over the record giving the message key (records with one key go to one partition, in order); absent or null means no key. Over Bytes items it sees their `meta`.', examples: ['device'] }),
    headers: z.record(z.string().min(1), expression()).optional().meta({ description: 'Header name to a CEL expression over the record giving its value (text; null leaves the header out).', examples: [{ source: '"ami-streams"', device: 'device' }] }),
    partition: z.number().int().nonnegative().optional().meta({ description: 'Write every record to this partition instead of choosing one by key.', examples: [0] }),
    compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none').meta({ description: 'Compression of record batches: `none`, `gzip`, `snappy`, `lz4` or `zstd`.' }),
    acks: z.enum(['all', 'leader', 'none']).default('all').meta({ description: 'Which replicas must have a batch before the broker acknowledges it: `all` in-sync replicas, the `leader` only, or `none` (fire and forget: a batch is acknowledged as soon as it is sent).' }),
    idempotent: z.boolean().default(true).meta({ description: 'The idempotent producer: the broker drops the copies a retry would otherwise write. Needs `acks: all`.' }),
    exactly_once: z.boolean().default(false).meta({ description: 'Write in transactions that also commit the offsets of the upstream `kafka.consume` of consumer group `group`: Kafka to Kafka exactly once for readers with `read_committed`. Needs `transactional_id` and `group`.' }),
    transactional_id: z.string().min(1).optional().meta({ description: 'With `exactly_once`, the producer\'s transactional id: stable across restarts of this pipeline (so a restarted producer fences the old one and aborts its open transaction) and unique among running copies.', examples: ['rollup-${env:HOSTNAME}'] }),
    group: z.string().min(1).optional().meta({ description: 'With `exactly_once`, the consumer group of the upstream `kafka.consume` whose offsets the transactions commit.', examples: ['rollup'] }),
    commit_interval: duration().default(100).meta({ description: 'With `exactly_once`, how long a transaction stays open at most before it is committed with the offsets acknowledged so far.', examples: ['100ms', '1s'] }),
    max_in_flight: z.number().int().min(1).max(16).default(1).meta({ description: 'Write requests out at once, at most. While they are, the batches that arrive are gathered into the next request. With 1 (the default) a partition\'s records are written in order even when a request fails and is retried; with more, a retried request can land after a later one, and so can the second of the requests a large write is cut into.', examples: [1, 4] }),
    linger: duration().default(0).meta({ description: 'How long a request waits for more batches, from its first, before it is sent: more records per request for fewer requests, at the cost of that much latency. 0 sends a request as soon as fewer than `max_in_flight` are out.', examples: ['0ms', '5ms'] }),
    pack_bytes: size().default(0).meta({ description: 'Pack several records into one Kafka message of at most this many bytes (0, the default: one record per message). Records are grouped by the partition each would go to alone (by `key`, or `partition`), so a key\'s records stay in its partition, in order; a packed message carries the header `ami-streams-packed` (its record count) and no key, and only a `kafka.consume` with `unpack: true` reads its records back; a record larger than `pack_bytes` goes alone as it is (no header, its key kept), so packing never makes a message bigger than the record would be unpacked. The engine\'s own edges between hosts pack (64KiB): the Kafka client\'s cost is per message, so packing cuts the CPU a record costs on both hosts.', examples: ['64KiB'] }),
    batch_bytes: size().default(64 * 1024).meta({ description: 'A request holding this many bytes (keys and values) is sent without lingering, and the node takes no more input until it has been: with `max_in_flight` it bounds what the node holds. Whatever it is, a write is sent as requests of at most 512 KiB, one after the other (a record larger than that alone), as the broker refuses a partition\'s batch above its `message.max.bytes` (1 MiB by default): a batch of several keyframes is written, not retried for ever. Larger requests cost the client more CPU a record (its encoding makes a few small buffers per record and joins them all; at 512KiB a record cost 13-24 % more than at 64KiB in bench/workers-w1.ts and bench/kafka-hop.ts).', examples: ['64KiB', '256KiB'] }),
  })
  .superRefine(function checkProduceSettings(value, ctx) {
    if (value.idempotent && value.acks !== 'all') {
      ctx.addIssue({ code: 'custom', path: ['idempotent'], message: 'the idempotent producer needs `acks: all` (or set `idempotent: false`)' });
    }
    if (value.batch_bytes < 1) ctx.addIssue({ code: 'custom', path: ['batch_bytes'], message: '`batch_bytes` must be at least 1 byte' });
    if (value.exactly_once) {
      if (!value.transactional_id) ctx.addIssue({ code: 'custom', path: ['transactional_id'], message: '`exactly_once` needs a `transactional_id`' });
      if (!value.group) ctx.addIssue({ code: 'custom', path: ['group'], message: '`exactly_once` needs the `group` of the upstream `kafka.consume`' });
      if (value.acks !== 'all') ctx.addIssue({ code: 'custom', path: ['acks'], message: '`exactly_once` needs `acks: all`' });
    }
  });

type ProduceSettings = z.output<typeof settings>;

function isBytes(item: unknown): item is BytesItem {
  const bytes = item as BytesItem;
  return bytes !== null && typeof bytes === 'object' && (typeof bytes.text === 'string' || Buffer.isBuffer(bytes.data));
}

function textOf(value: unknown): string | undefined {
  const plain = toPlain(value);
  if (plain === null || plain === undefined) return undefined;
  return typeof plain === 'string' ? plain : JSON.stringify(plain);
}

/** A batch's records as messages, and their bytes (keys and values). */
interface Messages {
  messages: OutgoingMessage[];
  bytes: number;
}

/** Turns a batch's records into messages; a record whose key or header expression fails goes to the dead-letter port. */
function messageEncoder(ctx: NodeContext<ProduceSettings>): (batch: Batch) => Messages {
  const { topic, partition } = ctx.settings;
  const key: CompiledExpression | undefined = ctx.settings.key ? compileExpression(ctx.settings.key) : undefined;
  const headers = Object.entries(ctx.settings.headers ?? {}).map(([name, text]) => [Buffer.from(name), compileExpression(text)] as const);
  return function encodeMessages(batch) {
    const messages: OutgoingMessage[] = [];
    let bytes = 0;
    for (const item of batch.items) {
      try {
        const bytesItem = isBytes(item);
        const fields = (bytesItem ? (item.meta ?? {}) : item) as Record<string, unknown>;
        const value = bytesItem ? bytesBuffer(item) : Buffer.from(JSON.stringify(item));
        // The tag names the record, for the dead letters when the broker refuses it for its size.
        const message: OutgoingMessage = { topic, value, tag: { item, ack: batch.ack } satisfies RecordTag };
        if (key) {
          const text = textOf(key(fields));
          if (text !== undefined) {
            message.key = Buffer.from(text);
            bytes += message.key.length;
          }
        }
        if (headers.length > 0) {
          const map = new Map<Buffer, Buffer>();
          for (const [name, expr] of headers) {
            const text = textOf(expr(fields));
            if (text !== undefined) map.set(name, Buffer.from(text));
          }
          message.headers = map;
        }
        if (partition !== undefined) message.partition = partition;
        bytes += value.length;
        messages.push(message);
      } catch (error) {
        ctx.fail(item, error, batch.ack);
      }
    }
    ctx.metrics.bytes(bytes);
    return { messages, bytes };
  };
}

const retryMaxMs = 10_000;

/** Puts the producer span's W3C context in every message's headers, so the consumer on another host continues the trace. */
function addTraceHeaders(messages: OutgoingMessage[], carrier: TraceCarrier): void {
  const entries = Object.entries(carrier).map(([name, value]) => [Buffer.from(name), Buffer.from(value)] as const);
  for (const message of messages) {
    message.headers ??= new Map();
    for (const [name, value] of entries) message.headers.set(name, value);
  }
}

/** The span of one write of a sampled batch (kind PRODUCER), its context already in the messages' headers. */
function producerSpan(ctx: NodeContext<ProduceSettings>, batch: Batch, messages: OutgoingMessage[]) {
  const span = ctx.tracing.start(batch.trace, `${ctx.settings.topic} publish`, 'producer', { 'messaging.system': 'kafka', 'messaging.operation.type': 'send', 'messaging.destination.name': ctx.settings.topic, 'messaging.batch.message_count': messages.length });
  if (span) addTraceHeaders(messages, span.headers());
  return span;
}

/** Runs `stop` when the node is unsubscribed before its input ended (a failure or a forced stop). */
function onHardStop(node: NodeFunction, stop: () => void): NodeFunction {
  return function kafkaProduceNode(input) {
    return new Observable<Batch>((subscriber) => {
      let ended = false;
      const subscription = node(input).subscribe({
        next: (batch) => subscriber.next(batch),
        error(error: unknown) {
          ended = true;
          subscriber.error(error);
        },
        complete() {
          ended = true;
          subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        if (!ended) stop();
      };
    });
  };
}

/**
 * `kafka.produce`: records to a Kafka topic, each batch acknowledged once
 * the broker has it; optionally exactly once from Kafka to Kafka.
 */
export default defineOperator({
  name: 'kafka.produce',
  summary: 'Write records to a Kafka topic.',
  doc: 'Writes each record to `topic` on `brokers`: Bytes as their bytes, events as JSON. `key` and `headers` are CEL expressions over the record; records with one key land in one partition, in order, unless `partition` fixes one. Batches are compressed with `compression` (`none`, `gzip`, `snappy`, `lz4` or `zstd`). A batch is acknowledged upstream (so its source may commit) only once the broker has acknowledged it per `acks`; the idempotent producer (the default) keeps a retry of a request from writing its records twice (a write cut into several requests that fails after some of them were taken goes on from the first request not taken, on a new producer; the request that failed is written again whole, so those of its records the broker had taken are written twice: at least once). Writes are pipelined (except with `exactly_once`, which writes one batch at a time): while a request is out (up to `max_in_flight`, default 1), the batches that arrive are gathered into the next one, up to `batch_bytes`, so small batches do not cost a round trip each; `linger` makes a request wait that long for more. Each record keeps the trace context of its own batch in its headers, whatever request carries it. When the brokers cannot be reached (at start, or while one restarts) the node logs an error naming them and tries the same batch again with backoff, holding the records back meanwhile: nothing is lost and the graph keeps running. A record the broker refuses for good for its size (MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE: larger than the topic\'s `max.message.bytes`, the broker\'s `message.max.bytes` by default, 1 MiB) is not retried: the rest of the write goes on, each partition\'s records in order and once, and the record goes to the node\'s dead letters (`dlq`) with its size, the topic and its limit, counted in `streams_kafka_records_refused_total{reason}` and logged once per cause, never with its payload; a refused pack (`pack_bytes`) is written in its place as its records (in requests under the topic\'s limit, halved when refused, so that only the records refused alone are dead-lettered). On an edge carrying media between hosts, a refused video keyframe is also counted (`streams_kafka_keyframes_refused_total`) and logged once per stream: the consuming host sees a gap in that stream until its next keyframe. With `exactly_once: true`, records are written in transactions under `transactional_id`, and each transaction also commits the acknowledged offsets of the upstream `kafka.consume` of consumer group `group`, which then commits nothing itself: a reader with `read_committed` sees every input\'s outputs exactly once, across crashes and restarts (a crash aborts the open transaction; the restarted pipeline fences the old producer and reads again from the offsets of the last committed transaction). A transaction is committed every `commit_interval`, on a rebalance and when the node stops. Exactly-once needs this node to be the only sink of the records it writes (a second sink of the same records can hold their offsets back past a commit, and a crash then writes them twice) and covers the consumers in this process; operator state kept outside the process (a window with a Redis or PostgreSQL store) is not rolled back with an aborted transaction. When exactly-once cannot be kept in the running process — a transaction fails (the brokers stay unreachable longer than about a minute of retries, or another producer with the same `transactional_id` fenced this one), the consumer fails, or the group moves a partition away while its records are still in the graph (a member joining mid-stream) — the node aborts the open transaction, stops writing and holds back its input (so nothing upstream commits), and logs an error: restart the process, which resumes from the last committed transaction. So use it with a stable group (one member, or members started together). Inside a transaction a refusal cannot be isolated after the fact, so with `exactly_once` (and `compression: none`) a record larger than the topic\'s `max.message.bytes` (read at the first write; while it cannot be read, as for a topic that first write makes, it is read again at a write every 10 s and nothing is screened meanwhile) is dead-lettered before it is sent and requests are cut under that limit; one the broker refuses anyway (compressed, or within a hundred bytes of the limit) halts the node as a failed transaction does.',
  inputs: { in: { type: 'Any', doc: 'Bytes or events to write.' } },
  outputs: {},
  settings,
  // Takes the next batch in while a request is out; acknowledges each once written.
  paced: true,
  example: { brokers: ['127.0.0.1:9092'], topic: 'stats', key: 'device', compression: 'lz4' },
  create(ctx) {
    const options = ctx.settings;
    const brokers = describeBrokers(options.brokers);
    const encode = messageEncoder(ctx);
    return options.exactly_once ? transactionalSink(ctx, brokers, encode) : plainSink(ctx, brokers, encode);
  },
});

/** Packs a request's messages per `pack_bytes` (see `kafka/packing.ts`), or hands them on as they are when it is 0. */
interface Packer {
  (producer: KafkaProducer, messages: readonly OutgoingMessage[], spread: number): Promise<readonly OutgoingMessage[]>;
  /** The turn of a request's keyless records over the partitions: take it once per request, before its retries. */
  spread(): number;
}

function packer(ctx: NodeContext<ProduceSettings>): Packer {
  const { pack_bytes: maxBytes, topic } = ctx.settings;
  // Per client: a fresh client (after a failure) reads the topic's partition count again.
  const counts = new WeakMap<KafkaProducer, number>();
  let turn = 0;
  const pack = async function packRequest(producer: KafkaProducer, messages: readonly OutgoingMessage[], spread: number): Promise<readonly OutgoingMessage[]> {
    if (maxBytes === 0 || messages.length === 0) return messages;
    let partitions = counts.get(producer);
    if (partitions === undefined) {
      partitions = await producer.partitions(topic);
      counts.set(producer, partitions);
    }
    return packMessages(messages, { partitions, maxBytes, spread });
  } as Packer;
  pack.spread = () => turn++;
  return pack;
}

function producerFor(ctx: NodeContext<ProduceSettings>, retries?: number): KafkaProducer {
  const options = ctx.settings;
  return openProducer({
    brokers: options.brokers,
    clientId: `ami-streams-${ctx.node}`,
    acks: options.acks,
    compression: options.compression,
    idempotent: options.idempotent,
    transactionalId: options.exactly_once ? options.transactional_id : undefined,
    retries,
  });
}

/**
 * At-least-once: batches gathered into requests (see `write-pipeline.ts`),
 * each request written and its batches acknowledged once the broker has it,
 * retried until it does.
 */
function plainSink(ctx: NodeContext<ProduceSettings>, brokers: string, encode: (batch: Batch) => Messages) {
  let producer: KafkaProducer | undefined;
  const { max_in_flight: maxInFlight, linger: lingerMs, batch_bytes: batchBytes } = ctx.settings;
  const pack = packer(ctx);
  const refusals = refusalHandler(ctx);
  /** The turn of keyless records over the partitions (see `writeIsolating`). */
  const turns = new Map<string, number>();
  const sink = writePipeline({
    ctx,
    settings: { maxInFlight, lingerMs, batchBytes },
    encode(batch) {
      const { messages, bytes } = encode(batch);
      // Each batch's messages carry its own span's context: a request mixes several traces.
      return { messages, bytes, span: messages.length > 0 ? producerSpan(ctx, batch, messages) : undefined };
    },
    async write(messages) {
      const spread = pack.spread();
      // Packed once: an attempt after a failure goes on from the first request not written.
      let packed: readonly OutgoingMessage[] | undefined;
      const progress: IsolatingProgress = { done: 0, refused: [] };
      for (let attempt = 1; ; attempt++) {
        const used = (producer ??= producerFor(ctx));
        try {
          packed ??= await pack(used, messages, spread);
          await writeIsolating(used, packed, { turns, instead: refusals.instead, requestBytes: refusals.requestBytes(), progress });
          await refusals.deadLetter(progress.refused);
          if (attempt > 1) ctx.log.info({ brokers, topic: ctx.settings.topic, attempts: attempt }, `${ctx.label}: writing to Kafka again`);
          return;
        } catch (error) {
          if (ctx.signal.aborted) throw error;
          const delay = backoffDelay(attempt - 1, 250, retryMaxMs);
          if (attempt <= 3 || attempt % 10 === 0) {
            ctx.log.error({ brokers, topic: ctx.settings.topic, attempt, retryInMs: delay, error: clientReason(error) }, `${ctx.label}: cannot write to Kafka at ${brokers} (topic \`${ctx.settings.topic}\`): ${clientReason(error)}; retrying`);
          }
          // A fresh client after a failure: the old one may hold broken connections.
          // Requests still out on it fail too and are written again on the new one.
          if (producer === used) producer = undefined;
          void used.close().catch(() => undefined);
          // Abortable: a stop during the wait ends it at once instead of after the backoff.
          if (!(await sleep(delay, ctx.signal, ctx))) throw error;
        }
      }
    },
    async finish() {
      await producer?.close();
    },
  });
  return onHardStop(sink, () => void producer?.close().catch(() => undefined));
}

/**
 * Exactly-once: batches written inside an open transaction, acknowledged
 * once written there; the transaction commits with the upstream consumer's
 * acknowledged offsets. Writes and commits run one at a time.
 */
function transactionalSink(ctx: NodeContext<ProduceSettings>, brokers: string, encode: (batch: Batch) => Messages) {
  const group = ctx.settings.group!;
  const pairing = offsetPairing(ctx);
  // A broker restart takes seconds: the client's retries ride it out within one transaction.
  const producer = producerFor(ctx, 40);
  const pack = packer(ctx);
  const refusals = refusalHandler(ctx);
  let open = false;
  let halted: Error | undefined;
  /** Stopped hard: like a crash, the open transaction is left for the next producer with this id to abort. */
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  let cancelCommit: (() => void) | undefined;

  /** Runs transactional work after the work before it; a failure halts the node. */
  function serial(work: () => Promise<void>): Promise<void> {
    const next = chain.then(async function transactionalStep() {
      if (halted || stopped) return;
      try {
        await work();
      } catch (error) {
        await halt(error);
      }
    });
    chain = next;
    return next;
  }

  async function halt(error: unknown): Promise<void> {
    halted = error instanceof Error ? error : new Error(String(error));
    // The claim stays: the consumer must not commit offsets whose records were in the aborted transaction.
    cancelCommit?.();
    ctx.log.error(
      { brokers, topic: ctx.settings.topic, group, transactional_id: ctx.settings.transactional_id, error: clientReason(error) },
      `${ctx.label}: exactly-once cannot go on (${clientReason(error)}); the open transaction is aborted and the node stops writing: restart the process to resume from the last committed transaction`,
    );
    if (open) await producer.abortTransaction().catch(() => undefined);
    open = false;
  }

  function commitTransaction(): Promise<void> {
    cancelCommit?.();
    cancelCommit = undefined;
    return serial(async function commitWithOffsets() {
      const source = pairing.offsetSource(group);
      const offsets = source?.acknowledged() ?? [];
      if (!open && offsets.length === 0) return;
      const member = offsets.length > 0 ? source?.member() : undefined;
      if (offsets.length > 0 && !member) throw new Error(`the consumer of group \`${group}\` (node \`${source?.node}\`) has no group membership to commit with`);
      if (!open) {
        await producer.begin();
        open = true;
      }
      await producer.commitTransaction(member ? { member, offsets } : undefined);
      open = false;
      if (offsets.length > 0) source!.committed(offsets);
    });
  }

  function scheduleCommit(): void {
    if (halted || stopped) return;
    cancelCommit ??= ctx.schedule(ctx.settings.commit_interval, () => {
      cancelCommit = undefined;
      void commitTransaction();
    });
  }

  const releaseClaim = pairing.claimOffsets(group, {
    node: ctx.node,
    acknowledged: scheduleCommit,
    revoking: () => void commitTransaction(),
    flushed: () => commitTransaction(),
    sourceFailed(reason) {
      void serial(async function sourceLost() {
        throw new Error(reason);
      });
    },
  });

  // Not `sinkBatches`: a batch is acknowledged inside its transactional step, so
  // that a commit queued after it sees the offsets the acknowledgement frees.
  const sink: NodeFunction = function kafkaTransactionalSink(input) {
    return new Observable<Batch>((subscriber) => {
      const subscription = input.subscribe({
        next(batch) {
          const { messages } = encode(batch);
          const span = messages.length > 0 ? producerSpan(ctx, batch, messages) : undefined;
          void serial(async function sendInTransaction() {
            if (messages.length > 0) {
              // Refused before it is sent: a refusal would fail the transaction (see `screenOversized`).
              const limit = await refusals.limit();
              const { fitting, refused } = limit === undefined || ctx.settings.compression !== 'none' ? { fitting: messages, refused: [] } : screenOversized(messages, limit);
              await refusals.deadLetter(refused);
              // Begun only for records to send: a transaction left empty cannot be committed (INVALID_TXN_STATE).
              if (fitting.length > 0) {
                if (!open) {
                  await producer.begin();
                  open = true;
                }
                await producer.send(await pack(producer, fitting, pack.spread()), refusals.requestBytes()).catch((error: unknown) => {
                  span?.end(error);
                  throw error;
                });
              }
              span?.end();
            }
            // Taken in first: this sink writes one batch at a time.
            ctx.batchDone();
            batch.ack.release();
            scheduleCommit();
          });
          // Halted or stopped: the step did not run and the batch stays unacknowledged,
          // holding back everything upstream.
        },
        error: (error: unknown) => subscriber.error(error),
        complete() {
          void (async function commitAndClose() {
            await commitTransaction();
            if (!halted) releaseClaim();
            await producer.close().catch(() => undefined);
            subscriber.complete();
          })();
        },
      });
      return () => subscription.unsubscribe();
    });
  };
  return onHardStop(sink, function stopHard() {
    // The claim stays, as after a crash: the consumer must not commit offsets whose
    // records are in the open transaction. A restarted node takes the claim over.
    stopped = true;
    cancelCommit?.();
    void producer.close().catch(() => undefined);
  });
}
