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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /** The pipeline's file, as last deployed. */
  file: string;
  /** Rewrites the pipeline with `double` setting `v` to `expression` (deploy it after). */
  rewrite(expression: string): void;
  worker: Record<'a' | 'b' | 'c', Worker>;
}

/** Three workers, each in its namespace, running `ids` ids at `rate` per second through b and c. */
async function startThreeWorkers(ids: number, rate: number): Promise<Run> {
  const name = uniqueName('nns');
  names.push(name);
  const out = join(dir, `${name}.jsonl`);
  const file = join(dir, `${name}.yaml`);
  const rewrite = (expression: string) => writeFileSync(file, `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: worker }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: ${ids}, rate: ${rate}, fields: { seq: i } } }
  double: { op: map, in: gen, parallelism: 2, place: { role: worker }, with: { set: { v: "${expression}" } } }
  out: { op: file.write, in: double, place: { host: a }, with: { path: "${out}" } }
`);
  rewrite('seq * 2');
  const worker = {} as Run['worker'];
  for (const host of ['a', 'b', 'c'] as const) {
    worker[host] = startWorker(host, name, redisUrl, (argv, options) => netns.run(host, argv, options));
    workers.push(worker[host]);
  }
  // Three Node processes starting at once on a loaded machine can take more than the default 15 s.
  await reported(redis, name, ['a', 'b', 'c'], 40_000).catch((error: Error) => {
    throw new Error(`${error.message}; logs:\n${Object.entries(worker).map(([h, w]) => `--- ${h}\n${w.log().slice(-2000)}`).join('\n')}`);
  });
  const deployed = await deploy(file, redisUrl);
  expect(deployed.stdout.split('\n').filter((l) => / applied version 1 /.test(l)), deployed.stderr).toHaveLength(3);
  expect(deployed.code).toBe(0);
  await until('b and c each reading a partition', () => assigned(worker.b).length > 0 && assigned(worker.c).length > 0);
  // Past the group's first rebalances: a fault in the middle of one stalls the whole group until a session ends.
  await until('records flowing', () => counts(out).size > rate * 3);
  return { name, out, file, rewrite, worker };
}

/** The worker's log lines where its instance of `double` was given partitions. */
const assigned = (worker: Worker) => worker.log().split('\n').filter((l) => l.includes('partitions assigned') && l.includes('gen.out.double.in:'));
const holdsBoth = (line: string | undefined) => line !== undefined && /double\.in:0.*double\.in:1|double\.in:1.*double\.in:0/.test(line);

/** What came out of a fault: the ids read twice or more, split at the fault. */
interface Outcome {
  summary: string;
  /** Records out beyond the first of each id, for ids after the fault began. */
  duplicatesAfter: number;
  duplicatesBefore: number;
}

/** Every worker's last lines, for a failure's message. */
const logs = (run: Run) => Object.entries(run.worker).map(([h, w]) => `--- ${h}\n${w.log().slice(-3000)}`).join('\n');

/** A worker's log lines about its membership going in and out of doubt (native/kafka/membership.ts). */
const doubtLines = (worker: Worker) => worker.log().split('\n').filter((l) => l.includes('in doubt') && l.endsWith('}')).map((l) => (JSON.parse(l) as { msg: string }).msg);

/**
 * Waits for every id, then prints and returns the count of ids in and out,
 * the duplicates split at `faultId` (the largest id out when the fault
 * began): those before it come from the group's start-up rebalances.
 */
