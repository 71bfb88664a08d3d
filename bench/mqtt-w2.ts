/**
 * W2, MQTT ingest against Mosquitto, in one run:
 *
 * 1. Throughput. A publisher process sends COUNT JSON readings
 *    `{"ts","device","value"}` at QoS 0 as fast as the broker takes them;
 *    a subscriber process receives them and aggregates per device and
 *    1 s event-time window: the engine (`mqtt.subscribe -> decode.json ->
 *    window.tumbling 1s -> aggregate -> discard`), then a bare mqtt.js
 *    client doing the same by hand. Messages per second while receiving,
 *    and how many the broker dropped at QoS 0 (it drops for a subscriber
 *    that falls behind).
 * 2. Latency. Readings carrying their send time go out at a fixed
 *    20,000 msg/s through a relay, `mqtt.subscribe -> decode.json -> filter
 *    -> mqtt.publish` in the engine, then a bare mqtt.js relay doing the
 *    same, back to a client in the publishing process: p50/p99/max.
 *    Then the same stream through each relay stopped (SIGSTOP) for 25 ms
 *    now and then, as a GC pause or a busy core would: the latency of the
 *    messages that waited, which arrive in one large socket read.
 *
 * Every variant runs in its own process; the variants of a part run one
 * after the other, never at the same time.
 *
 *   set -a; . /tmp/ami-streams-services/env.sh; set +a
 *   node bench/mqtt-w2.ts [count=1000000] [rounds=1] [latency_seconds=5] [latency_rate=20000]
 *
 * `count` 0 runs the latency part alone, `latency_seconds` 0 the throughput
 * part alone. Each round runs every latency variant once; the engine's p99
 * less the bare relay's in the same round (median over rounds) is the
 * figure a busy machine moves least.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { connectAsync, type MqttClient } from 'mqtt';
import { Observable } from 'rxjs';
import mqttPublish from '../nodes/messaging/mqtt-publish.ts';
import mqttSubscribe from '../nodes/messaging/mqtt-subscribe.ts';
import { registry } from '../nodes/all.ts';
import type { OperatorDefinition } from '../runtime/api.ts';
import type { Engine } from '../runtime/engine.ts';
import { publishPacket, RawPublisher, RawSubscriber } from './mqtt-raw-client.ts';
import { discard, startBenchEngine, whenIdle } from './bench-engine.ts';

const url = process.env.STREAMS_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const devices = 100;
let latencyRate = 20_000;
/** A subscriber is done once nothing has come for this long. */
const idleMs = 1500;

type Reading = { ts: number; device: string; value: number; sent?: number };


const operators = new Map<string, OperatorDefinition>([...registry, ...[mqttSubscribe, mqttPublish, discard].map((op) => [op.name, op] as const)]);

/** Starts a pipeline; resolves once its subscription is made. */
function startEngine(nodes: Record<string, unknown>): Promise<Engine> {
  return startBenchEngine('w2', nodes, operators, /subscribed to/);
}

async function client(options: Parameters<typeof connectAsync>[1] = {}): Promise<MqttClient> {
  const connected = await connectAsync(url, { reconnectPeriod: 0, ...options });
  (connected.stream as Socket).setNoDelay(true);
  return connected;
}

/** Per-device tumbling 1 s windows in event time, closed when the watermark passes their end: the bare baseline's aggregation. */
class Windows {
  open = new Map<number, Map<string, { count: number; sum: number; min: number; max: number }>>();
  watermark = -Infinity;
  emitted = 0;
  last: unknown;

  add(r: Reading): void {
    if (r.ts > this.watermark) {
      const previous = this.watermark;
      this.watermark = r.ts;
      if (Math.floor(r.ts / 1000) > Math.floor(previous / 1000)) this.close(false);
    }
    const start = r.ts - (r.ts % 1000);
    let window = this.open.get(start);
    if (!window) this.open.set(start, (window = new Map()));
    const s = window.get(r.device);
    if (s) {
      s.count++;
      s.sum += r.value;
      if (r.value < s.min) s.min = r.value;
      if (r.value > s.max) s.max = r.value;
    } else window.set(r.device, { count: 1, sum: r.value, min: r.value, max: r.value });
  }

