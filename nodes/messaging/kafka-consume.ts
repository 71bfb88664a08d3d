import { Observable } from 'rxjs';
import { defineOperator, duration, NodeError, size, z, type Batch, type BytesItem, type EventRecord } from '../../runtime/api.ts';
import { clientReason, closingInBackground, describeBrokers, openConsumer, type KafkaConsumer, type KafkaMessage } from '../../native/kafka/client.ts';
import { OffsetLedger } from './kafka/offsets.ts';
import { brokersSetting, bytesRecord, failedMessage, jsonRecord, topicName } from './kafka/records.ts';
import { offsetPairing } from './kafka/transactions.ts';

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
  isolation: z
    .enum(['read_committed', 'read_uncommitted'])
    .default('read_committed')
    .meta({ description: '`read_committed` skips records of aborted and open transactions; `read_uncommitted` reads them all.' }),
  commit_interval: duration().default(1000).meta({ description: 'How often acknowledged offsets are committed (also on a rebalance and when the node stops).', examples: ['1s', '200ms'] }),
  max_partition_bytes: size().default(1024 * 1024).meta({ description: 'Bytes fetched from one partition per request at most (the broker still returns a whole record batch larger than that); smaller means smaller batches and less memory per partition.', examples: ['1MiB', '64KiB'] }),
  session_timeout: duration().default(10_000).meta({ description: 'How long the group waits for a silent member before giving its partitions to the others.', examples: ['10s'] }),
});

type ConsumeSettings = z.output<typeof settings>;

