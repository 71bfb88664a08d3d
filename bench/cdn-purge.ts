/**
 * Purge latency to three edges over Redis: the time from sending a purge
 * to the last edge's acknowledgement, against a bare Redis PUBLISH →
 * message round trip measured the same way in the same run.
 *
 *   node bench/cdn-purge.ts [purges=300]
 *
 * Needs the Redis of `test/services/start.sh redis` (STREAMS_REDIS_URL,
 * default redis://127.0.0.1:6379). Each edge is a separate child process
 * (this file run as `edge NAME CHANNEL`) holding a purge listener whose
 * cache purge counts the call. One sender stays open (as the admin API
 * keeps it) and sends the purges one at a time; a purge's time is the
 * whole `send()`: reading the registry, publishing, and waiting for the
 * three acks.
 *
 * Baselines, interleaved with the purges:
 * - echo: three more child processes (`echo NAME CHANNEL`) subscribed with
 *   bare ioredis, each PUBLISHing the message back on a reply channel; the
 *   time from PUBLISH to the third echo. This is the floor of any
 *   fan-out-and-acknowledge design on Redis pub/sub.
 * - bare: PUBLISH to a channel this process subscribes to, until the
 *   message arrives (one hop, no fan-out, no reply).
 *
 * Also prints the one-shot `sendPurge` (connect, subscribe, send, close),
 * which is what `streams purge` does after Node has started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { startPurgeListener } from '../nodes/cdn/purge/listener.ts';
import { openPurgeSender, sendPurge } from '../nodes/cdn/purge/send.ts';

const url = process.env.STREAMS_REDIS_URL ?? 'redis://127.0.0.1:6379';
const quiet = { debug: () => undefined, info: () => undefined, warn: (_f: object, m: string) => process.stderr.write(`${m}\n`), error: (_f: object, m: string) => process.stderr.write(`${m}\n`) };

/** Child: an edge with a purge listener; says `ready` once registered. */
async function runEdge(name: string, channel: string): Promise<void> {
  let purged = 0;
  const listener = await startPurgeListener({ redis: url, channel, edge: name }, () => ++purged, quiet);
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => void listener.stop().then(() => process.exit(0)));
}

