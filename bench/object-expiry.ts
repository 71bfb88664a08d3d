/**
 * What `retain` costs: the time of one sweep of a store holding N objects
 * (a track-hour of LL-HLS at 250 ms parts and 2 s segments is about 16,000
 * objects), against baselines measured the same way in the same run.
 *
 *   node bench/object-expiry.ts [objects=2000] [runs=3]
 *
 * Stores: a folder in the temporary folder, and a bucket on the versitygw
 * of `test/services/start.sh versitygw` when STREAMS_S3_URL is set (the
 * bucket is made and removed here).
 *
 * For each run and store:
 * - put: writing the N objects (1 KiB each, 8 at once, as `objects.put`);
 * - list: a bare `list()` of them, the floor of any sweep;
 * - keep: a sweep that finds nothing old (the steady state of a live
 *   stream: what every sweep interval costs); ratio to `list`. These two
 *   are measured five times each, interleaved, and their medians taken;
 * - expire: a sweep that deletes all N; deletes per second against puts
 *   per second.
 * Prints medians over the runs, and the load average.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBucket, openObjectStore, removeBucket, s3SettingsFromEnv } from '../native/s3/client.ts';
import type { ObjectStore } from '../native/s3/object-store.ts';
import { ObjectExpiry } from '../nodes/objects/expiry.ts';
import { isInitKey } from '../nodes/objects/reference.ts';
import { inParallel } from '../nodes/objects/transfer.ts';

const count = Number(process.argv[2] ?? 2000);
const runs = Number(process.argv[3] ?? 3);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Keys as `objects.put` names them: two tracks, each an init then parts and segments. */
function keys(): string[] {
  const out: string[] = [];
  for (const track of ['v', 'a']) out.push(`cam/${track}/init-e-0123456789ab.mp4`);
  for (let i = 0; out.length < count; i++) {
    const track = i % 2 === 0 ? 'v' : 'a';
    const msn = Math.floor(i / 18);
    out.push(i % 9 === 8 ? `cam/${track}/e-${msn}.m4s` : `cam/${track}/e-${msn}.${i % 9}.m4s`);
  }
  return out;
}

async function timed(task: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await task();
  return performance.now() - start;
}

/** One run on a fresh store: the four timings in ms. */
async function runOnce(store: ObjectStore): Promise<{ put: number; list: number; keep: number; expire: number }> {
  const body = randomBytes(1024);
  const put = await timed(() => inParallel(keys().map((key) => async () => ({ ok: true as const, value: await store.put(key, body) })), 8));
  let clock = Date.now();
  const expiry = new ObjectExpiry({ store: () => store, retain: 3_600_000, now: () => clock, schedule: () => () => undefined, isInit: isInitKey });
  // Interleaved, five of each: on a loaded machine one timing of each says little.
  const lists: number[] = [];
  const keeps: number[] = [];
  for (let i = 0; i < 5; i++) {
    lists.push(await timed(async () => {
      if ((await store.list()).length !== count) throw new Error('the store does not hold what was written');
    }));
    keeps.push(await timed(async () => {
      if ((await expiry.sweep()).expired !== 0) throw new Error('a young object was swept');
    }));
  }
  const list = median(lists);
  const keep = median(keeps);
  clock += 7_200_000;
  const expire = await timed(async () => {
    if ((await expiry.sweep()).expired !== count) throw new Error('not every old object was swept');
  });
  return { put, list, keep, expire };
}

async function bench(name: string, open: () => ObjectStore): Promise<void> {
  const results: Array<Awaited<ReturnType<typeof runOnce>>> = [];
  for (let i = 0; i < runs; i++) {
    const store = open();
    try {
      results.push(await runOnce(store));
    } finally {
      store.close();
    }
  }
  const m = (pick: (r: (typeof results)[number]) => number) => median(results.map(pick));
  const perSecond = (ms: number) => Math.round((count / ms) * 1000);
  console.log(`${name}: ${count} objects, median of ${runs}`);
  console.log(`  put     ${m((r) => r.put).toFixed(0)} ms (${perSecond(m((r) => r.put))} objects/s)`);
  console.log(`  list    ${m((r) => r.list).toFixed(1)} ms (baseline)`);
  console.log(`  keep    ${m((r) => r.keep).toFixed(1)} ms: a sweep that deletes nothing, ${(m((r) => r.keep) / m((r) => r.list)).toFixed(2)}x the bare list`);
  console.log(`  expire  ${m((r) => r.expire).toFixed(0)} ms (${perSecond(m((r) => r.expire))} deletes/s, ${(perSecond(m((r) => r.expire)) / perSecond(m((r) => r.put))).toFixed(2)}x the put rate)`);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-expiry-'));
try {
  let n = 0;
  await bench('folder store', () => openObjectStore(join(dir, `run-${n++}`)));
  const s3 = s3SettingsFromEnv();
  if (s3.endpoint !== undefined && s3.accessKey !== undefined) {
    const bucket = `bench-expiry-${randomBytes(4).toString('hex')}`;
    await createBucket(s3, bucket);
    try {
      let m = 0;
      await bench(`versitygw ${s3.endpoint}`, () => openObjectStore(`s3://${bucket}/run-${m++}`, { s3 }));
    } finally {
      await removeBucket(s3, bucket);
    }
  } else console.log('versitygw: skipped (STREAMS_S3_URL not set; source /tmp/ami-streams-services/env.sh)');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
