/**
 * The live memory of the soak's window state, measured in one process and
 * independent of how fast a shared machine lets the pipeline run: the
 * fused `window.sliding` (10 s every 1 s) + `aggregate` (count, avg,
 * quantile, distinct) of `bench/soak.ts`, fed 15 s of event time at
 * 50,000 records/s over 500 keys, then the live heap it holds (after a full
 * collection) and the time it took to fold.
 *
 *   node --expose-gc bench/window-state.ts [rate=50000] [keys=500]
 */
import { Subject } from 'rxjs';
import sliding from '../nodes/events/window-sliding.ts';
import aggregate from '../nodes/events/aggregate.ts';
import { Ack, type Batch, type EventRecord } from '../runtime/api.ts';
import { fakeContext } from '../test/helpers/fake-context.ts';

const rate = Number(process.argv[2] ?? 50_000);
const keys = Number(process.argv[3] ?? 500);
const seconds = 15;
const batchSize = 500;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function liveMb(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** mulberry32, as `generate` uses: the same records every run. */
let seed = 1;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const ctx = fakeContext(sliding, { size: '10s', every: '1s', time: 'ts', key: 'device' });
const stats = fakeContext(aggregate, { count: 'count()', avg: 'avg(value)', p99: 'quantile(value, 0.99)', users: 'distinct(user)' });
const input = new Subject<Batch>();
let emitted = 0;
sliding.fuse!.aggregate(ctx, stats)(input).subscribe((batch) => {
  emitted += batch.items.length;
  batch.ack.release();
});

const before = liveMb();
const started = performance.now();
const start = 1_700_000_000_000;
const total = rate * seconds;
for (let i = 0; i < total; i += batchSize) {
  const items: EventRecord[] = [];
  for (let k = 0; k < batchSize; k++) {
    const n = Math.floor(random() * 2147483648);
    items.push({ device: `dev-${n % keys}`, user: n % 2000, value: random() * 100, ts: start + Math.floor(((i + k) / rate) * 1000) });
  }
  input.next({ items, ack: Ack.none() });
}
const foldSeconds = (performance.now() - started) / 1000;
const after = liveMb();
console.log(`${total.toLocaleString('en')} records over ${keys} keys (${seconds} s of event time at ${rate.toLocaleString('en')}/s): ${emitted.toLocaleString('en')} window results`);
// The snapshot's pane count also keeps the node's state reachable up to here.
const open = (ctx.takeSnapshot() as { panes: unknown[] }).panes.length;
console.log(`live heap held by the open windows: ${(after - before).toFixed(1)} MB in ${open.toLocaleString('en')} saved panes   folding took ${foldSeconds.toFixed(2)} s (${(total / foldSeconds / 1000).toFixed(0)}k records/s)`);
