/**
 * The cost of a media-packet edge between hosts, packed against one packet
 * a Kafka message, in one run: the edge as `streams worker` cuts it
 * (graph/host-graph.ts: `media.pack` → `kafka.produce` keyed by `stream` →
 * topic → `kafka.consume` with `format: bytes, unpack: true` → `media.unpack`),
 * once with `pack_bytes: 0` (a record of format 3) and once with 64KiB (format 4).
 *
 *   node bench/media-hop.ts [streams=20] [seconds=10] [rounds=3] [partitions=2] [pace=live|fast]
 *
 * Needs the broker of `test/services/start.sh kafka` (STREAMS_KAFKA_BROKERS,
 * default 127.0.0.1:9092). Both ends run in this process. Each stream is
 * live H.264 at 30 fps with a keyframe of 120 KB every 2 s (larger than a
 * pack: it goes alone) and 6 KB frames between, plus AAC at about 47
 * packets/s of 360 bytes: some 77 packets a second a stream, emitted when
 * they are due (an ingest's pace), those of every stream due in one turn
 * of the event loop in one batch (as `ingest.rtmp` batches), for `seconds`;
 * with `fast`, the same packets in batches of 50 as fast as the edge takes
 * them (what the edge can carry at most: a backlog after a cut).
 * Reports per variant the medians of the rounds (variants alternate within
 * a round): records per CPU-second of this process (both ends, from the
 * first packet emitted to the last one received), the Kafka broker's CPU
 * over the same time (from the pid file of `start.sh`, when there is one),
 * Kafka messages per packet (the topic's end offsets), latency
 * p50/p99 from emit to the receiving sink, and checks that every packet
 * arrived once, each stream's packets in order.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import type { MediaPacket } from '../media/packet.ts';
import { clientsClosed, openAdmin } from '../native/kafka/client.ts';
import { registry } from '../nodes/all.ts';
import { defineOperator, sinkBatches, z, type Batch, type Logger } from '../runtime/api.ts';
import { Engine } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { cpuMicros, median } from './cdn-targets.ts';
import { quantile } from './live-source.ts';

const streams = Number(process.argv[2] ?? 20);
const seconds = Number(process.argv[3] ?? 10);
const rounds = Number(process.argv[4] ?? 3);
const partitions = Number(process.argv[5] ?? 2);
const fast = process.argv[6] === 'fast';
/** At most this many packets a batch (in `fast`, every batch). */
const fastBatch = fast ? 50 : Infinity;
const brokerPidFile = join(process.env.STREAMS_SERVICES_DIR ?? '/tmp/ami-streams-services', 'kafka', 'kafka.pid');
const brokerPid = existsSync(brokerPidFile) ? Number(readFileSync(brokerPidFile, 'utf8')) : undefined;
const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const runId = randomUUID().slice(0, 8);
const topics: string[] = [];

const clock = (): number => performance.timeOrigin + performance.now();
const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};
/** CPU seconds the broker has used (utime + stime from /proc), NaN without its pid. */
const brokerCpuNow = (): number => (brokerPid === undefined ? Number.NaN : cpuMicros(brokerPid) / 1e6);

const video = { kind: 'video', codec: 'h264', codecString: 'avc1.64001f', timescale: 90000, config: Buffer.from([1, 0x64, 0, 0x1f, 0xff, 0xe1]), width: 1280, height: 720, fps: 30 } as const;
const audio = { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 48000, config: Buffer.from([0x11, 0x90]), sampleRate: 48000, channels: 2 } as const;
const keyframe = Buffer.alloc(120_000, 0x65);
const frame = Buffer.alloc(6_000, 0x41);
const aacFrame = Buffer.alloc(360, 0x21);

/** One stream's packets over `seconds`, in the order an ingest hands them on (by time), each with the ms it is due. */
function streamPackets(stream: string): { due: number; packet: MediaPacket }[] {
  const out: { due: number; packet: MediaPacket }[] = [];
  for (let i = 0; i < seconds * 30; i++) {
    const dts = i * 3000;
    out.push({ due: (i * 1000) / 30, packet: { stream, rendition: 'source', track: video, pts: dts, dts, keyframe: i % 60 === 0, data: i % 60 === 0 ? keyframe : frame } });
  }
  for (let i = 0; (i * 1024 * 1000) / 48000 < seconds * 1000; i++) {
    const dts = i * 1024;
    out.push({ due: (dts * 1000) / 48000, packet: { stream, rendition: 'source', track: audio, pts: dts, dts, keyframe: true, data: aacFrame } });
  }
  return out.sort((a, b) => a.due - b.due);
}

