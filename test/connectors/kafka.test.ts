/**
 * Kafka operator parts that need no broker: the offset ledger (what may be
 * committed when acknowledgements complete out of order) and settings
 * validation.
 */
import { describe, expect, it } from 'vitest';
import kafkaConsume from '../../nodes/messaging/kafka-consume.ts';
import kafkaProduce from '../../nodes/messaging/kafka-produce.ts';
import { clientReason, kafkaNodeProblem, openConsumer, openProducer, type KafkaMessage } from '../../native/kafka/client.ts';
import { failureKind, NodeError } from '../../runtime/failure.ts';
import { OffsetLedger } from '../../nodes/messaging/kafka/offsets.ts';
import { offsetPairing } from '../../nodes/messaging/kafka/transactions.ts';
import { contextWithSettings } from '../helpers/fake-context.ts';

function messages(topic: string, partition: number, from: number, to: number): KafkaMessage[] {
  return Array.from({ length: to - from }, (_, k) => ({ topic, partition, offset: BigInt(from + k), headers: new Map(), timestamp: 0n, leaderEpoch: 3 }));
}

describe('the offset ledger', () => {
  it('commits a partition only up to its first unacknowledged batch', () => {
    let advanced = 0;
    const ledger = new OffsetLedger(() => advanced++);
    const a = ledger.admit('t', 0, messages('t', 0, 0, 10))!;
    const b = ledger.admit('t', 0, messages('t', 0, 10, 20))!;
    const c = ledger.admit('t', 0, messages('t', 0, 20, 25))!;
    expect(ledger.committable()).toEqual([]);
    b.done();
    c.done();
    expect(ledger.committable()).toEqual([]);
    expect(advanced).toBe(0);
    a.done();
    expect(advanced).toBe(1);
    expect(ledger.committable()).toEqual([{ topic: 't', partition: 0, offset: 25n, leaderEpoch: 3 }]);
    expect(ledger.idle).toBe(true);
  });

  it('tracks partitions independently and forgets what was committed', () => {
    const ledger = new OffsetLedger(() => undefined);
    const p0 = ledger.admit('t', 0, messages('t', 0, 0, 5))!;
    const p1 = ledger.admit('t', 1, messages('t', 1, 100, 105))!;
    p1.done();
    expect(ledger.committable()).toEqual([{ topic: 't', partition: 1, offset: 105n, leaderEpoch: 3 }]);
    ledger.committed(ledger.committable());
    expect(ledger.committable()).toEqual([]);
    expect(ledger.idle).toBe(false);
    p0.done();
    expect(ledger.committable()).toEqual([{ topic: 't', partition: 0, offset: 5n, leaderEpoch: 3 }]);
  });

  it('drops records delivered again after a rebalance, and forgets revoked partitions', async () => {
    const ledger = new OffsetLedger(() => undefined);
    const first = ledger.admit('t', 0, messages('t', 0, 0, 10))!;
    const revoked = ledger.admit('t', 1, messages('t', 1, 0, 10))!;
    // The client reads partition 0 again from its committed offset (0): only 10..14 are new.
    const again = ledger.admit('t', 0, messages('t', 0, 0, 15))!;
    expect(again.fresh.map((m) => Number(m.offset))).toEqual([10, 11, 12, 13, 14]);
    expect(ledger.admit('t', 0, messages('t', 0, 5, 10))).toBeUndefined();
    ledger.keep([{ topic: 't', partition: 0 }]);
    revoked.done();
    expect(ledger.committable()).toEqual([]);
    // Records of the revoked partition fetched before the rebalance are left to its new owner.
    expect(ledger.admit('t', 1, messages('t', 1, 10, 12))).toBeUndefined();
    const idle = ledger.whenIdle();
    first.done();
    again.done();
    await idle;
    expect(ledger.committable()).toEqual([{ topic: 't', partition: 0, offset: 15n, leaderEpoch: 3 }]);
  });
});

