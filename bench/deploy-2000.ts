/**
 * Benchmark: planning and deploying the generated 2,000-node pipeline of
 * `check-2000.ts` over 10 hosts, each run by its own `streams worker`
 * process. Lanes of ten nodes go to the hosts in blocks of twenty, shifted
 * by one, so that 10 of the lanes that also read the previous lane read it
 * from another host (10 edges over Kafka). Prints:
 * - the plan time: `planGraph` alone, check + plan as deploy does it
 *   (`planRecord`), and a worker's check of its share of the record deploy
 *   publishes against its check of the whole file (`shareOfRecord`), medians
 *   of 9 runs after 3 warm-ups (aim: plan under 200 ms);
 * - per control plane (Redis, then Kafka): the time from publishing until
 *   every worker has applied the first version (topics created, groups
 *   joined, 2,000 nodes started) and a second version changing one node
 *   (aim: under 5 s), as `streams deploy` reports it, and deploy's own wall
 *   time (a process start included).
 *
 *   node bench/deploy-2000.ts [--only redis|kafka]
 *
 * Needs the services (`npm run services:start`): Redis and Kafka.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { planGraph } from '../graph/plan.ts';
import { openAdmin } from '../native/kafka/client.ts';
import { connectRedisOnce } from '../native/redis/client.ts';
import { planRecord, recordPlan, shareOfRecord } from '../cli/worker-share.ts';
import { generatePipeline } from './check-2000.ts';

const hostCount = 10;
const warmups = 3;
const runs = 9;
const bin = new URL('../bin/streams.ts', import.meta.url).pathname;

/** The 2,000-node pipeline placed over 10 hosts: lane L on host floor((L + 1) / 20) mod 10. */
export function generateDeployedPipeline(name: string, brokers: string, outDir: string): string {
  const hosts = Array.from({ length: hostCount }, (_, i) => `  host-${i}: { role: worker }`);
  const lines = generatePipeline(2_000)
    .replace('name: bench-2000', `name: ${name}\nhosts:\n${hosts.join('\n')}\ntransports:\n  kafka: { brokers: "${brokers}", partitions: 1 }`)
    .replaceAll('rate: 50', 'rate: 5')
    .replaceAll('path: out/', `path: ${outDir}/`)
    .split('\n');
  const placed: string[] = [];
  for (const line of lines) {
    placed.push(line);
    const lane = /^ {2}[a-z-]+?-(\d+):$/.exec(line)?.[1];
    if (lane !== undefined) placed.push(`    place: { host: host-${Math.floor((Number(lane) + 1) / 20) % hostCount} }`);
  }
  return placed.join('\n');
}

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeMedian(action: () => void): { median: number; min: number } {
  const samples: number[] = [];
  for (let round = 0; round < warmups + runs; round++) {
    const start = performance.now();
    action();
    if (round >= warmups) samples.push(performance.now() - start);
  }
  return { median: median(samples), min: Math.min(...samples) };
}

interface Deployed {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

async function deploy(file: string, control: string): Promise<Deployed> {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'deploy', file, '--control', control, '--timeout', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  return { code, stdout, stderr, wallMs: performance.now() - started };
}

/** The slowest host's "applied version N in X ms", or why the deploy failed. */
function slowest(deployed: Deployed): string {
  const times = [...deployed.stdout.matchAll(/applied version \d+ in (\d+) ms/g)].map((m) => Number(m[1]));
  if (deployed.code !== 0 || times.length !== hostCount) return `FAILED (exit ${deployed.code}): ${(deployed.stdout + deployed.stderr).trim().split('\n').slice(-4).join(' | ')}`;
  return `every worker applied in ${Math.max(...times)} ms (fastest ${Math.min(...times)} ms); deploy's wall time ${deployed.wallMs.toFixed(0)} ms`;
}

/** Starts the 10 workers and resolves once each has reported its host; with the time it took. */
async function startWorkers(name: string, control: string): Promise<{ children: ChildProcess[]; ms: number; logs: (() => string)[] }> {
  const started = performance.now();
  const children: ChildProcess[] = [];
  const logs: (() => string)[] = [];
  const ready = Array.from({ length: hostCount }, (_, i) => {
    const child = spawn('nice', ['-n', '10', process.execPath, bin, 'worker', '--host', `host-${i}`, '--control', control, '--name', name], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let log = '';
    logs.push(() => log);
    return new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        log = (log + chunk.toString('utf8')).slice(-4000);
        if (log.includes('reported this host')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`worker host-${i} exited (${code}): ${log.slice(-400)}`)));
    });
  });
  await Promise.race([Promise.all(ready), new Promise((_, reject) => setTimeout(() => reject(new Error('the workers did not report within 120 s')), 120_000).unref())]).catch(async (error: Error) => {
    await stopWorkers(children);
    throw error;
  });
  return { children, ms: performance.now() - started, logs };
}

/** Resident memory of the processes, in MB. */
async function rssMb(children: ChildProcess[]): Promise<number[]> {
  const pids = children.map((c) => String(c.pid));
  const ps = spawn('ps', ['-o', 'rss=', '-p', pids.join(',')], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  ps.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  await new Promise((resolve) => ps.on('exit', resolve));
  return out.trim().split(/\s+/).filter(Boolean).map((kb) => Math.round(Number(kb) / 1024));
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  })));
}