  close(all: boolean): void {
    for (const [start, window] of this.open) {
      if (!all && start + 1000 > this.watermark) continue;
      this.open.delete(start);
      for (const [key, s] of window) {
        this.last = { key, start, end: start + 1000, count: s.count, avg: s.sum / s.count, min: s.min, max: s.max };
        this.emitted++;
      }
    }
  }
}

const children: Record<string, (arg: string) => Promise<void>> = {
  async 'engine-throughput'() {
    const engine = await startEngine({
      sensors: { op: 'mqtt.subscribe', with: { url, topics: ['w2/readings/#'], qos: 0 } },
      readings: { op: 'decode.json', in: 'sensors' },
      'per-second': { op: 'window.tumbling', in: 'readings', with: { size: '1s', time: 'ts', key: 'device' } },
      stats: { op: 'aggregate', in: 'per-second', with: { count: 'count()', avg: 'avg(value)', min: 'min(value)', max: 'max(value)' } },
      out: { op: 'bench.discard', in: 'stats' },
    });
    const received = engine.runners.get('sensors')!.stats;
    const windows = engine.runners.get('stats')!.stats;
    process.stdout.write('ready\n');
    // Windows closed by the watermark so far (the last ones stay open: no drain, which would flush them).
    whenIdle(() => received.recordsOut, idleMs, async () => ({ windows: windows.recordsOut }));
  },

  async 'bare-throughput'() {
    const subscriber = await client();
    const windows = new Windows();
    let received = 0;
    subscriber.on('message', (_topic, payload) => {
      received++;
      windows.add(JSON.parse(payload.toString()) as Reading);
    });
    await subscriber.subscribeAsync('w2/readings/#', { qos: 0 });
    process.stdout.write('ready\n');
    whenIdle(() => received, idleMs, async () => ({ windows: windows.emitted }));
  },

  /** Sends `count` readings at QoS 0 as fast as the broker reads them. */
  async publisher(count) {
    const publisher = await RawPublisher.connect(url);
    const total = Number(count);
    const started = performance.now();
    for (let i = 0; i < total; ) {
      const end = Math.min(total, i + 500);
      const ts = Date.now();
      const packets: Buffer[] = [];
      for (; i < end; i++) packets.push(publishPacket(`w2/readings/dev-${i % devices}`, `{"ts":${ts},"device":"dev-${i % devices}","value":${(i % 1000) / 10}}`));
      await publisher.write(Buffer.concat(packets));
    }
    const seconds = (performance.now() - started) / 1000;
    await publisher.end();
    process.stdout.write(JSON.stringify({ published: total, seconds }) + '\n');
  },

  async 'engine-relay'() {
    const engine = await startEngine({
      in: { op: 'mqtt.subscribe', with: { url, topics: ['w2/latency/in'], qos: 0 } },
      readings: { op: 'decode.json', in: 'in' },
      valid: { op: 'filter', in: 'readings', with: { where: 'value >= 0.0' } },
      out: { op: 'mqtt.publish', in: 'valid', with: { url, topic: 'w2/latency/out', qos: 0 } },
    });
    process.stdout.write('ready\n');
    process.on('SIGTERM', () => void engine.drain({ deadlineMs: 2_000 }).then(() => process.exit(0)));
  },

  async 'bare-relay'() {
    const relay = await client();
    relay.on('message', (_topic, payload) => {
      const reading = JSON.parse(payload.toString()) as Reading;
      if (reading.value >= 0) relay.publish('w2/latency/out', JSON.stringify(reading), { qos: 0 });
    });
    await relay.subscribeAsync('w2/latency/in', { qos: 0 });
    process.stdout.write('ready\n');
    process.on('SIGTERM', () => void relay.endAsync().then(() => process.exit(0)));
  },
};