async function everyId(run: Run, ids: number, faultId: number, fault: string, timeoutMs: number): Promise<Outcome> {
  const seen = await until(`all ${ids} ids in the output (${fault})`, () => {
    const got = counts(run.out);
    return missing(got, ids).length === 0 && got;
  }, timeoutMs).catch((error: Error) => {
    const got = counts(run.out);
    const lost = missing(got, ids);
    throw new Error(`${error.message}: ${lost.length} missing (first ${lost.slice(0, 10).join(', ')}); logs:\n${logs(run)}`);
  });
  const records = [...seen.values()].reduce((sum, n) => sum + n, 0);
  const twice = [...seen.entries()].filter(([, n]) => n > 1);
  const after = twice.filter(([seq]) => seq > faultId);
  const span = (list: [number, number][]) => (list.length > 0 ? ` (ids ${Math.min(...list.map(([seq]) => seq))}-${Math.max(...list.map(([seq]) => seq))})` : '');
  const extra = (list: [number, number][]) => list.reduce((sum, [, n]) => sum + n - 1, 0);
  const summary = `${fault}: ids in ${ids}, records out ${records}, distinct ids out ${seen.size}, duplicates ${duplicates(seen)}: ${extra(after)} after id ${faultId}${span(after)}, ${extra(twice) - extra(after)} before it${span(twice.filter(([seq]) => seq <= faultId))}`;
  console.log(summary);
  return { summary, duplicatesAfter: extra(after), duplicatesBefore: extra(twice) - extra(after) };
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
    const rejoinedAt = await until('b reading a partition again', () => assigned(b).length > bAssignedBefore && !holdsBoth(assigned(c).at(-1)) && Date.now(), 30_000).catch((error: Error) => {
      throw new Error(`${error.message}; logs:\n${logs(run)}`);
    });
    const outcome = await everyId(run, ids, atCut, `link of b cut for 20 s at id ${atCut}`, 45_000);
    console.log(`cut: c held both partitions ${movedAt - cutAt} ms after the cut; b read a partition again ${rejoinedAt - restoredAt} ms after the link came back; b's membership:\n  ${doubtLines(b).join('\n  ')}`);
    expect(outcome.summary).toMatch(/distinct ids out 10000,/);
    // b went in doubt (its guard notices as the link comes back, before it takes any answer) and refused what it had
    // fetched: only the records in flight at the cut come twice.
    expect(doubtLines(b).length).toBeGreaterThanOrEqual(2);
    expect(outcome.duplicatesAfter).toBeLessThan(500);
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
    console.log(`Kafka restart: membership of b and c:\n  ${[...doubtLines(run.worker.b).map((l) => `b: ${l}`), ...doubtLines(run.worker.c).map((l) => `c: ${l}`)].join('\n  ')}`);
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

  it('deploys a new version while records flow: only the changed node restarts, on its hosts, and nothing is lost', async () => {
    const ids = 6_000;
    const run = await startThreeWorkers(ids, 250);
    const { a, b, c } = run.worker;
    const atDeploy = Math.max(...counts(run.out).keys());
    run.rewrite('seq * 3');
    const started = Date.now();
    const deployed = await deploy(run.file, redisUrl, '30s');
    const deployMs = Date.now() - started;
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    expect(deployed.stdout.split('\n').filter((l) => / applied version 2 /.test(l))).toHaveLength(3);
    const applied = await redis.hgetall(`streams:deploy:${run.name}:applied`);
    const diff = (host: string) => (JSON.parse(applied[host]) as { version: number; diff: Record<'kept' | 'replaced' | 'added' | 'removed', string[]> });
    // `double` runs on b and c: replaced there; a (gen, out) keeps everything; no transport restarts.
    for (const host of ['b', 'c']) expect(diff(host)).toMatchObject({ version: 2, diff: { replaced: ['double'], added: [], removed: [] } });
    expect(diff('a')).toMatchObject({ version: 2, diff: { replaced: [], added: [], removed: [] } });
    expect(diff('a').diff.kept).toEqual(expect.arrayContaining(['gen', 'out']));
    for (const worker of [b, c]) expect(worker.log()).toMatch(/running version 2: \d+ nodes \(kept \d+, replaced 1, added 0, removed 0\)/);
    // The transports' consumers stayed in their groups: no partition moved because of the deploy.
    const assignedAtDeploy = { b: assigned(b).length, c: assigned(c).length };
    const outcome = await everyId(run, ids, atDeploy, `deploy of version 2 (double's expression) at id ${atDeploy}, applied everywhere in ${deployMs} ms`, 60_000);
    expect(assigned(b).length).toBe(assignedAtDeploy.b);
    expect(assigned(c).length).toBe(assignedAtDeploy.c);
    const lines = readFileSync(run.out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; v: number });
    const v1 = lines.filter((l) => l.seq !== 0 && l.v === l.seq * 2).length;
    const v2 = lines.filter((l) => l.seq !== 0 && l.v === l.seq * 3).length;
    const doubts = [...doubtLines(a), ...doubtLines(b), ...doubtLines(c)];
    console.log(`deploy: ${v1} records through version 1's double, ${v2} through version 2's; ${outcome.duplicatesAfter} duplicates after the deploy; ${doubts.length} membership doubts; ${deployed.stdout.trim().replace(/\n/g, '; ')}`);
    expect(v1).toBeGreaterThan(0);
    expect(v2).toBeGreaterThan(0);
  }, 120_000);
});
