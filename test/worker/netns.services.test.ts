/**
 * The faults of many hosts on real hosts on one machine: three `streams
 * worker` processes, each in its own network namespace (test/helpers/netns.ts)
 * reaching the real Redis (control plane) and Kafka (edges) through the
 * namespace's link, run a three-workers pipeline (`a` generates a fixed
 * number of ids and writes what comes back; `b` and `c` each run one
 * instance of a `parallelism: 2` map). Each fault is shown with a count of
 * ids in and ids out: every id at least once, duplicates counted and printed.
 *
 * Needs root (`ip netns`), Redis and Kafka. The Kafka test restarts the Kafka
 * at STREAMS_KAFKA_BROKERS with `test/services/{stop,start}.sh kafka`; to
 * run it beside a shared Kafka, start a private one and point the test at it:
 *   STREAMS_SERVICES_DIR=/tmp/my-kafka STREAMS_KAFKA_PORT=7610 STREAMS_KAFKA_CONTROLLER_PORT=7611 bash test/services/start.sh kafka
 *   STREAMS_SERVICES_DIR=/tmp/my-kafka STREAMS_KAFKA_PORT=7610 STREAMS_KAFKA_CONTROLLER_PORT=7611 \
 *     STREAMS_KAFKA_BROKERS=127.0.0.1:7610 STREAMS_REDIS_URL=redis://127.0.0.1:6379 \
 *     npx vitest run --config vitest.services.config.ts test/worker/netns.services.test.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin } from '../../native/kafka/client.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';
import { uniqueName, counts, deploy, duplicates, killAll, missing, reported, startWorker, until, type Worker } from './worker-harness.ts';

const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const servicesDir = new URL('../services/', import.meta.url).pathname;
let redis: Redis;
let netns: Netns;
let dir: string;
const workers: Worker[] = [];
const names: string[] = [];

const portOf = (address: string) => Number(/:(\d+)\/?$/.exec(address.split(',')[0])?.[1]);

beforeAll(async () => {
  if (!redisUrl || !brokers) throw new Error('STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS are not set: run `npm run services:start`');
  redis = new Redis(redisUrl);
  await redis.ping();
  netns = await createNetns({ hosts: ['a', 'b', 'c'], forward: [portOf(redisUrl), portOf(brokers)] });
  dir = mkdtempSync(join(tmpdir(), 'streams-netns-'));
});

afterEach(() => killAll(workers));

afterAll(async () => {
  await netns?.teardown();
  if (!redis) return;
  const admin = openAdmin(brokers.split(','));
  for (const name of names) {
    const keys = await redis.keys(`streams:deploy:${name}*`);
    if (keys.length > 0) await redis.del(...keys);
    await admin.deleteTopics([`streams.${name}.gen.out.double.in`, `streams.${name}.double.out.out.in`]).catch(() => undefined);
  }
  await admin.close();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  name: string;
  out: string;
  worker: Record<'a' | 'b' | 'c', Worker>;
}

/** Three workers, each in its namespace, running `ids` ids at `rate` per second through b and c. */
async function startThreeWorkers(ids: number, rate: number): Promise<Run> {
  const name = uniqueName('nns');
  names.push(name);
  const out = join(dir, `${name}.jsonl`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: worker }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: ${ids}, rate: ${rate}, fields: { seq: i } } }
  double: { op: map, in: gen, parallelism: 2, place: { role: worker }, with: { set: { v: "seq * 2" } } }
  out: { op: file.write, in: double, place: { host: a }, with: { path: "${out}" } }