/** Starts `node bench/mqtt-w2.ts --child NAME ARG`; resolves with it once it prints `ready` (or at once). */
function startChild(name: string, arg = '', waitReady = true): Promise<{ child: ChildProcess; result: Promise<string> }> {
  const child = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child', name, arg], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const result = new Promise<string>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 || code === null ? resolve(output.trim().split('\n').at(-1) ?? '') : reject(new Error(`${name} exited with ${code}`))));
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (waitReady && output.startsWith('ready\n')) {
        waitReady = false;
        resolve({ child, result });
      }
    });
    if (!waitReady) resolve({ child, result });
    result.catch(reject);
  });
}

async function throughput(name: string, count: number) {
  const subscriber = await startChild(`${name}-throughput`);
  const publisher = await startChild('publisher', String(count), false);
  const sent = JSON.parse(await publisher.result) as { published: number; seconds: number };
  const got = JSON.parse(await subscriber.result) as { received: number; seconds: number; cpuSeconds: number; windows: number };
  return { rate: got.received / got.seconds, cpuMicros: (got.cpuSeconds * 1e6) / got.received, lost: count - got.received, windows: got.windows, publishRate: sent.published / sent.seconds };
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Sends readings at `latencyRate` through the relay and back; latencies of those after the first second. */
async function latency(name: string, seconds: number) {
  // `broker`: no relay, the measurer reads what the publisher sends: what the broker alone adds (one hop, not two).
  const relay = name === 'broker' ? undefined : await startChild(`${name}-relay`);
  const latencies: number[] = [];
  const warmupEnds = performance.now() + 1000;
  let received = 0;
  const measurer = await RawSubscriber.connect(url, relay ? 'w2/latency/out' : 'w2/latency/in', (payload, receivedAt) => {
    received++;
    const { sent } = JSON.parse(payload.toString()) as Reading;
    if (sent! >= warmupEnds) latencies.push(receivedAt - sent!);
  });
  const publisher = await RawPublisher.connect(url);
  const started = performance.now();
  const total = Math.round(latencyRate * (seconds + 1));
  let i = 0;
  // Every millisecond or so, send what is due, each stamped as it goes out.
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - started) * latencyRate) / 1000));
      const packets: Buffer[] = [];
      for (; i < due; i++) {
        packets.push(publishPacket('w2/latency/in', `{"ts":${Date.now()},"device":"dev-${i % devices}","value":${(i % 1000) / 10},"sent":${performance.now()}}`));
      }
      if (packets.length > 0) void publisher.write(Buffer.concat(packets));
      if (i >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  relay?.child.kill('SIGTERM');
  await relay?.result;
  await Promise.all([measurer.end(), publisher.end()]);
  const sorted = latencies.sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1)!, sent: total, received };
}

/** How long a stalled relay stops: what a GC pause or a busy core may cost. */
const stallMs = 25;

/**
 * The stream of the latency part, through a relay that is stopped (SIGSTOP)
 * for `stallMs` now and then, `count` times, and continued (SIGCONT): the
 * messages sent meanwhile wait on its socket and arrive in one large read.
 * Their latencies from when each was sent (those of the first five stalls
 * left out): the oldest waited the whole stall, so a relay that handles the
 * read whole before writing any of it adds that time to the longest waits.
 */
