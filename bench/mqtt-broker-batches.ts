/**
 * How `mqtt.broker` batches what publishers send, measured: a raw publisher
 * sends COUNT JSON readings at QoS 0 as fast as the broker reads them, into
 * `mqtt.broker -> window.tumbling 1s -> aggregate -> discard`, once with
 * the broker's batching (`brokerBatching`: up to 1024 records, no wait) and
 * once with the one `mqtt.subscribe` uses (`clientBatching`: 128 and a turn
 * of the event loop after each full batch), the baseline. Aedes hands a
 * socket read's messages over in parallel, so the smaller batches should
 * only cost more per record. Messages per second received and CPU per
 * message in the engine's process (each variant a process of its own, one
 * after the other, alternating per round).
 *
 *   node bench/mqtt-broker-batches.ts [count=500000] [rounds=3]
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import mqttBroker from '../nodes/messaging/mqtt-broker.ts';
import { brokerBatching, clientBatching, type Batching } from '../nodes/messaging/mqtt/messages.ts';
import { registry } from '../nodes/all.ts';
import type { OperatorDefinition } from '../runtime/api.ts';
import { publishPacket, RawPublisher } from './mqtt-raw-client.ts';
import { freePort } from '../test/helpers/net.ts';
import { discard, startBenchEngine, whenIdle } from './bench-engine.ts';
import { median } from './cdn-targets.ts';

const devices = 100;
/** The engine is done once nothing has come for this long. */
const idleMs = 1500;
const variants: Record<string, Batching> = { broker: { ...brokerBatching }, client: { ...clientBatching } };


/** The engine's process: the broker batching as `variant` says; prints `ready`, then its figures once idle. */
async function engineChild(variant: string, port: string): Promise<void> {
  Object.assign(brokerBatching, variants[variant]);
  const operators = new Map<string, OperatorDefinition>([...registry, ...[mqttBroker, discard].map((op) => [op.name, op] as const)]);
  const nodes = {
    sensors: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}`, topics: ['readings/#'], format: 'json' } },
    'per-second': { op: 'window.tumbling', in: 'sensors', with: { size: '1s', time: 'ts', key: 'device' } },
    stats: { op: 'aggregate', in: 'per-second', with: { count: 'count()', avg: 'avg(value)' } },
    out: { op: 'bench.discard', in: 'stats' },
  };
  const engine = await startBenchEngine('broker', nodes, operators, /broker listening/);
  const stats = engine.runners.get('sensors')!.stats;
  process.stdout.write('ready\n');
  whenIdle(() => stats.recordsOut, idleMs, async () => {
    await engine.drain({ deadlineMs: 2_000 });
    return {};
  });
}


/** One run: the engine in a child with `variant`, fed `count` readings from here. */
async function run(variant: string, count: number) {
  const port = await freePort();
  const child = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child', variant, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const exited = new Promise<string>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(output.trim().split('\n').at(-1) ?? '') : reject(new Error(`the ${variant} engine exited with ${code}`))));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.startsWith('ready\n')) resolve();
      });
      exited.catch(reject);
    });
    const publisher = await RawPublisher.connect(`mqtt://127.0.0.1:${port}`);
    for (let i = 0; i < count; ) {
      const end = Math.min(count, i + 500);
      const ts = Date.now();
      const packets: Buffer[] = [];
      for (; i < end; i++) packets.push(publishPacket(`readings/dev-${i % devices}`, `{"ts":${ts},"device":"dev-${i % devices}","value":${(i % 1000) / 10}}`));
      await publisher.write(Buffer.concat(packets));
    }
    await publisher.end();
    const got = JSON.parse(await exited) as { received: number; seconds: number; cpuSeconds: number };
    return { rate: got.received / got.seconds, cpuMicros: (got.cpuSeconds * 1e6) / got.received, lost: count - got.received };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return engineChild(process.argv[3], process.argv[4]);
  const count = Number(process.argv[2] ?? 500_000);
  const rounds = Number(process.argv[3] ?? 3);
  console.log(`mqtt.broker batching: ${count.toLocaleString('en')} readings at QoS 0, ${rounds} round(s); load ${loadavg()[0].toFixed(1)}`);
  const runs = new Map<string, Awaited<ReturnType<typeof run>>[]>();
  for (let round = 0; round < rounds; round++) {
    // Alternating which goes first, so neither always runs on a warmer machine.
    const order = round % 2 === 0 ? ['broker', 'client'] : ['client', 'broker'];
    for (const variant of order) {
      const result = await run(variant, count);
      runs.set(variant, [...(runs.get(variant) ?? []), result]);
      console.log(`  round ${round + 1} ${variant.padEnd(6)} ${(result.rate / 1000).toFixed(1)} k msg/s, ${result.cpuMicros.toFixed(2)} µs CPU per message, ${result.lost} lost; load ${loadavg()[0].toFixed(1)}`);
    }
  }
  const med = (variant: string, pick: (r: Awaited<ReturnType<typeof run>>) => number) => median(runs.get(variant)!.map(pick));
  console.log(`\nmedians                                   received   CPU/msg`);
  for (const [variant, label] of [['broker', 'brokerBatching (1024, no turn)'], ['client', 'clientBatching (128 + turn), baseline']] as const) {
    console.log(`  ${label.padEnd(38)} ${(med(variant, (r) => r.rate) / 1000).toFixed(1).padStart(6)} k/s ${med(variant, (r) => r.cpuMicros).toFixed(2).padStart(6)} µs`);
  }
  console.log(`  broker / baseline, messages per second: ${(med('broker', (r) => r.rate) / med('client', (r) => r.rate)).toFixed(2)}`);
  console.log(`  baseline / broker, CPU per message:     ${(med('client', (r) => r.cpuMicros) / med('broker', (r) => r.cpuMicros)).toFixed(2)}`);
}

await main();