`);
  const worker = {} as Run['worker'];
  for (const host of ['a', 'b', 'c'] as const) {
    worker[host] = startWorker(host, name, redisUrl, (argv, options) => netns.run(host, argv, options));
    workers.push(worker[host]);
  }
  await reported(redis, name, ['a', 'b', 'c']);
  const deployed = await deploy(file, redisUrl);
  expect(deployed.stdout.split('\n').filter((l) => / applied version 1 /.test(l)), deployed.stderr).toHaveLength(3);
  expect(deployed.code).toBe(0);
  await until('b and c each reading a partition', () => assigned(worker.b).length > 0 && assigned(worker.c).length > 0);
  // Past the group's first rebalances: a fault in the middle of one stalls the whole group until a session ends.
  await until('records flowing', () => counts(out).size > rate * 3);
  return { name, out, worker };
}

/** The worker's log lines where its instance of `double` was given partitions. */
const assigned = (worker: Worker) => worker.log().split('\n').filter((l) => l.includes('partitions assigned') && l.includes('gen.out.double.in:'));
const holdsBoth = (line: string | undefined) => line !== undefined && /double\.in:0.*double\.in:1|double\.in:1.*double\.in:0/.test(line);

/**
 * Waits for every id, then prints and returns the count of ids in and out,
 * the duplicates split at `faultId` (the largest id out when the fault
 * began): those before it come from the group's start-up rebalances.
 */
async function everyId(run: Run, ids: number, faultId: number, fault: string, timeoutMs: number): Promise<string> {
  const seen = await until(`all ${ids} ids in the output (${fault})`, () => {
    const got = counts(run.out);
    return missing(got, ids).length === 0 && got;
  }, timeoutMs).catch((error: Error) => {
    const got = counts(run.out);
    const lost = missing(got, ids);
    throw new Error(`${error.message}: ${lost.length} missing (first ${lost.slice(0, 10).join(', ')}); logs:\n${Object.entries(run.worker).map(([h, w]) => `--- ${h}\n${w.log().slice(-3000)}`).join('\n')}`);
  });
  const records = [...seen.values()].reduce((sum, n) => sum + n, 0);
  const twice = [...seen.entries()].filter(([, n]) => n > 1);
  const after = twice.filter(([seq]) => seq > faultId);
  const span = (list: [number, number][]) => (list.length > 0 ? ` (ids ${Math.min(...list.map(([seq]) => seq))}-${Math.max(...list.map(([seq]) => seq))})` : '');
  const extra = (list: [number, number][]) => list.reduce((sum, [, n]) => sum + n - 1, 0);
  const summary = `${fault}: ids in ${ids}, records out ${records}, distinct ids out ${seen.size}, duplicates ${duplicates(seen)}: ${extra(after)} after id ${faultId}${span(after)}, ${extra(twice) - extra(after)} before it${span(twice.filter(([seq]) => seq <= faultId))}`;
  console.log(summary);
  return summary;
}

describe('three workers in three network namespaces', () => {
  it('loses nothing when a worker\'s link is cut for 20 s: its partition moves to the survivor and it rejoins after', async () => {
    const ids = 10_000;
    const run = await startThreeWorkers(ids, 250);
    const { b, c } = run.worker;
    const bAssignedBefore = assigned(b).length;
    const cAssignedBefore = assigned(c).length;
    const atCut = Math.max(...counts(run.out).keys());
    const cutAt = Date.now();
    netns.cut('b');
    const movedAt = await until('c taking both partitions while b is cut', () => assigned(c).length > cAssignedBefore && holdsBoth(assigned(c).at(-1)) && Date.now(), 19_000).catch((error) => {
      netns.restore('b');
      throw error;
    });
    await new Promise((resolve) => setTimeout(resolve, 20_000 - (Date.now() - cutAt)));
    netns.restore('b');
    const restoredAt = Date.now();
    const rejoinedAt = await until('b reading a partition again', () => assigned(b).length > bAssignedBefore && !holdsBoth(assigned(c).at(-1)) && Date.now(), 30_000);
    const summary = await everyId(run, ids, atCut, `link of b cut for 20 s at id ${atCut}`, 45_000);
    console.log(`cut: c held both partitions ${movedAt - cutAt} ms after the cut; b read a partition again ${rejoinedAt - restoredAt} ms after the link came back`);
    expect(summary).toMatch(/distinct ids out 10000,/);
  }, 150_000);

  it('loses nothing when Kafka restarts while records flow', async () => {
    const kafkaPort = String(portOf(brokers));
    // The script restarts the Kafka of its STREAMS_SERVICES_DIR / STREAMS_KAFKA_PORT: make sure that is the one this test uses.
    expect(process.env.STREAMS_KAFKA_PORT ?? '9092', 'STREAMS_KAFKA_PORT must name the port of STREAMS_KAFKA_BROKERS').toBe(kafkaPort);
    const ids = 6_000;
    const run = await startThreeWorkers(ids, 250);
    const atStop = Math.max(...counts(run.out).keys());
    const started = Date.now();
    const stop = spawnSync('bash', [join(servicesDir, 'stop.sh'), 'kafka'], { encoding: 'utf8' });
    expect(stop.status, stop.stderr).toBe(0);
    const start = spawnSync('bash', [join(servicesDir, 'start.sh'), 'kafka'], { encoding: 'utf8' });
    expect(start.status, start.stderr).toBe(0);
    const downMs = Date.now() - started;
    await everyId(run, ids, atStop, `Kafka restarted at id ${atStop} (down for ${downMs} ms in stop.sh + start.sh)`, 90_000);
  }, 180_000);

  it('moves a SIGKILLed worker\'s partitions to the survivor within 10 s, and every id reaches the output', async () => {
    const ids = 6_000;
    const run = await startThreeWorkers(ids, 400);
    const { b, c } = run.worker;
    const atKill = Math.max(...counts(run.out).keys());
    const assignedBefore = assigned(c).length;
    const killedAt = Date.now();
    b.child.kill('SIGKILL');
    const movedAt = await until('the survivor taking both partitions', () => assigned(c).length > assignedBefore && holdsBoth(assigned(c).at(-1)) && Date.now(), 15_000);
    expect(movedAt - killedAt).toBeLessThan(10_000);
    await everyId(run, ids, atKill, `SIGKILL of b at id ${atKill}, partitions on c ${movedAt - killedAt} ms later`, 30_000);
  }, 90_000);
});