async function stalls(name: 'engine' | 'bare', count: number) {
  const relay = await startChild(`${name}-relay`);
  try {
    const perStall = Math.round((latencyRate * stallMs) / 1000);
    const latencies: number[] = [];
    const oldest: number[] = [];
    let received = 0;
    let done: () => void = () => undefined;
    const measurer = await RawSubscriber.connect(url, 'w2/latency/out', (payload, receivedAt) => {
      received++;
      const { sent, seq } = JSON.parse(payload.toString()) as Reading & { seq: number };
      if (seq >= 5 * perStall) {
        latencies.push(receivedAt - sent!);
        if (seq % perStall === 0) oldest.push(receivedAt - sent!);
      }
      if (seq % perStall === perStall - 1) done();
    });
    const publisher = await RawPublisher.connect(url);
    try {
      for (let stall = 0; stall < count; stall++) {
        relay.child.kill('SIGSTOP');
        const back = new Promise<void>((resolve) => (done = resolve));
        const started = performance.now();
        try {
          for (let i = 0; i < perStall; ) {
            const due = Math.min(perStall, Math.floor(((performance.now() - started) * latencyRate) / 1000) + 1);
            const packets: Buffer[] = [];
            for (; i < due; i++) {
              const seq = stall * perStall + i;
              packets.push(publishPacket('w2/latency/in', `{"ts":${Date.now()},"device":"dev-${seq % devices}","value":${(seq % 1000) / 10},"seq":${seq},"sent":${performance.now()}}`));
            }
            await publisher.write(Buffer.concat(packets));
            if (i < perStall) await new Promise((resolve) => setTimeout(resolve, 1));
          }
        } finally {
          relay.child.kill('SIGCONT');
        }
        await Promise.race([back, new Promise((resolve) => setTimeout(resolve, 2000))]);
        // Some steady time between stalls.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await Promise.all([measurer.end(), publisher.end()]);
    }
    const sorted = latencies.sort((a, b) => a - b);
    return { oldest: median(oldest), p99: percentile(sorted, 0.99), max: sorted.at(-1)!, sent: count * perStall, received };
  } finally {
    // Never left stopped, whatever failed: a stopped relay would not even act on SIGTERM.
    relay.child.kill('SIGCONT');
    relay.child.kill('SIGTERM');
    await relay.result;
  }
}

/** The 1-minute load average, to read the latencies by. */
function loadAverage(): string {
  return loadavg()[0].toFixed(1);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return children[process.argv[3]](process.argv[4]);
  const count = Number(process.argv[2] ?? 1_000_000);
  const rounds = Number(process.argv[3] ?? 1);
  const latencySeconds = Number(process.argv[4] ?? 5);
  latencyRate = Number(process.argv[5] ?? latencyRate);
  const began = performance.now();
  console.log(`W2 against ${url}: ${count.toLocaleString('en')} readings at QoS 0, ${rounds} round(s); latency at ${latencyRate.toLocaleString('en')} msg/s for ${latencySeconds} s`);

  const runs = new Map<string, Awaited<ReturnType<typeof throughput>>[]>();
  for (let round = 0; round < (count > 0 ? rounds : 0); round++) {
    for (const name of ['engine', 'bare']) {
      const run = await throughput(name, count);
      runs.set(name, [...(runs.get(name) ?? []), run]);
      console.log(`  ${name.padEnd(6)} round ${round + 1}: ${(run.rate / 1000).toFixed(1)} k msg/s received, ${run.cpuMicros.toFixed(2)} µs CPU per message, ${run.lost.toLocaleString('en')} lost (${((100 * run.lost) / count).toFixed(1)}%), ${run.windows.toLocaleString('en')} windows closed; broker took ${(run.publishRate / 1000).toFixed(1)} k msg/s from the publisher`);
    }
  }
  const med = (name: string, pick: (r: Awaited<ReturnType<typeof throughput>>) => number) => median(runs.get(name)!.map(pick));
  if (count > 0) {
    console.log('\nthroughput (medians)                  received   CPU/msg   lost at QoS 0');
    for (const [name, label] of [['engine', 'engine (subscribe→window→aggregate)'], ['bare', 'bare mqtt.js + hand aggregation']] as const) {
      const lost = med(name, (r) => r.lost);
      console.log(`  ${label.padEnd(36)} ${(med(name, (r) => r.rate) / 1000).toFixed(1).padStart(6)} k/s ${med(name, (r) => r.cpuMicros).toFixed(2).padStart(6)} µs ${lost.toLocaleString('en').padStart(9)} (${((100 * lost) / count).toFixed(1)}%)`);
    }
    console.log(`  engine / bare, messages per second received: ${(med('engine', (r) => r.rate) / med('bare', (r) => r.rate)).toFixed(2)} (aim >= 0.9)`);
    console.log(`  engine / bare, messages per CPU second:       ${(med('bare', (r) => r.cpuMicros) / med('engine', (r) => r.cpuMicros)).toFixed(2)} (what each could take with a core to itself)`);
  }

  if (latencySeconds > 0) await latencies(rounds, latencySeconds);
  console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(0)} s`);
}

/** The latency part: a steady stream, then the same stream through a relay that stalls now and then; every variant once a round. */
async function latencies(rounds: number, latencySeconds: number): Promise<void> {
  console.log(`\nlatency at ${latencyRate.toLocaleString('en')} msg/s, publisher -> relay -> measurer, after 1 s of warm-up`);
  type Latency = Awaited<ReturnType<typeof latency>>;
  const runs = new Map<string, Latency[]>();
  const variants = [['engine', 'engine (subscribe→decode→filter→publish)'], ['bare', 'bare mqtt.js relay'], ['broker', 'no relay: one hop through the broker']] as const;
  for (let round = 0; round < rounds; round++) {
    const load = loadAverage();
    for (const [name, label] of variants) {
      const l = await latency(name, latencySeconds);
      runs.set(name, [...(runs.get(name) ?? []), l]);
      console.log(`  round ${round + 1} ${label.padEnd(42)} p50 ${l.p50.toFixed(2)} ms   p99 ${l.p99.toFixed(2)} ms   max ${l.max.toFixed(1)} ms   (${l.received.toLocaleString('en')} of ${l.sent.toLocaleString('en')} back; load ${load})`);
    }
  }
  console.log(`\nthe same stream through a relay stopped for ${stallMs} ms now and then (SIGSTOP, SIGCONT): the messages sent meanwhile`);
  type Stall = Awaited<ReturnType<typeof stalls>>;
  const stallRuns = new Map<string, Stall[]>();
  const relays = [variants[0], variants[1]] as const;
  for (let round = 0; round < rounds; round++) {
    const load = loadAverage();
    for (const [name, label] of relays) {
      const stall = await stalls(name, 5 + latencySeconds * 5);
      stallRuns.set(name, [...(stallRuns.get(name) ?? []), stall]);
      console.log(`  round ${round + 1} ${label.padEnd(42)} oldest ${stall.oldest.toFixed(2)} ms   p99 ${stall.p99.toFixed(2)} ms   max ${stall.max.toFixed(1)} ms   (${stall.received.toLocaleString('en')} of ${stall.sent.toLocaleString('en')} back; load ${load})`);
    }
  }
  console.log(`\nlatency (medians of ${rounds} round(s))`);
  for (const [name, label] of relays) {
    const stall = (pick: (s: Stall) => number) => median(stallRuns.get(name)!.map(pick)).toFixed(2);
    console.log(`  ${label.padEnd(42)} with stalls: oldest ${stall((s) => s.oldest)} ms   p99 ${stall((s) => s.p99)} ms   max ${stall((s) => s.max)} ms`);
  }
  const medLatency = (name: string, pick: (l: Latency) => number) => median(runs.get(name)!.map(pick));
  for (const [name, label] of variants) {
    console.log(`  ${label.padEnd(42)} p50 ${medLatency(name, (l) => l.p50).toFixed(2)} ms   p99 ${medLatency(name, (l) => l.p99).toFixed(2)} ms   max ${medLatency(name, (l) => l.max).toFixed(1)} ms`);
  }
  // The relays of a round run a few seconds apart, under much the same load: their difference is steadier than either.
  const perRound = (pick: (engine: Latency, bare: Latency) => number) => median(runs.get('engine')!.map((engine, round) => pick(engine, runs.get('bare')![round])));
  console.log(`  engine minus bare relay, per round:        p50 ${perRound((e, b) => e.p50 - b.p50).toFixed(2)} ms   p99 ${perRound((e, b) => e.p99 - b.p99).toFixed(2)} ms   (p99 ratio ${perRound((e, b) => e.p99 / b.p99).toFixed(2)})`);
  console.log(`  engine p99 under 5 ms: ${medLatency('engine', (l) => l.p99) < 5 ? 'yes' : 'no'}`);
}

await main();
