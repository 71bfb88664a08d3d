/**
 * W1 (windowed IoT aggregation) on 1, 2 and 3 workers, each worker a
 * `streams worker` process in its own network namespace (test/helpers/netns.ts),
 * all sharing this machine's cores: host `a` reads the readings, decodes and
 * filters them, a Kafka topic keyed by device carries them to the window
 * (`parallelism: N` over the worker hosts), and a second topic brings the
 * aggregates back to `a`, which writes them. The baseline, measured in the
 * same run, is `streams run pipelines/w1-iot-rollup.yaml`: one process, no
 * transports, same data.
 *
 * NEEDS root (`ip netns`), Redis and Kafka (`bash test/services/start.sh
 * redis kafka`; STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS, or the env.sh of
 * STREAMS_SERVICES_DIR).
 *
 *   node bench/workers-w1.ts [readings=300000] [rounds=3] [workers=1,2,3] [--profile]
 *
 * `--profile` runs every process (the baseline and each worker) under
 * `--cpu-prof` and prints, per process, where its CPU went while the
 * readings flowed (self time by part, file and function: bench/cpu-profile.ts);
 * a profiled run is slower, so take its rates as a guide only. Workers are
 * stopped with SIGTERM then, so that they write their profiles, which are
 * kept (the folder is printed).
 *
 * Reports, as medians of the rounds: records/s (readings over the pipeline's
 * run: from the first `running` line (of the version that reads them) to the last aggregate that can close
 * written), the CPU seconds of all the processes of the pipeline over that
 * run (utime + stime from /proc; the Kafka broker's own CPU shown apart,
 * the harness's TCP forwarders not counted), records per CPU-second, and
 * both as a ratio to the one-process baseline. Over Kafka the window of the
 * last second of event time never closes (no end of stream crosses a
 * topic), so the aggregates compared are those of every earlier second;
 * they must equal the baseline's.
 *
 * Measured (the README's figures): `node bench/workers-w1.ts 300000 3 1,2,3`,
 * edges packed (deploy record format 4), 2026-12-03, three runs on the
 * shared 2-core machine (commit 85d0c51 twice, then a499e44 with the member
 * guard without a timer), medians of 3 rounds; every run wrote the
 * baseline's 28,997 aggregates:
 *
 *   run (load average)       1 process           1 worker             2 workers            3 workers
 *   11:40 (15.1 -> 16.8)     562k/s, 750k/CPU-s  57.1k/s, 196k/CPU-s  40.6k/s, 156k/CPU-s  26.2k/s, 141k/CPU-s
 *   12:08 (6.4 -> 14.0)      433k/s, 682k/CPU-s  52.7k/s, 152k/CPU-s  41.7k/s, 168k/CPU-s  62.6k/s, 138k/CPU-s
 *   12:23 (8.3 -> 12.9)      556k/s, 833k/CPU-s  61.9k/s, 171k/CPU-s  56.3k/s, 160k/CPU-s  71.3k/s, 149k/CPU-s
 *   median of the runs       556k/s, 750k/CPU-s  57.1k/s, 171k/CPU-s  41.7k/s, 160k/CPU-s  62.6k/s, 141k/CPU-s
 *
 * Records per CPU-second against the one process of the same run: 0.21-0.26
 * (1 worker), 0.19-0.25 (2), 0.18-0.20 (3); the broker's CPU 0.42-1.25 s.
 * Records/s follow the load of other jobs (3 workers: 26k to 71k); records
 * per CPU-second are the figure to compare.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { openAdmin } from '../native/kafka/client.ts';
import { createNetns } from '../test/helpers/netns.ts';
import { deploy, reported, startWorker, until, type Worker } from '../test/worker/worker-harness.ts';
import { printProfile, profileClock, summariseProfiles } from './cpu-profile.ts';
import { root } from './dist.ts';
import { ensureW1Data } from './w1-data.ts';

/** Settings of the running services, from the environment or the env.sh that `start.sh` wrote. */
function serviceSetting(name: string): string {
  if (process.env[name]) return process.env[name]!;
  const file = join(process.env.STREAMS_SERVICES_DIR ?? '/tmp/ami-streams-services', 'env.sh');
  const match = existsSync(file) ? new RegExp(`^export ${name}=(.*)$`, 'm').exec(readFileSync(file, 'utf8')) : null;
  if (!match) throw new Error(`${name} is not set and no running service gives it: bash test/services/start.sh redis kafka`);
  return match[1];
}

