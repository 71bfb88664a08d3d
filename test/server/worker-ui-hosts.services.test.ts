/**
 * `streams worker --ui` over the real Redis and Kafka: each worker serves
 * the whole deployed plan (every host, every node, the transports between
 * hosts) with its own host named, and numbers for its own nodes only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin } from '../../native/kafka/client.ts';
import type { LiveEvent } from '../../runtime/server/protocol.ts';
import { uniqueName } from '../worker/worker-harness.ts';

const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const bin = new URL('../../bin/streams.ts', import.meta.url).pathname;
const name = uniqueName('hv');
const ports = { a: 7921, b: 7922 };
let redis: Redis;
let dir: string;
const workers: { child: ChildProcess; log: () => string }[] = [];

beforeAll(async () => {
  if (!redisUrl || !brokers) throw new Error('STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS are not set: run `npm run services:start`');
  redis = new Redis(redisUrl);
  dir = mkdtempSync(join(tmpdir(), 'streams-worker-ui-'));
});

afterAll(async () => {
  for (const { child } of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const keys = await redis.keys(`streams:deploy:${name}*`);
  if (keys.length > 0) await redis.del(...keys);
  const admin = openAdmin(brokers.split(','));
  await admin.deleteTopics([`streams.${name}.gen.out.double.in`]).catch(() => undefined);
  await admin.close();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(host: 'a' | 'b'): void {
  const child = spawn(process.execPath, [bin, 'worker', '--host', host, '--control', redisUrl, '--name', name, '--ui', `127.0.0.1:${ports[host]}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  workers.push({ child, log: () => log });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; logs: ${workers.map((w) => w.log().slice(-1500)).join('\n---\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const get = async <T>(host: 'a' | 'b', path: string): Promise<T> => {
  const response = await fetch(`http://127.0.0.1:${ports[host]}${path}`);
  if (!response.ok) throw new Error(`${response.status}`);
  return (await response.json()) as T;
};

type Plan = Extract<LiveEvent, { type: 'graph.plan' }>;
type Stats = { nodes: Extract<LiveEvent, { type: 'node.stats' }>[] };

describe('streams worker --ui', () => {
  it('serves the whole deployed plan on every worker, with its own host named and its own nodes live', async () => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      `streams: 1
name: ${name}
hosts:
  a: { role: origin, region: eu }
  b: { role: worker }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: 1000000, rate: 200, fields: { seq: i } } }
  double: { op: map, in: gen, place: { host: b }, with: { set: { v: "seq * 2" } } }
  out: { op: file.write, in: double, with: { path: "${join(dir, 'out.jsonl')}" } }
`,
    );
    startWorker('a');
    startWorker('b');
    await until('both workers reporting', async () => (await redis.hkeys(`streams:deploy:${name}:capabilities`)).length === 2);
    const deploy = spawn(process.execPath, [bin, 'deploy', file, '--control', redisUrl, '--timeout', '20s'], { stdio: 'ignore' });
    expect(await new Promise((resolve) => deploy.on('exit', resolve))).toBe(0);

    for (const host of ['a', 'b'] as const) {
      const plan = await until(`worker ${host}'s plan`, () => get<Plan>(host, '/api/graph'));
      expect(plan.here).toBe(host);
      expect(plan.plan_only).toBeUndefined();
      expect(plan.hosts).toEqual([{ name: 'a', role: 'origin', region: 'eu' }, { name: 'b', role: 'worker' }]);
      expect(plan.nodes.map((n) => [n.id, n.hosts])).toEqual([['gen', ['a']], ['double', ['b']], ['out', ['b']]]);
      expect(plan.edges.map((e) => e.transport?.label)).toEqual([`kafka streams.${name}.gen.out.double.in`, undefined]);
    }
    // Numbers are the worker's own: a counts gen, b counts double and out (and neither the other's).
    const aStats = await until('gen emitting on a', async () => {
      const stats = await get<Stats>('a', '/api/stats');
      return stats.nodes.find((n) => n.node === 'gen' && n.records_out > 0) && stats;
    });
    expect(aStats.nodes.map((n) => n.node)).not.toContain('double');
    const bStats = await until('double receiving on b', async () => {
      const stats = await get<Stats>('b', '/api/stats');
      return stats.nodes.find((n) => n.node === 'double' && n.records_in > 0) && stats;
    });
    expect(bStats.nodes.map((n) => n.node)).not.toContain('gen');
  }, 60_000);
});