/** What the sink has seen of a run, from its start. */
const fresh = () => ({ count: 0, last: 0, cpuFirst: 0, cpuLast: 0, brokerFirst: 0, brokerLast: 0, latencies: [] as number[], outOfOrder: 0, lastDts: new Map<string, number>() });
const seen = fresh();
let expected = 0;

const mediaSource = defineOperator({
  name: 'bench.media',
  summary: 'Bench source: live media packets.',
  doc: 'Emits `streams` streams of video and audio packets at their pace, those due in one turn in one batch, stamped with `arrival`.',
  inputs: {},
  outputs: { out: { type: 'Media<*/*>', doc: 'Media packets.' } },
  settings: z.object({ streams: z.number().int() }),
  create(ctx) {
    return () =>
      new Observable<Batch>((subscriber) => {
        const all = Array.from({ length: ctx.settings.streams }, (_, s) => streamPackets(`cam${s}`))
          .flat()
          .sort((a, b) => a.due - b.due);
        void (async function emit() {
          const started = clock();
          seen.cpuFirst = cpuNow();
          seen.brokerFirst = brokerCpuNow();
          let next = 0;
          while (next < all.length && !ctx.signal.aborted) {
            const ready = ctx.ready();
            if (ready) await ready;
            const wait = fast ? 0 : started + all[next].due - clock();
            if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
            else await new Promise((resolve) => setImmediate(resolve));
            // As ingest.rtmp does: the packets of one turn of the event loop (every stream's that are due) in one batch.
            const now = clock();
            const items: MediaPacket[] = [];
            while (next < all.length && items.length < fastBatch && (fast || started + all[next].due <= now)) items.push({ ...all[next++].packet, arrival: now });
            if (items.length > 0) subscriber.next({ items, ack: ctx.newAck() });
          }
          subscriber.complete();
        })();
      });
  },
});

const mediaSink = defineOperator({
  name: 'bench.media-sink',
  summary: 'Bench sink: counts media packets, times them, checks order per stream and track.',
  doc: 'Counts packets, records latency from `arrival`, counts packets whose dts goes back within their stream and track.',
  inputs: { in: { type: 'Media<*/*>', doc: 'Media packets.' } },
  outputs: {},
  settings: z.object({}),
  create() {
    return sinkBatches(async (items: unknown[]) => {
      const now = clock();
      for (const item of items as MediaPacket[]) {
        seen.latencies.push(now - item.arrival!);
        const key = `${item.stream}/${item.track.kind}`;
        if ((seen.lastDts.get(key) ?? -1) >= item.dts) seen.outOfOrder++;
        seen.lastDts.set(key, item.dts);
      }
      seen.count += items.length;
      seen.last = now;
      seen.cpuLast = cpuNow();
      if (seen.count === expected) seen.brokerLast = brokerCpuNow();
    });
  },
});

const benchRegistry = new Map([...registry, ...[mediaSource, mediaSink].map((op) => [op.name, op] as const)]);

function engineOf(text: string, log: Logger = silentLogger): Engine {
  const checked = checkPipeline({ file: 'bench/media-hop.yaml', text, registry: benchRegistry, env: process.env });
  if (!checked.graph) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
  return new Engine(checked.graph, { registry: benchRegistry, log });
}

interface Result {
  perCpuSecond: number;
  /** The broker's CPU seconds per 1,000 packets. */
  brokerPerThousand: number;
  perSecond: number;
  messagesPerPacket: number;
  p50: number;
  p99: number;
}