const clockTicks = 100;

/** CPU seconds (user + system) a live process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** The time of the first log line whose `msg` matches. */
function logTime(log: string, msg: RegExp): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { time?: string; msg?: string };
    if (entry.msg !== undefined && msg.test(entry.msg) && entry.time) return Date.parse(entry.time);
  }
  return undefined;
}

/** One aggregate as a comparable line. */
function canonicalRows(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('}'))
    .map((line) => {
      const s = JSON.parse(line) as { key: string; start: number; count: number; sum: number; min: number; max: number; avg: number };
      return `${s.start} ${s.key} ${s.count} ${s.sum} ${s.min} ${s.max} ${s.avg}`;
    })
    .sort();
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

interface Measure {
  rate: number;
  cpu: number;
  brokerCpu: number;
}

/** Node options that write a CPU profile into `dir` when the process exits, or none. */
const profiling = (dir: string | undefined): string[] => (dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);

/** Stops a worker so that it writes its profile: SIGTERM (it drains), again after 5 s (it exits), SIGKILL after 10 s. */
async function stopForProfile(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timers = [setTimeout(() => child.kill('SIGTERM'), 5000), setTimeout(() => child.kill('SIGKILL'), 10_000)];
  await exited;
  for (const timer of timers) clearTimeout(timer);
}

