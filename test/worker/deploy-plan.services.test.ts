/**
 * `streams deploy` plans once, over Redis and over Kafka as the control
 * plane, against the real servers: the record it publishes (format 4)
 * carries the plan, and the topics of the edges between hosts exist with
 * the plan's partitions before any worker applies it; three worker
 * processes each check only their share, run it (every record through),
 * and a changed node restarts only itself, on its host.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controlAddress, openControlPlane, parseApplied, parseRecord, type DeployRecord } from '../../cli/control-plane.ts';
import { kafkaControlTopics, planKey, versionOfOffset } from '../../cli/control-plane-kafka.ts';
import { controlKeys } from '../../cli/control-plane-redis.ts';
import { openAdmin } from '../../native/kafka/client.ts';
import { openTable } from '../../native/kafka/table.ts';
import { connectRedisOnce } from '../../native/redis/client.ts';
import { counts, deletePipelineTopics, deploy, hasAll, killChildren, startWorker, uniqueName, until, type Worker } from './worker-harness.ts';

const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
let dir: string;
const workers: ChildProcess[] = [];
const names: string[] = [];

beforeAll(() => {
  if (!brokers || !redisUrl) throw new Error('STREAMS_KAFKA_BROKERS and STREAMS_REDIS_URL must be set: run `npm run services:start`');
  dir = mkdtempSync(join(tmpdir(), 'streams-deploy-plan-'));
});

afterEach(() => killChildren(workers));

afterAll(async () => {
  await deletePipelineTopics(brokers, names);
  const redis = await connectRedisOnce(redisUrl, { connectionName: 'ami-streams:test', describedAs: 'Redis' });
  for (const name of names) {
    const keys = await redis.keys(`streams:deploy:${name}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** The record the control plane holds now. */
async function storedRecord(kind: 'redis' | 'kafka', name: string): Promise<DeployRecord | undefined> {
  if (kind === 'redis') {
    const redis = await connectRedisOnce(redisUrl, { connectionName: 'ami-streams:test', describedAs: 'Redis' });
    try {
      return parseRecord(await redis.get(controlKeys(name).record)).record;
    } finally {
      redis.disconnect();
    }
  }
  const table = await openTable({ brokers: brokers.split(','), topic: kafkaControlTopics(name).plan, clientId: 'deploy-plan-test' });
  try {
    await table.caughtUp(10_000);
    const entry = table.entries().get(planKey);
    return entry ? parseRecord(entry.value, versionOfOffset(entry.offset)).record : undefined;
  } finally {
    await table.close();
  }
}

/** What each worker logged as it ran `version`: how it checked the pipeline and what the reload did. */
function running(worker: Worker, version: number): { checked: string; replaced: string[] } | undefined {
  for (const line of worker.log().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { version?: number; checked?: string; replaced?: string[]; msg?: string };
    if (entry.version === version && entry.checked !== undefined) return { checked: entry.checked, replaced: entry.replaced ?? [] };
  }
  return undefined;
}

describe.each([
  ['redis', () => redisUrl],
  ['kafka', () => `kafka://${brokers}`],
] as const)('streams deploy over a %s control plane', (kind, controlOf) => {
  it('publishes the plan and creates the topics once; each worker checks only its share and runs it', async () => {
    const control = controlOf();
    const name = uniqueName(`dplan-${kind}`);
    names.push(name);
    const out = join(dir, `${name}.jsonl`);
    const file = join(dir, `${name}.yaml`);
    const pipeline = (expr: string) => `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: sink }
transports:
  kafka: { brokers: "${brokers}", partitions: 3 }
nodes:
  gen:
    op: generate
    place: { host: a }
    with: { count: 400, rate: 400, fields: { seq: i } }
  double:
    op: map
    in: gen
    place: { host: b }
    with: { set: { v: "${expr}" } }
  out:
    op: file.write
    in: double
    place: { host: c }
    with: { path: "${out}" }
`;
    writeFileSync(file, pipeline('seq * 2'));
    const up = ['a', 'b', 'c'].map((host) => startWorker(host, name, control));
    workers.push(...up.map((w) => w.child));
    await until('three capability reports', () => up.every((w) => w.log().includes('reported this host\'s capabilities')));

    const first = await deploy(file, control);
    expect(first.stdout.split('\n').filter((l) => / applied version 1 in \d+ ms/.test(l))).toHaveLength(3);
    expect(first.code).toBe(0);

    const record = await storedRecord(kind, name);
    expect(record?.format).toBe(4);
    if (record?.format !== 4) return;
    expect(record.plan.nodes.map((n) => `${n.name}@${n.hosts.join(',')}`)).toEqual(['gen@a', 'double@b', 'out@c']);
    expect(record.lines).toEqual({ gen: [10, 13], double: [14, 18], out: [19, 23] });
    const topics = [`streams.${name}.gen.out.double.in`, `streams.${name}.double.out.out.in`];
    expect(record.topics.map((t) => `${t.topic}/${t.partitions}`)).toEqual(topics.map((t) => `${t}/3`));
    // Deploy created them with the plan's partitions (a worker creating them, or the broker on first use, would not say 3).
    const admin = openAdmin(brokers.split(','));
    try {
      for (const topic of topics) expect((await admin.endOffsets(topic)).length).toBe(3);
    } finally {
      await admin.close();
    }
    for (const worker of up) expect(running(worker, 1)).toEqual({ checked: 'share', replaced: [] });
    const seen = await until('every record through three hosts', () => {
      const got = counts(out);
      return hasAll(got, 400) && got;
    });
    expect(seen.size).toBe(400);

    // One node changes: only it restarts, on its host; every worker still checks only its share.
    writeFileSync(file, pipeline('seq * 3'));
    const second = await deploy(file, control);
    expect(second.code).toBe(0);
    expect(running(up[1], 2)).toEqual({ checked: 'share', replaced: ['double'] });
    expect(running(up[0], 2)).toEqual({ checked: 'share', replaced: [] });
    expect(running(up[2], 2)).toEqual({ checked: 'share', replaced: [] });
    // The version a worker polls, without the record: the second one's.
    const plane = await openControlPlane(controlAddress(control), name, { client: 'deploy-plan-test' });
    try {
      expect(await plane.latest()).toBe((await plane.current()).record?.version);
      expect(await plane.latest()).toBe(kind === 'redis' ? 2 : record.version + 1);
    } finally {
      await plane.close();
    }
    if (kind === 'redis') {
      const redis = await connectRedisOnce(redisUrl, { connectionName: 'ami-streams:test', describedAs: 'Redis' });
      const applied = parseApplied((await redis.hgetall(controlKeys(name).applied)).b);
      redis.disconnect();
      expect(applied).toMatchObject({ version: 2, status: 'applied', diff: { replaced: ['double'] } });
    }
  });
});
