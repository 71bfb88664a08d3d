/**
 * M2 availability, the in-process part: how long after the packet that
 * closes a part or segment arrives does `segment.hls` emit it? Packets of
 * 720p30 streams (4.6 Mbit/s video, AAC audio, 2 s GOP) are fed one batch
 * each, as fast as possible (or paced at real time with `--realtime`);
 * each part and segment's delay is measured from handing its closing
 * packet to the node to the item coming out. The baseline is the same loop
 * through a node that only copies each packet, measured per packet.
 * Also printed: the process's CPU time per second of media per stream,
 * for the M2b capacity budget (with `--realtime` it includes the pacing
 * loop, as the baseline row shows).
 *
 *   node bench/m2-availability.ts [streams=4] [seconds=60] [--realtime]
 */
import { Subject, map } from 'rxjs';
import segmentHls from '../nodes/media/segment-hls.ts';
import { Ack, type Batch, type NodeFunction } from '../runtime/api.ts';
import type { MediaPacket } from '../media/packet.ts';
import type { CmafItem } from '../media/segment.ts';
import { fakeContext } from '../test/helpers/fake-context.ts';
import { syntheticStream } from '../test/media/synthetic-media.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const streams = Number(args[0] ?? 4);
const seconds = Number(args[1] ?? 60);
const realtime = process.argv.includes('--realtime');

function interleaved(): MediaPacket[] {
  const all: MediaPacket[] = [];
  for (let s = 0; s < streams; s++) {
    // ~19 KB frames at 30 fps: 4.6 Mbit/s, the M2b publish. 61 frames of 33 ms: keyframes 2.013 s apart, so 2 s segments.
    all.push(...syntheticStream({ stream: `s${s}`, duration: seconds * 1000, frame: 33, gop: 61, audio: true, size: 19_000 }));
  }
  // One buffer per frame size: the packets the bench holds must not weigh on the collector the packager meets.
  const shared = new Map<number, Buffer>();
  for (const packet of all) {
    const size = packet.data.length;
    if (!shared.has(size)) shared.set(size, packet.data);
    packet.data = shared.get(size)!;
  }
  return all.sort((a, b) => a.dts - b.dts);
}

interface Figures {
  delays: number[];
  /** CPU time of the process over the run (user + system), ms: the pacing loop's too, the same for every row. */
  busy: number;
  items: number;
}

async function measure(node: NodeFunction, packets: MediaPacket[], counts: (item: unknown) => boolean, paced = realtime): Promise<Figures> {
  const input = new Subject<Batch>();
  const delays: number[] = [];
  let sentAt = 0;
  let items = 0;
  node(input).subscribe((batch) => {
    const delay = performance.now() - sentAt;
    for (const item of batch.items) {
      items += 1;
      if (counts(item)) delays.push(delay);
    }
  });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (const packet of packets) {
    if (paced) {
      const due = started + packet.dts;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    packet.arrival = Date.now();
    sentAt = performance.now();
    input.next({ items: [packet], ack: Ack.none() });
  }
  input.complete();
  const cpu = process.cpuUsage(cpuBefore);
  return { delays, busy: (cpu.user + cpu.system) / 1000, items };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const copyNode: NodeFunction = (input) => input.pipe(map((batch) => ({ items: (batch.items as MediaPacket[]).map((p) => ({ ...p, data: Buffer.from(p.data) })), ack: batch.ack })));

const packets = interleaved();
const mediaSeconds = seconds * streams;
console.log(`${streams} streams × ${seconds} s of 720p30 (4.6 Mbit/s) + AAC: ${packets.length} packets, ${realtime ? 'paced at real time' : 'as fast as possible'}`);

// One warm-up pass of each, so the JIT has seen both loops.
await measure(copyNode, interleaved(), () => true, false);
await measure(segmentHls.create(fakeContext(segmentHls, { segment: '2s', part: '200ms' })), interleaved(), () => false, false);

const baseline = await measure(copyNode, packets, () => true);
for (const packet of packets) delete packet.arrival;
const partsOn = await measure(segmentHls.create(fakeContext(segmentHls, { segment: '2s', part: '200ms' })), packets, (item) => (item as CmafItem).type === 'part');
const segmentsWithParts = await measure(segmentHls.create(fakeContext(segmentHls, { segment: '2s', part: '200ms' })), packets, (item) => (item as CmafItem).type === 'segment');
const segmentsOn = await measure(segmentHls.create(fakeContext(segmentHls, { segment: '2s' })), packets, (item) => (item as CmafItem).type === 'segment');

const ms = (value: number): string => `${value.toFixed(3)} ms`;
const row = (name: string, f: Figures): void => {
  const p50 = quantile(f.delays, 0.5);
  const p95 = quantile(f.delays, 0.95);
  const base50 = quantile(baseline.delays, 0.5);
  const base95 = quantile(baseline.delays, 0.95);
  console.log(
    `${name.padEnd(28)} n=${String(f.delays.length).padStart(6)}  p50 ${ms(p50)} (${(p50 / base50).toFixed(1)}× baseline)  p95 ${ms(p95)} (${(p95 / base95).toFixed(1)}× baseline)  CPU ${((f.busy / (mediaSeconds * 1000)) * 100).toFixed(3)} % of a core per stream`,
  );
};
console.log(`${'baseline: copy each packet'.padEnd(28)} n=${String(baseline.delays.length).padStart(6)}  p50 ${ms(quantile(baseline.delays, 0.5))}  p95 ${ms(quantile(baseline.delays, 0.95))}  CPU ${((baseline.busy / (mediaSeconds * 1000)) * 100).toFixed(3)} % of a core per stream`);
row('part listed (200 ms parts)', partsOn);
row('segment listed (with parts)', segmentsWithParts);
row('segment listed (no parts)', segmentsOn);