/** The baseline: `streams run` on W1, timed and charged from its `running` line to its `finished` line. */
async function baseline(input: string, output: string, readings: number, profileDir?: string): Promise<Measure> {
  const child = spawn(process.execPath, [...profiling(profileDir), join(root, 'bin', 'streams.ts'), 'run', join(root, 'pipelines', 'w1-iot-rollup.yaml'), '--param', `input=${input}`, '--param', `output=${output}`, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const marks: { at: number; cpu: number }[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString('utf8');
    // Sampled as the line arrives, while the process still lives.
    if (marks.length === 0 && log.includes('"msg":"running"')) marks.push({ at: Date.now(), cpu: cpuSeconds(child.pid!) });
    if (marks.length === 1 && log.includes('"msg":"finished"')) marks.push({ at: Date.now(), cpu: cpuSeconds(child.pid!) });
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0 || marks.length < 2) throw new Error(`the baseline failed (exit ${code}): ${log.slice(-1000)}`);
  const seconds = (logTime(log, /^finished$/)! - logTime(log, /^running$/)!) / 1000;
  return { rate: readings / seconds, cpu: marks[1].cpu - marks[0].cpu, brokerCpu: 0 };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { profile: { type: 'boolean', default: false } } });
  const readings = Number(positionals[0] ?? 300_000);
  const rounds = Number(positionals[1] ?? 3);
  const counts = (positionals[2] ?? '1,2,3').split(',').map(Number);
  const redisUrl = serviceSetting('STREAMS_REDIS_URL');
  const brokers = serviceSetting('STREAMS_KAFKA_BROKERS');
  const brokerPidFile = join(process.env.STREAMS_SERVICES_DIR ?? '/tmp/ami-streams-services', 'kafka', 'kafka.pid');
  const brokerPid = existsSync(brokerPidFile) ? Number(readFileSync(brokerPidFile, 'utf8')) : undefined;
  const portOf = (address: string) => Number(/:(\d+)\/?$/.exec(address.split(',')[0])![1]);
  const dir = mkdtempSync(join(tmpdir(), 'streams-workers-w1-'));
  // Kept after the run, for a closer look (call trees: Chrome DevTools or speedscope open them).
  const profiles = values.profile ? mkdtempSync(join(tmpdir(), 'streams-workers-w1-profiles-')) : undefined;
  // 10 readings per event millisecond: 10,000 per event second, so a run spans enough seconds that the one left open is small.
  const input = join(tmpdir(), `ami-streams-w1-${readings}-10.ndjson`);
  await ensureW1Data(input, readings, 10);
  const hosts = ['a', ...Array.from({ length: Math.max(...counts) }, (_, i) => `w${i + 1}`)];
  const netns = await createNetns({ hosts, forward: [portOf(redisUrl), portOf(brokers)] });
  // A bench stopped by a signal still removes its namespaces and workers.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void netns.teardown().finally(() => process.exit(130)));
  const redis = new Redis(redisUrl);
  const admin = openAdmin(brokers.split(','));
  const running: Worker[] = [];
  try {
    console.log(`W1 on workers: ${readings.toLocaleString('en')} readings (10,000 per event second), ${rounds} rounds, node ${process.version}; Kafka ${brokers}, Redis ${redisUrl}; each worker in its own network namespace`);
    const results = new Map<string, Measure[]>();
    const record = (label: string, m: Measure) => results.set(label, [...(results.get(label) ?? []), m]);
    let expected: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const baseOut = join(dir, 'baseline.ndjson');
      const baseProfile = profiles ? join(profiles, `${round}-baseline`) : undefined;
      const base = await baseline(input, baseOut, readings, baseProfile);
      if (baseProfile) printProfile(`round ${round + 1}, 1 process (whole run)`, summariseProfiles(baseProfile));
      const rows = canonicalRows(baseOut);
      const lastStart = Math.max(...rows.map((row) => Number(row.split(' ')[0])));
      expected = rows.filter((row) => Number(row.split(' ')[0]) < lastStart);
      record('1 process, no transports', base);
      for (const n of counts) {
        const name = `w1w-${n}-${Date.now().toString(36)}`;
        const out = join(dir, `${name}.ndjson`);
        const file = join(dir, `${name}.yaml`);
        const workerHosts = hosts.slice(1, n + 1);
        const pipeline = (lines: string) => `streams: 1
name: ${name}
hosts:
  a: { role: origin }
${workerHosts.map((h) => `  ${h}: { role: worker }`).join('\n')}
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  lines: { ${lines}, place: { host: a } }
  readings: { op: decode.json, in: lines, place: { host: a } }
  valid: { op: filter, in: readings, place: { host: a }, with: { where: "value >= 0" } }
  per-second: { op: window.tumbling, in: valid, parallelism: ${n}, place: { role: worker }, with: { size: 1s, time: ts, key: device, lateness: 0s } }
  stats: { op: aggregate, in: per-second, parallelism: ${n}, place: { role: worker }, with: { count: count(), sum: sum(value), min: min(value), max: max(value), avg: avg(value) } }
  encode: { op: encode.json, in: stats, place: { host: a } }
  out: { op: file.write, in: encode, place: { host: a }, with: { path: "${out}", mode: truncate } }
`;
        const profileDirs = new Map(['a', ...workerHosts].map((host) => [host, profiles ? join(profiles, `${round}-${n}-${host}`) : undefined]));
        const launch = (host: string) => (argv: string[], options: SpawnOptions) => {
          const profileDir = profileDirs.get(host);
          return netns.run(host, argv, profileDir ? { ...options, env: { ...process.env, NODE_OPTIONS: profiling(profileDir).join(' ') } } : options);
        };
        const workers = ['a', ...workerHosts].map((host) => startWorker(host, name, redisUrl, launch(host)));
        let window: { from: number; to: number } | undefined;
        running.push(...workers);
        try {
          await reported(redis, name, ['a', ...workerHosts], 30_000);
          // Version 1's source is an idle topic (silent, never complete): the window's group forms (every instance
          // holding its partition) before any reading flows, so no start-up rebalance moves a partition (and its
          // in-memory windows) mid-stream.
          writeFileSync(file, pipeline(`op: kafka.consume, with: { brokers: ["${brokers}"], topics: ["${name}.idle"], group: "${name}.idle", format: bytes }`));
          const first = await deploy(file, redisUrl);
          if (first.code !== 0) throw new Error(`deploy failed: ${first.stderr}${first.stdout}`);
          const holding = (w: Worker) => w.log().split('\n').some((l) => l.includes('partitions assigned') && l.includes('.per-second.in:'));
          process.stderr.write(`${n} workers: version 1 applied\n`);
          await until(`the window's ${n} instances holding their partitions`, () => workers.slice(1).every(holding), 60_000);
          // Version 2 replaces only `lines`, now reading the readings; the window instances keep running.
          writeFileSync(file, pipeline(`op: file.read, with: { path: "${input}", format: lines }`));
          const pids = workers.map((w) => w.child.pid!);
          const cpuBefore = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
          const brokerBefore = brokerPid ? cpuSeconds(brokerPid) : 0;
          const profileFrom = profileClock();
          const deployed = await deploy(file, redisUrl);
          if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}${deployed.stdout}`);
          process.stderr.write(`${n} workers: version 2 applied\n`);
          await until(`${n} workers: ${expected.length} aggregates`, () => canonicalRows(out).length >= expected.length, 600_000);
          const doneAt = Date.now();
          window = { from: profileFrom, to: profileClock() };
          const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpuBefore;
          const brokerCpu = brokerPid ? cpuSeconds(brokerPid) - brokerBefore : Number.NaN;
          const startedAt = Math.min(...workers.map((w) => logTime(w.log(), /^running version 2/) ?? Infinity));
          const got = canonicalRows(out).filter((row) => Number(row.split(' ')[0]) < lastStart);
          if (got.join('\n') !== expected.join('\n')) throw new Error(`${n} workers: the aggregates differ from the baseline's (${got.length} vs ${expected.length} rows)`);
          record(`${n} worker${n > 1 ? 's' : ''} + origin host`, { rate: readings / ((doneAt - startedAt) / 1000), cpu, brokerCpu });
        } finally {
          if (values.profile) await Promise.all(workers.map((w) => stopForProfile(w.child)));
          for (const w of workers) w.child.kill('SIGKILL');
          await Promise.all(workers.map((w) => (w.child.exitCode === null && w.child.signalCode === null ? new Promise((resolve) => w.child.on('exit', resolve)) : undefined)));
          const keys = await redis.keys(`streams:deploy:${name}*`);
          if (keys.length > 0) await redis.del(...keys);
          await admin.deleteTopics([`streams.${name}.valid.out.per-second.in`, `streams.${name}.stats.out.encode.in`, `${name}.idle`]).catch(() => undefined);
        }
        // From the deploy of version 2 to the last aggregate: the readings flowing, each process apart.
        for (const [host, profileDir] of profileDirs) if (profileDir && window) printProfile(`round ${round + 1}, ${n} worker(s), host ${host}`, summariseProfiles(profileDir, window));
      }
    }
    if (profiles) console.log(`CPU profiles kept in ${profiles}`);
    console.log(`every run wrote the baseline's ${expected.length.toLocaleString('en')} aggregates of the seconds that close`);
    const base = results.get('1 process, no transports')!;
    const baseRate = median(base.map((m) => m.rate));
    const basePerCpu = median(base.map((m) => readings / m.cpu));
    console.log('variant                     records/s   CPU-s   records/CPU-s   vs 1 process: rate  per CPU-s   Kafka broker CPU-s');
    for (const [label, measures] of results) {
      const rate = median(measures.map((m) => m.rate));
      const perCpu = median(measures.map((m) => readings / m.cpu));
      const broker = median(measures.map((m) => m.brokerCpu));
      console.log(`${label.padEnd(26)} ${rate.toFixed(0).padStart(10)} ${median(measures.map((m) => m.cpu)).toFixed(2).padStart(7)} ${perCpu.toFixed(0).padStart(15)} ${(rate / baseRate).toFixed(3).padStart(19)} ${(perCpu / basePerCpu).toFixed(3).padStart(10)} ${Number.isNaN(broker) || broker === 0 ? '-' : broker.toFixed(2).padStart(20)}`);
    }
  } finally {
    for (const w of running) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await netns.teardown();
    await admin.close();
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
