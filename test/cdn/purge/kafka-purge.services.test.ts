/**
 * Purge over a real Kafka (`npm run services:start`): three edges, each in
 * a consumer group of its own, `streams purge --kafka` spawned as a user
 * runs it, an edge that is down, and a malformed record on the topic.
 */
import { Admin } from '@platformatic/kafka';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin, openProducer, type KafkaAdmin } from '../../../native/kafka/client.ts';
import { ensureTopics } from '../../../nodes/cdn/purge/kafka-bus.ts';
import { kafkaNames } from '../../../nodes/cdn/purge/registry.ts';
import { sendPurge } from '../../../nodes/cdn/purge/send.ts';
import { runCli, startEdge, uniqueChannel, until, type TestEdge } from './purge-harness.ts';

const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '').split(',').filter(Boolean);
let admin: KafkaAdmin;
const edges: TestEdge[] = [];
const channels: string[] = [];

function channel(name: string): string {
  const created = uniqueChannel(name);
  channels.push(created);
  return created;
}

beforeAll(() => {
  if (brokers.length === 0) throw new Error('STREAMS_KAFKA_BROKERS is not set: run `npm run services:start` (or `bash test/services/start.sh kafka`)');
  admin = openAdmin(brokers, 'purge-test');
});

afterEach(async () => {
  await Promise.all(edges.splice(0).map((edge) => edge.listener.stop()));
});

afterAll(async () => {
  const topics = channels.flatMap((name) => Object.values(kafkaNames(name)));
  await admin.deleteTopics(topics).catch(() => undefined);
  await admin.close();
});

async function threeEdges(name: string): Promise<TestEdge[]> {
  const started = await Promise.all(['edge-a', 'edge-b', 'edge-c'].map((edge, i) => startEdge({ kafka: brokers, channel: name }, edge, i + 1)));
  edges.push(...started);
  return started;
}

describe('purge over Kafka', () => {
  it('reaches all three edges, each in its own consumer group, and `streams purge --kafka` exits 0 naming them', async () => {
    const name = channel('all');
    const [a, b, c] = await threeEdges(name);
    const run = await runCli(['purge', '--kafka', brokers.join(','), '--channel', name, '--tag', 'match-42', '--timeout', '10s']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/applied by 3 of 3 edges/);
    expect(run.stdout).toMatch(/^applied {2}edge-a {2}1 object {2}/m);
    expect(run.stdout).toMatch(/^applied {2}edge-b {2}2 objects/m);
    expect(run.stdout).toMatch(/^applied {2}edge-c {2}3 objects/m);
    for (const edge of [a, b, c]) expect(edge.calls).toEqual([{ kind: 'tag', value: 'match-42', soft: false }]);
  });

  it('names an edge that is down and exits 1', async () => {
    const name = channel('down');
    const [a, , c] = await threeEdges(name);
    await c.listener.stop();
    const run = await runCli(['purge', '--kafka', brokers.join(','), '--channel', name, '--url', '/x', '--timeout', '3s']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/applied by 2 of 3 edges/);
    expect(run.stdout).toMatch(/^missing {2}edge-c {2}no acknowledgement within 3000 ms$/m);
    expect(a.calls).toHaveLength(1);
    expect(c.calls).toHaveLength(0);
  });

  it('ignores a malformed record on the topic with a log line and applies the next command', async () => {
    const name = channel('malformed');
    const [a] = await threeEdges(name);
    const producer = openProducer({ brokers, clientId: 'purge-test', acks: 'all', compression: 'none', idempotent: false });
    await producer.send([{ topic: kafkaNames(name).commands, value: Buffer.from('{"v":1,"type":"purge","id":"short"}') }]);
    await producer.close();
    await until('a warning', () => a.log.lines.some((line) => line.startsWith('warn')), 20_000);
    expect(a.log.lines.find((line) => line.startsWith('warn'))).toMatch(/^warn purge listener `edge-a`: ignored a message on `test:purge:malformed:[0-9a-f]+`: not a purge bus message: `id`/);
    const report = await sendPurge({ kafka: brokers, channel: name }, { kind: 'prefix', value: '/p/', soft: true }, 10_000);
    expect(report.applied.map((entry) => entry.edge)).toEqual(['edge-a', 'edge-b', 'edge-c']);
    expect(a.calls).toEqual([{ kind: 'prefix', value: '/p/', soft: true }]);
  });

  it('creates its three topics with one partition, kept an hour in ten-minute segments', async () => {
    const name = channel('topics');
    await threeEdges(name);
    const topics = Object.values(kafkaNames(name));
    const client = new Admin({ clientId: 'purge-test', bootstrapBrokers: brokers });
    try {
      const described = await client.describeConfigs({ resources: topics.map((topic) => ({ resourceType: 2, resourceName: topic, configurationKeys: ['retention.ms', 'segment.ms'] })) });
      for (const topic of topics) {
        const configs = described.find((entry) => entry.resourceName === topic)?.configs ?? [];
        expect(Object.fromEntries(configs.map((config) => [config.name, config.value]))).toEqual({ 'retention.ms': '3600000', 'segment.ms': '600000' });
      }
      expect((await admin.endOffsets(kafkaNames(name).commands)).length).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('creates what is missing and leaves what exists; a broker that cannot be reached is a bus error naming it', async () => {
    const name = channel('ensure');
    const topics = Object.values(kafkaNames(name));
    await ensureTopics(brokers, topics.slice(0, 1));
    // Again with one that exists: no error, the others are created.
    await ensureTopics(brokers, topics);
    const existing = new Set(await admin.listTopics());
    expect(topics.filter((topic) => !existing.has(topic))).toEqual([]);
    await expect(ensureTopics(['127.0.0.1:1'], topics)).rejects.toMatchObject({ name: 'PurgeBusError', code: 'bus_unreachable', message: expect.stringMatching(/^cannot list the purge topics on Kafka at 127\.0\.0\.1:1: /) });
  });
});