/** Child: a bare subscriber that publishes every message back on `<channel>:echo`. */
async function runEcho(name: string, channel: string): Promise<void> {
  const subscriber = new Redis(url);
  const publisher = new Redis(url);
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => void publisher.publish(`${channel}:echo`, Buffer.concat([message, Buffer.from(` ${name}`)])));
  await subscriber.subscribe(channel);
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function child(mode: 'edge' | 'echo', name: string, channel: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [import.meta.filename, mode, name, channel], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.once('line', (line) => (line === 'ready' ? resolve(proc) : reject(new Error(`${mode} ${name}: ${line}`))));
    proc.once('exit', (code) => reject(new Error(`${mode} ${name} exited with ${code}`)));
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, samples: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const figures = { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  console.log(`${name.padEnd(36)} n=${String(samples.length).padStart(4)}  p50 ${figures.p50.toFixed(2).padStart(7)} ms  p95 ${figures.p95.toFixed(2).padStart(7)} ms  p99 ${figures.p99.toFixed(2).padStart(7)} ms  max ${sorted.at(-1)!.toFixed(2).padStart(7)} ms`);
  return figures;
}

async function main(): Promise<void> {
  const purges = Number(process.argv[2] ?? 300);
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    console.error(`cannot reach Redis at ${url} (${(error as Error).message}): start it with \`bash test/services/start.sh redis\` and set STREAMS_REDIS_URL`);
    process.exit(1);
  }
  const channel = `bench:purge:${randomUUID().slice(0, 8)}`;
  const echoChannel = `${channel}:bare`;
  const children = await Promise.all([
    ...['edge-a', 'edge-b', 'edge-c'].map((name) => child('edge', name, channel)),
    ...['echo-a', 'echo-b', 'echo-c'].map((name) => child('echo', name, echoChannel)),
  ]);

  // Echo round trips: PUBLISH, wait for the three echoes.
  const echoes = new Redis(url);
  let echoWaiting: { id: string; left: number; done: () => void } | undefined;
  echoes.on('message', (_channel: string, text: string) => {
    if (echoWaiting && text.startsWith(`${echoWaiting.id} `) && --echoWaiting.left === 0) echoWaiting.done();
  });
  await echoes.subscribe(`${echoChannel}:echo`);
  // Bare round trips: PUBLISH to ourselves.
  const bare = new Redis(url);
  let bareDone: (() => void) | undefined;
  bare.on('message', () => bareDone?.());
  await bare.subscribe(`${channel}:self`);

  const sender = await openPurgeSender({ redis: url, channel }, quiet);
  const times = { purge: [] as number[], lastAck: [] as number[], echo: [] as number[], bare: [] as number[] };
  const warmup = 20;
  for (let i = 0; i < purges + warmup; i++) {
    const keep = i >= warmup;
    let started = performance.now();
    const report = await sender.send({ kind: 'url', value: `/live/${i}.m4s`, soft: false }, 2_000);
    const took = performance.now() - started;
    if (report.applied.length !== 3) throw new Error(`purge ${i}: applied by ${report.applied.length} edges, missing ${report.missing.join(', ')}`);
    if (keep) {
      times.purge.push(took);
      times.lastAck.push(Math.max(...report.applied.map((entry) => entry.ms)));
    }

    const id = `m${i}`;
    const echoed = new Promise<void>((resolve) => (echoWaiting = { id, left: 3, done: resolve }));
    started = performance.now();
    await probe.publish(echoChannel, id);
    await echoed;
    if (keep) times.echo.push(performance.now() - started);

    const arrived = new Promise<void>((resolve) => (bareDone = resolve));
    started = performance.now();
    await probe.publish(`${channel}:self`, id);
    await arrived;
    if (keep) times.bare.push(performance.now() - started);
  }
  await sender.close();

  const oneShot: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    const report = await sendPurge({ redis: url, channel }, { kind: 'prefix', value: '/vod/', soft: true }, 2_000);
    if (report.applied.length !== 3) throw new Error(`one-shot purge: missing ${report.missing.join(', ')}`);
    oneShot.push(performance.now() - started);
  }

  console.log(`purge latency to 3 edges (child processes) over Redis ${url}, ${purges} purges one at a time after ${warmup} warm-up`);
  const purge = summary('purge: send() to last ack', times.purge);
  summary('purge: publish to last ack', times.lastAck);
  const echo = summary('baseline: PUBLISH to 3 echoes', times.echo);
  const one = summary('baseline: bare PUBLISH -> message', times.bare);
  summary('one-shot sendPurge (connect..close)', oneShot);
  console.log(`ratio purge/echo: p50 ${(purge.p50 / echo.p50).toFixed(2)}x  p99 ${(purge.p99 / echo.p99).toFixed(2)}x; purge/bare: p50 ${(purge.p50 / one.p50).toFixed(2)}x  p99 ${(purge.p99 / one.p99).toFixed(2)}x`);
  console.log(`aim p99 < 100 ms: ${purge.p99 < 100 ? 'met' : 'NOT met'} (${purge.p99.toFixed(2)} ms)`);

  for (const proc of children) proc.stdin?.end();
  await Promise.all(children.map((proc) => new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)))));
  await new Redis(url).del(`${channel}:edges`).then(() => undefined);
  echoes.disconnect();
  bare.disconnect();
  probe.disconnect();
  process.exit(0);
}

const [mode, name, channelArg] = process.argv.slice(2);
if (mode === 'edge') await runEdge(name, channelArg);
else if (mode === 'echo') await runEcho(name, channelArg);
else await main();
