/**
 * `streams deploy` writes the newest record format every planned host
 * reads, against the real servers (Redis as the control plane, Kafka for
 * the edge): an upgraded worker reports what it reads; a host whose report
 * does not say (a worker older than that field) holds the record at
 * format 2, so no edge is packed for it to lose, and deploy names it; a
 * host that reads no format with a plan stops the deploy, named.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCapabilities, parseRecord, recordFormat } from '../../cli/control-plane.ts';
import { controlKeys } from '../../cli/control-plane-redis.ts';
import { connectRedisOnce } from '../../native/redis/client.ts';
import { deletePipelineTopics, deploy, killChildren, reported, startWorker, uniqueName } from './worker-harness.ts';

const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
let dir: string;
const workers: ChildProcess[] = [];
const name = uniqueName('deploy-format');

beforeAll(() => {
  if (!brokers || !redisUrl) throw new Error('STREAMS_KAFKA_BROKERS and STREAMS_REDIS_URL must be set: run `npm run services:start`');
  dir = mkdtempSync(join(tmpdir(), 'streams-deploy-format-'));
});

afterAll(async () => {
  killChildren(workers);
  await deletePipelineTopics(brokers, [name]);
  const redis = await connectRedisOnce(redisUrl, { connectionName: 'ami-streams:test', describedAs: 'Redis' });
  const keys = await redis.keys(`streams:deploy:${name}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('the record format deploy writes', () => {
  it('follows the oldest worker among the planned hosts, and refuses a host that reads no plan', async () => {
    const redis = await connectRedisOnce(redisUrl, { connectionName: 'ami-streams:test', describedAs: 'Redis' });
    const keys = controlKeys(name);
    try {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
transports:
  kafka: { brokers: "${brokers}", partitions: 2 }
nodes:
  gen:
    op: generate
    place: { host: a }
    with: { count: 3, fields: { seq: i } }
  out:
    op: stdout
    in: gen
    place: { host: b }
`);
      const control = redisUrl;
      const a = startWorker('a', name, control);
      workers.push(a.child);
      await reported(redis, name, ['a']);
      expect(parseCapabilities(await redis.hgetall(keys.capabilities)).reports).toEqual([{ host: 'a', offers: expect.any(Array), reads: recordFormat }]);

      // Host b's worker is older than the report's `reads` (as a worker of format 3 or 4 writes its report).
      await redis.hset(keys.capabilities, 'b', JSON.stringify({ host: 'b', offers: ['listen'] }));
      const held = await deploy(file, control, '3s');
      expect(held.stderr).toContain(`streams: writing record format 2, not ${recordFormat} (no edge between hosts is packed): no newer one is read by \`b\``);
      const record = parseRecord(await redis.get(keys.record)).record;
      expect(record?.format).toBe(2);
      // The upgraded worker runs it; b (no worker here) is named as not applied.
      expect(held.stdout).toMatch(/^a: applied version 1 in \d+ ms/m);
      expect(held.stdout).toMatch(/^b: not applied within 3000 ms/m);

      await redis.hset(keys.capabilities, 'b', JSON.stringify({ host: 'b', offers: ['listen'], reads: 1 }));
      const refused = await deploy(file, control, '3s');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('streams: nothing published: host `b`\'s worker reads deployment records of format 1 at most, and deploy writes format 2 or newer: upgrade `streams` on host `b`');
      expect(parseRecord(await redis.get(keys.record)).record?.version).toBe(record?.version);
    } finally {
      redis.disconnect();
    }
  }, 90_000);
});