describe('kafka settings', () => {
  it('accepts brokers as a list or a comma-separated string, and refuses a broker without a port', () => {
    const parse = (brokers: unknown) => kafkaConsume.settings.safeParse({ brokers, topics: ['t'], group: 'g' });
    expect(parse('a:9092, b:9093').data?.brokers).toEqual(['a:9092', 'b:9093']);
    expect(parse(['127.0.0.1:9092']).data?.brokers).toEqual(['127.0.0.1:9092']);
    expect(parse('localhost').error?.issues[0].message).toBe('a broker is `host:port`, found `localhost`');
  });

  it('refuses an idempotent producer without `acks: all`, and exactly-once without its transactional id and group', () => {
    const issues = (settings: object) => kafkaProduce.settings.safeParse({ brokers: 'b:9092', topic: 't', ...settings }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ acks: 'leader' })).toEqual(['idempotent: the idempotent producer needs `acks: all` (or set `idempotent: false`)']);
    expect(issues({ acks: 'leader', idempotent: false })).toBeUndefined();
    expect(issues({ exactly_once: true })).toEqual(['transactional_id: `exactly_once` needs a `transactional_id`', 'group: `exactly_once` needs the `group` of the upstream `kafka.consume`']);
    expect(issues({ compression: 'brotli' })?.[0]).toMatch(/^compression: /);
  });

  it('pipelines writes by default (one request out, no linger, 64 KiB requests) and refuses an empty request size or no request in flight', () => {
    const parse = (settings: object) => kafkaProduce.settings.safeParse({ brokers: 'b:9092', topic: 't', ...settings });
    expect(parse({}).data).toMatchObject({ max_in_flight: 1, linger: 0, batch_bytes: 64 * 1024 });
    expect(parse({ max_in_flight: 4, linger: '5ms', batch_bytes: '1MiB' }).data).toMatchObject({ max_in_flight: 4, linger: 5, batch_bytes: 1024 * 1024 });
    const issues = (settings: object) => parse(settings).error?.issues.map((i) => i.path.join('.'));
    expect(issues({ batch_bytes: 0 })).toEqual(['batch_bytes']);
    expect(issues({ max_in_flight: 0 })).toEqual(['max_in_flight']);
  });

  it('lets one node claim a consumer group for its transactions', () => {
    const pairing = offsetPairing(contextWithSettings({}));
    const claim = (node: string) => ({ node, acknowledged() {}, revoking() {}, flushed: async () => undefined, sourceFailed() {} });
    const release = pairing.claimOffsets('group-x', claim('a'));
    expect(() => pairing.claimOffsets('group-x', claim('b'))).toThrow('consumer group `group-x` is already committed through the transactions of node `a`');
    // The same node restarting takes its claim over.
    const again = pairing.claimOffsets('group-x', claim('a'));
    release();
    expect(pairing.offsetClaim('group-x')).toBeDefined();
    again();
    expect(pairing.offsetClaim('group-x')).toBeUndefined();
  });

  it('pairs consumers and producers within one engine only', () => {
    const engine = new Map<string, unknown>();
    const consumer = offsetPairing(contextWithSettings({}, { node: 'in', shared: engine }));
    const producer = offsetPairing(contextWithSettings({}, { node: 'out', shared: engine }));
    const elsewhere = offsetPairing(contextWithSettings({}, { node: 'out', shared: new Map() }));
    consumer.offerOffsets('group-y', { node: 'in', member: () => undefined, acknowledged: () => [], committed() {} });
    expect(producer.offsetSource('group-y')?.node).toBe('in');
    expect(elsewhere.offsetSource('group-y')).toBeUndefined();
    // Two engines may each commit the same group through their own producer.
    expect(() => elsewhere.claimOffsets('group-y', { node: 'other', acknowledged() {}, revoking() {}, flushed: async () => undefined, sourceFailed() {} })).not.toThrow();
    expect(producer.offsetClaim('group-y')).toBeUndefined();
  });

  it('reports the innermost reasons of a wrapped client error', () => {
    const inner = new Error('connect ECONNREFUSED 127.0.0.1:1');
    const wrapped = Object.assign(new Error('joinGroup failed 4 times.'), { errors: [Object.assign(new Error('Connection to 127.0.0.1:1 failed.'), { cause: inner })] });
    expect(clientReason(wrapped)).toBe('Connection to 127.0.0.1:1 failed: connect ECONNREFUSED 127.0.0.1:1');
  });
});


describe('the Kafka client on a Node too old for it', () => {
  it('names the Node it needs from 22.22 on, and accepts that and later', () => {
    expect(kafkaNodeProblem('20.20.2')).toBe('the Kafka client needs Node 22.22.0 or later; this is Node 20.20.2');
    expect(kafkaNodeProblem('22.21.9')).toBe('the Kafka client needs Node 22.22.0 or later; this is Node 22.21.9');
    expect(kafkaNodeProblem('22.22.0')).toBeUndefined();
    expect(kafkaNodeProblem('23.0.0')).toBeUndefined();
    expect(kafkaNodeProblem('24.21.0')).toBeUndefined();
  });

  it('fails a consumer and a producer for good, not as a broker to retry', async () => {
    // On Node 20 the library fails inside its first call (`Promise.withResolvers is not a function`),
    // which read as an unreachable broker and restarted the node for ever.
    const real = Object.getOwnPropertyDescriptor(process.versions, 'node')!;
    Object.defineProperty(process.versions, 'node', { ...real, value: '20.20.2' });
    try {
      const handlers = { messages() {}, revoking() {}, assigned() {}, failed() {} };
      const consuming = openConsumer({ brokers: ['127.0.0.1:1'], clientId: 't', group: 'g', topics: ['t'], from: 'earliest', isolation: 'read_uncommitted', sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000, handlers });
      const consumerError = await consuming.then(() => undefined, (error: unknown) => error);
      expect(String(consumerError)).toContain('the Kafka client needs Node 22.22.0 or later; this is Node 20.20.2');
      // As kafka.consume wraps it: the cause decides, and it is permanent.
      expect(failureKind(new NodeError('kafka_unreachable', 'node `src`: cannot consume', { cause: consumerError }))).toBe('permanent');

      const producer = openProducer({ brokers: ['127.0.0.1:1'], clientId: 't', acks: 'all', compression: 'none', idempotent: false });
      const producerError = await producer.send([{ value: 'x' }] as never).then(() => undefined, (error: unknown) => error);
      expect(failureKind(producerError)).toBe('permanent');
      expect(String(producerError)).toContain('needs Node 22.22.0');
    } finally {
      Object.defineProperty(process.versions, 'node', real);
    }
  });
});