/** One run of the edge with the producer's `pack_bytes`. */
async function run(packBytes: number): Promise<Result> {
  Object.assign(seen, fresh());
  const topic = `bench-media-${runId}-${topics.length}`;
  topics.push(topic);
  const admin = openAdmin(brokers, 'bench-media-hop');
  await admin.createTopic(topic, partitions);
  let joined!: () => void;
  const assigned = new Promise<void>((resolve) => (joined = resolve));
  const noticing: Logger & { child(): Logger } = { ...silentLogger, info: (_fields, message) => message.includes('partitions assigned') && joined(), child: () => noticing };
  const receiving = engineOf(
    `streams: 1
name: media-receive
nodes:
  receive: { op: kafka.consume, with: { brokers: "${brokers.join(',')}", topics: [${topic}], group: ${topic}, format: bytes, unpack: true, session_timeout: 6s } }
  unpack: { op: media.unpack, in: receive }
  sink: { op: bench.media-sink, in: unpack }
`,
    noticing,
  );
  receiving.start();
  await assigned;
  const sending = engineOf(`streams: 1
name: media-send
nodes:
  src: { op: bench.media, with: { streams: ${streams} } }
  pack: { op: media.pack, in: src }
  send: { op: kafka.produce, in: pack, with: { brokers: "${brokers.join(',')}", topic: ${topic}, key: stream, pack_bytes: ${packBytes} } }
`);
  const started = clock();
  sending.start();
  await sending.done;
  const deadline = Date.now() + 30_000;
  while (seen.count < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  await receiving.drain({ deadlineMs: 5000 });
  if (seen.count !== expected || seen.outOfOrder !== 0) throw new Error(`pack_bytes ${packBytes}: ${seen.count} of ${expected} packets arrived, ${seen.outOfOrder} out of order`);
  const messages = (await admin.endOffsets(topic)).reduce((sum, end) => sum + Number(end), 0);
  await admin.close();
  return { perCpuSecond: expected / (seen.cpuLast - seen.cpuFirst), brokerPerThousand: ((seen.brokerLast - seen.brokerFirst) * 1000) / expected, perSecond: expected / ((seen.last - started) / 1000), messagesPerPacket: messages / expected, p50: quantile(seen.latencies, 0.5), p99: quantile(seen.latencies, 0.99) };
}

const fmt = (r: Result) => `${Math.round(r.perSecond).toLocaleString('en')} packets/s, ${Math.round(r.perCpuSecond).toLocaleString('en')} packets/CPU-s, broker ${r.brokerPerThousand.toFixed(3)} CPU-s per 1,000 packets, ${r.messagesPerPacket.toFixed(3)} Kafka messages a packet, latency p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`;

const variants = [
  { label: 'one packet a message (pack_bytes 0, format 3)', packBytes: 0 },
  { label: 'packed (pack_bytes 64KiB, format 4)', packBytes: 64 * 1024 },
];

async function main(): Promise<void> {
  expected = streams * streamPackets('x').length;
  console.log(`media edge between hosts: ${streams} streams x ${seconds} s (${fast ? 'as fast as the edge takes them' : `${(expected / seconds).toFixed(0)} packets/s`}, ${expected} a round), ${partitions} partitions, ${rounds} rounds, brokers ${brokers.join(',')}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const results = variants.map(() => [] as Result[]);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [i, variant] of variants.entries()) {
        results[i].push(await run(variant.packBytes));
        console.log(`round ${round}: ${variant.label}: ${fmt(results[i].at(-1)!)}`);
      }
    }
  } finally {
    const admin = openAdmin(brokers, 'bench-media-hop');
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
    await clientsClosed();
  }
  const mid = (list: Result[]): Result => ({ perSecond: median(list.map((r) => r.perSecond)), brokerPerThousand: median(list.map((r) => r.brokerPerThousand)), perCpuSecond: median(list.map((r) => r.perCpuSecond)), messagesPerPacket: median(list.map((r) => r.messagesPerPacket)), p50: median(list.map((r) => r.p50)), p99: median(list.map((r) => r.p99)) });
  const [single, packed] = results.map(mid);
  for (const [i, result] of [single, packed].entries()) console.log(`median ${variants[i].label}: ${fmt(result)}`);
  console.log(`packed vs one a message: ${(packed.perCpuSecond / single.perCpuSecond).toFixed(2)}x the packets per CPU-second, ${(packed.brokerPerThousand / single.brokerPerThousand).toFixed(2)}x the broker's CPU a packet, ${(packed.messagesPerPacket / single.messagesPerPacket).toFixed(3)}x the Kafka messages; every packet arrived once, in order per stream; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

await main();