const drainWaitMs = 30_000;

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
  doc: 'Joins consumer `group` on `brokers` and reads `topics`; the group spreads the partitions over its members (several nodes or processes with one `group` share the work, and a member that leaves or fails has its partitions moved to the others). Each fetched run of one partition becomes one batch: by default Bytes items `{data, meta: {topic, partition, offset, key, headers, timestamp}}` (key and header values as UTF-8 text, timestamp in epoch ms), or with `format: json` the events parsed from the values, with those facts under `kafka_field` when set; a value that is not a JSON object goes to the dead-letter port. Offsets are committed only for records the graph has acknowledged: per partition, the highest offset below which every record has been acknowledged by every sink downstream, every `commit_interval`, when the group rebalances and when the node stops; so after a crash, a restart or a rebalance, records not yet acknowledged are read again (at least once; duplicates are possible, losses are not). While downstream is full the node stops fetching. `from` picks where a partition starts: the group\'s committed offset (`committed`, the default), its beginning (`earliest`) or its end (`latest`); use `committed` for groups that share work or resume. With a `kafka.produce` downstream that has `exactly_once: true` and the same `group`, the offsets are committed inside that producer\'s transactions instead (see `kafka.produce`). `isolation: read_committed` (the default) hides records of transactions not committed. Brokers that cannot be reached fail the node with a message naming them; it restarts with backoff and the graph keeps running. A drain stops fetching, lets what was read reach the sinks, commits it, and leaves the group.',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Records as Bytes `{data, meta}`; events with `format: json`.' } },
  settings,
  example: { brokers: ['127.0.0.1:9092'], topics: ['readings'], group: 'rollup', format: 'json' },
  infer(settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    const options: ConsumeSettings = ctx.settings;
    const brokers = describeBrokers(options.brokers);
    const json = options.format === 'json';
    const pairing = offsetPairing(ctx);
    const field = options.kafka_field;
    const where = `group \`${options.group}\`, topics ${options.topics.map((t) => `\`${t}\``).join(', ')}`;
    return function kafkaConsumeNode() {
      return new Observable<Batch>((subscriber) => {
        let consumer: KafkaConsumer | undefined;
        let stopping = false;
        let completed = false;
        let paused = false;
        let cancelCommit: (() => void) | undefined;
        let committing: Promise<void> = Promise.resolve();

        const ledger = new OffsetLedger(function offsetsAdvanced() {
          const claim = pairing.offsetClaim(options.group);
          if (claim) {
            claim.acknowledged();
            return;
          }
          scheduleCommit();
        });

        function scheduleCommit(): void {
          if (stopping) return;
          cancelCommit ??= ctx.schedule(options.commit_interval, () => {
            cancelCommit = undefined;
            void commit();
          });
        }

        /** Commits what is acknowledged, unless a transactional producer does it. */
        function commit(): Promise<void> {
          committing = committing.then(async function commitAcknowledged() {
            const current = consumer;
            if (!current || pairing.offsetClaim(options.group)) return;
            const offsets = ledger.committable();
            if (offsets.length === 0) return;
            try {
              await current.commit(offsets);
              ledger.committed(offsets);
            } catch (error) {
              ctx.log.warn({ brokers, group: options.group, error: clientReason(error) }, `${ctx.label}: committing offsets failed; trying again in ${options.commit_interval} ms`);
              scheduleCommit();
            }
          });
          return committing;
        }

        const withdraw = pairing.offerOffsets(options.group, {
          node: ctx.node,
          member: () => consumer?.member(),
          acknowledged: () => ledger.committable(),
          committed: (offsets) => ledger.committed(offsets),
        });

        /** Stops fetching while downstream is full. */
        function throttle(): void {
          if (paused || stopping) return;
          const wait = ctx.ready();
          if (!wait) return;
          paused = true;
          consumer?.pause();
          wait.then(function downstreamHasRoom() {
            paused = false;
            if (!stopping) consumer?.resume();
          });
        }

        function emit(topic: string, partition: number, messages: KafkaMessage[]): void {
          if (stopping) return;
          const admitted = ledger.admit(topic, partition, messages);
          if (!admitted) return;
          const ack = ctx.newAck(admitted.done);
          const items: (BytesItem | EventRecord)[] = [];
          let bytes = 0;
          for (const message of admitted.fresh) {
            if (message.value) bytes += message.value.length;
            if (!json) {
              items.push(bytesRecord(message));
              continue;
            }
            try {
              items.push(jsonRecord(message, field));
            } catch (error) {
              ctx.fail(failedMessage(message), error, ack);
            }
          }
          ctx.metrics.bytes(bytes);
          if (items.length === 0) ack.release();
          else subscriber.next({ items, ack });
          throttle();
        }

        const onAbort = (): void => {
          if (stopping) return;
          stopping = true;
          consumer?.pause();
          // A forced stop aborts and then unsubscribes at once: decide after it
          // whether this is a drain (wait for acknowledgements) or a hard stop.
          queueMicrotask(function drainOrStop() {
            if (completed) return;
            completed = true;
            subscriber.complete();
            // Commit what the graph still holds once it is acknowledged, then leave the
            // group. Not awaited by the node: a window downstream may hold
            // acknowledgements until its input ends.
            closingInBackground(
              (async function drainConsumer() {
                await opening;
                await within(ledger.whenIdle(), drainWaitMs);
                const claim = pairing.offsetClaim(options.group);
                if (claim) await within(claim.flushed(), drainWaitMs);
                else await commit();
                withdraw();
                await (await opening)?.close();
              })().catch((error: unknown) => ctx.log.warn({ brokers, error: clientReason(error) }, `${ctx.label}: closing the consumer failed`)),
            );
          });
        };

        const opening = openConsumer({
          brokers: options.brokers,
          clientId: `ami-streams-${ctx.node}`,
          group: options.group,
          topics: options.topics,
          from: options.from,
          isolation: options.isolation,
          sessionTimeoutMs: options.session_timeout,
          maxPartitionBytes: options.max_partition_bytes,
          heartbeatIntervalMs: Math.max(100, Math.min(3000, Math.floor(options.session_timeout / 3))),
          handlers: {
            messages: emit,
            revoking() {
              const claim = pairing.offsetClaim(options.group);
              if (claim) claim.revoking();
              else void commit();
            },
            assigned(partitions) {
              const claim = pairing.offsetClaim(options.group);
              const lost = claim ? ledger.busyOutside(partitions) : [];
              if (lost.length > 0) claim!.sourceFailed(`the group took partitions ${lost.join(', ')} from node \`${ctx.node}\` while their records were in flight`);
              ledger.keep(partitions);
              ctx.log.info({ group: options.group, partitions: partitions.map((p) => `${p.topic}:${p.partition}`) }, `${ctx.label}: partitions assigned`);
            },
            failed(error) {
              if (stopping) return;
              stopping = true;
              subscriber.error(new NodeError('kafka_consumer_failed', `${ctx.label}: the consumer (${where}) on ${brokers} failed: ${clientReason(error)}`, { cause: error }));
            },
          },
        }).then(
          (opened): KafkaConsumer => {
            consumer = opened;
            if (paused || stopping) opened.pause();
            if (!stopping) ctx.log.info({ brokers, group: options.group, topics: options.topics, from: options.from }, `${ctx.label}: consuming`);
            return opened;
          },
          (error: unknown): undefined => {
            if (stopping) return undefined;
            stopping = true;
            subscriber.error(new NodeError('kafka_unreachable', `${ctx.label}: cannot consume from Kafka at ${brokers} (${where}): ${clientReason(error)}`, { cause: error }));
            return undefined;
          },
        );
        ctx.signal.addEventListener('abort', onAbort);
        if (ctx.signal.aborted) onAbort();

        return () => {
          ctx.signal.removeEventListener('abort', onAbort);
          cancelCommit?.();
          if (completed) return;
          // A failure or a forced stop: commit what is acknowledged, and leave.
          stopping = true;
          completed = true;
          if (!ledger.idle) pairing.offsetClaim(options.group)?.sourceFailed(`node \`${ctx.node}\` stopped with records in flight`);
          closingInBackground(
            (async function closeConsumer() {
              if (!pairing.offsetClaim(options.group)) await commit();
              withdraw();
              await (await opening)?.close();
            })().catch(() => undefined),
          );
        };
      });
    };
  },
});
