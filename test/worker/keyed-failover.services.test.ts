/**
 * Failover of keyed windows over real Kafka and Redis (docs/keyed-state.md):
 * three `streams worker` processes sharing a Redis control plane and a
 * Redis state store, a tumbling count window per key with `parallelism: 2`
 * on two of them, fed through a Kafka topic keyed by the window's key. One
 * window worker is killed with SIGKILL mid-stream: its partition moves to
 * the survivor, which resumes from the partition's stored state, and every
 * key's windows are complete, each counting exactly what went in.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin } from '../../native/kafka/client.ts';
import { uniqueName, deploy as deployWith, startWorker as startWith, until, type Worker } from './worker-harness.ts';

const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
let redis: Redis;
let dir: string;
const workers: ChildProcess[] = [];
const names: string[] = [];

beforeAll(async () => {
  if (!redisUrl || !brokers) throw new Error('STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS are not set: run `npm run services:start`');
  redis = new Redis(redisUrl);
  await redis.ping();
  dir = mkdtempSync(join(tmpdir(), 'streams-keyed-failover-'));
});

afterEach(() => {
  for (const child of workers.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(async () => {
  const admin = openAdmin(brokers.split(','));
  for (const name of names) {
    const keys = [...(await redis.keys(`streams:deploy:${name}*`)), ...(await redis.keys(`streams:state:${name}*`))];
    if (keys.length > 0) await redis.del(...keys);
    await admin.deleteTopics([`streams.${name}.gen.out.win.in`, `streams.${name}.agg.out.out.in`]).catch(() => undefined);
  }
  await admin.close();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(host: string, name: string): Worker {
  const worker = startWith(host, name, redisUrl, undefined, ['--state', redisUrl]);
  workers.push(worker.child);
  return worker;
}

const deploy = (file: string) => deployWith(file, redisUrl);

interface WindowResult {
  key: string;
  start: number;
  count: number;
}

function results(file: string): WindowResult[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as WindowResult);
}

/** Records go in as seq i = 0..count-1, key `k{i % keys}`, event time i * 10 ms: what each (key, 1 s window) must count. */
function expectedCounts(count: number, keys: number, windowMs: number, below: number): Map<string, number> {
  const expected = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const start = Math.floor((i * 10) / windowMs) * windowMs;
    if (start >= below) continue;
    const id = `k${i % keys}@${start}`;
    expected.set(id, (expected.get(id) ?? 0) + 1);
  }
  return expected;
}

describe('keyed state per partition across workers', () => {
  it('moves a killed worker\'s partition and its windows to the survivor: every key\'s windows complete', async () => {
    const name = uniqueName('keyed');
    names.push(name);
    const out = join(dir, `${name}.jsonl`);
    const file = join(dir, `${name}.yaml`);
    const count = 8000;
    const keys = 8;
    writeFileSync(file, `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: worker }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: ${count}, rate: 400, fields: { seq: i, k: "'k' + string(i % ${keys})", ts: "i * 10" } } }
  win: { op: window.tumbling, in: gen, parallelism: 2, place: { role: worker }, with: { size: 1s, time: ts, key: k } }
  agg: { op: aggregate, in: win, parallelism: 2, place: { role: worker }, with: { count: count() } }
  out: { op: file.write, in: agg, place: { host: a }, with: { path: "${out}" } }
`);
    startWorker('a', name);
    const b = startWorker('b', name);
    const c = startWorker('c', name);
    await until('the workers\' reports', async () => (await redis.hkeys(`streams:deploy:${name}:capabilities`)).length === 3, 15_000);
    const deployed = await deploy(file);
    expect(deployed.code).toBe(0);
    const topic = `streams.${name}.gen.out.win.in`;
    const assigned = (log: string) => log.split('\n').filter((l) => l.includes('partitions assigned') && l.includes(`${topic}:`));
    await until('b and c each reading a partition', () => assigned(b.log()).length > 0 && assigned(c.log()).length > 0);
    // Mid-stream, past the group's first rebalances, with windows emitted by both.
    await until('windows flowing', () => results(out).length > 200, 30_000);
    const assignedBefore = assigned(c.log()).length;
    const killedAt = Date.now();
    b.child.kill('SIGKILL');
    const movedAt = await until('the survivor taking both partitions', () => {
      const lines = assigned(c.log());
      return lines.length > assignedBefore && lines.at(-1)!.includes(`${topic}:0`) && lines.at(-1)!.includes(`${topic}:1`) && Date.now();
    }, 15_000);
    const moveMs = movedAt - killedAt;
    expect(moveMs).toBeLessThan(10_000);

    // Each partition's last window stays open (nothing later arrives): check the windows before it.
    const lastStart = Math.floor(((count - 1) * 10) / 1000) * 1000;
    const expected = expectedCounts(count, keys, 1000, lastStart);
    const seen = await until('every window in the output', () => {
      const got = new Map<string, number[]>();
      for (const r of results(out)) got.set(`${r.key}@${r.start}`, [...(got.get(`${r.key}@${r.start}`) ?? []), r.count]);
      return [...expected.keys()].every((id) => got.has(id)) && got;
    }, 60_000);
    const restored = c.log().split('\n').filter((l) => l.includes('restored the state of partition'));
    let duplicates = 0;
    let partial = 0;
    for (const [id, want] of expected) {
      const counts = seen.get(id)!;
      duplicates += counts.length - 1;
      partial += counts.filter((n) => n < want).length;
      // Complete, and never more than went in (a record folded twice would show here).
      expect({ id, max: Math.max(...counts) }).toEqual({ id, max: want });
      expect(counts.every((n) => n <= want)).toBe(true);
    }
    for (let k = 0; k < keys; k++) {
      const key = `k${k}`;
      const wentIn = [...expected].filter(([id]) => id.startsWith(`${key}@`)).reduce((sum, [, n]) => sum + n, 0);
      const counted = [...expected.keys()].filter((id) => id.startsWith(`${key}@`)).reduce((sum, id) => sum + Math.max(...seen.get(id)!), 0);
      expect({ key, counted }).toEqual({ key, counted: wentIn });
    }
    expect(restored.length).toBeGreaterThan(0);
    console.log(`SIGKILL of b: both partitions on c ${moveMs} ms after the kill; ${expected.size} windows of ${keys} keys complete; ${duplicates} duplicate results (${partial} partial); c restored ${restored.map((l) => /partition (\S+) at offset (\d+)/.exec(l)?.slice(1).join(' at ')).join(', ')}`);
  }, 150_000);
});