async function benchControl(kind: 'redis' | 'kafka', control: string, brokers: string, dir: string): Promise<void> {
  const name = `deploy2000-${kind}-${Date.now().toString(36)}`;
  const file = join(dir, `${name}.yaml`);
  const text = generateDeployedPipeline(name, brokers, dir);
  writeFileSync(file, text);
  const { children, ms, logs } = await startWorkers(name, control);
  /** The longest a worker took from reading version `v` to running it, as its log says. */
  const applyMs = (v: number): string => {
    const times = logs.map((log) => Number(new RegExp(`"version":${v},"ms":(\\d+)`).exec(log())?.[1] ?? NaN)).filter(Number.isFinite);
    return times.length === 0 ? '' : `; each worker's own check, plan and apply took up to ${Math.max(...times)} ms`;
  };
  try {
    console.log(`${kind}: 10 workers up and reported in ${ms.toFixed(0)} ms`);
    const first = await deploy(file, control);
    console.log(`${kind}: first version (2,000 nodes started, 10 topics): ${slowest(first)}${applyMs(1)}`);
    const rss = await rssMb(children);
    console.log(`${kind}: worker memory ${Math.min(...rss)}-${Math.max(...rss)} MB resident each`);
    // One node's settings change: only it restarts, on its host.
    writeFileSync(file, text.replace("where: \"value >= 0.0 && device != 'dev-0'\"", "where: \"value >= 1.0 && device != 'dev-0'\""));
    const second = await deploy(file, control);
    console.log(`${kind}: a version changing one node: ${slowest(second)}${applyMs(2)}`);
    const third = await deploy(file, control);
    console.log(`${kind}: the same version again (no change): ${slowest(third)}${applyMs(3)}; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`);
  } finally {
    await stopWorkers(children);
    await cleanUp(kind, name, control, brokers);
  }
}

/** Deletes the deployment's Redis keys and the Kafka topics of its edges (and of its Kafka control plane). */
async function cleanUp(kind: 'redis' | 'kafka', name: string, control: string, brokers: string): Promise<void> {
  if (kind === 'redis') {
    const redis = await connectRedisOnce(control, { connectionName: 'ami-streams:bench', describedAs: 'Redis' });
    const keys = await redis.keys(`streams:deploy:${name}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
  const admin = openAdmin(brokers.split(','));
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(`streams.${name}.`) || t.startsWith(`streams-control.${name}.`));
  if (topics.length > 0) await admin.deleteTopics(topics).catch(() => undefined);
  await admin.close();
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { only: { type: 'string' } } });
  const redisUrl = process.env.STREAMS_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092';
  const dir = mkdtempSync(join(tmpdir(), 'streams-deploy-2000-'));
  try {
    const text = generateDeployedPipeline('deploy2000', brokers, dir);
    const planned = planRecord({ file: 'deploy-2000.yaml', text, params: {}, capabilities: [] });
    if (!planned.plan) throw new Error(`the generated pipeline does not plan: ${planned.diagnostics.slice(0, 3).map((d) => d.message).join('; ')}`);
    const graph = planned.graph!;
    const crossing = planned.plan.edges.filter((e) => e.transport.kind !== 'local').length;
    console.log(`pipeline: ${graph.nodes.size} nodes, ${graph.edges.length} edges (${crossing} between hosts), ${graph.hosts.length} hosts`);
    const plan = timeMedian(() => planGraph({ graph, text }));
    const both = timeMedian(() => planRecord({ file: 'deploy-2000.yaml', text, params: {}, capabilities: [] }));
    console.log(`plan (planGraph)          median ${plan.median.toFixed(1)} ms, min ${plan.min.toFixed(1)} ms (aim < 200 ms)`);
    console.log(`check + plan (planRecord) median ${both.median.toFixed(1)} ms, min ${both.min.toFixed(1)} ms`);
    // What a worker does with a record of format 2: its share checked (host-5: 200 of the 2,000 nodes, with what they read), or the whole file.
    const record = { format: 4 as const, version: 1, pipeline: graph.name, file: 'deploy-2000.yaml', text, params: {}, capabilities: [], ...recordPlan({ graph, plan: planned.plan }, text), published_at: new Date().toISOString() };
    const shared = shareOfRecord(record, 'host-5');
    if (shared.checked !== 'share') throw new Error(`host-5's share does not stand alone: ${shared.diagnostics.slice(0, 3).map((d) => d.message).join('; ')}`);
    const share = timeMedian(() => shareOfRecord(record, 'host-5'));
    const whole = timeMedian(() => shareOfRecord(record, 'host-5', { whole: true }));
    console.log(`a worker's share check      median ${share.median.toFixed(1)} ms, min ${share.min.toFixed(1)} ms; the whole file checked instead median ${whole.median.toFixed(1)} ms (${(whole.median / share.median).toFixed(1)}x)`);
    if (values.only !== 'kafka') await benchControl('redis', redisUrl, brokers, dir);
    if (values.only !== 'redis') await benchControl('kafka', `kafka://${brokers}`, brokers, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
