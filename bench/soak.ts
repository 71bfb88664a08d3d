/**
 * Soak: memory of a long run. The pipeline `generate` (50k records/s, 500
 * keys) → `filter` → `window.sliding` (10 s every 1 s) → `aggregate`
 * (count, avg, quantile, distinct) → `file.write` runs as `streams run` in a
 * child process; every sample interval this prints the child's RSS and V8
 * heap, and at the end the least-squares slope of each after the warm-up.
 * Aim: flat, an RSS slope under 0.2 MB/min. The warm-up is 5 minutes: RSS
 * climbs for that long while V8 sizes its spaces for the load (the live heap
 * is flat from the first minute).
 *
 * Measured 2026-12-03, 30 minutes at 49.7k/s of 50k/s (load 2-11): RSS 298 MB
 * at minute 1, 368 MB at minute 6, 368.9 MB at minute 29; slope after 5
 * minutes 0.08 MB/min, after 10 0.06 (after 2: 0.30, the climb); live heap
 * after full GC 31 MB throughout (-0.06 MB/min); peak RSS 369 MB.
 *
 *   node bench/soak.ts [--minutes 30] [--warmup 5] [--every 60] [--rate 50000]
 *                      [--keys 500] [--size 10s] [--slide 1s] [--out PATH]
 *                      [--snapshots DIR --snapshot-at 3,8] [--node-flags FLAGS]
 *
 * Run it niced on a shared machine (`nice -n 10 node bench/soak.ts`).
 * `--snapshots` writes V8 heap snapshots of the child into DIR at the given
 * minutes (compare two with `node bench/heap-diff.ts A B`). The child runs
 * with the same Node flags as the `streams` command (its shebang line), or
 * those of `--node-flags` (`--node-flags ''` for none, as `node bin/streams.ts`).
 * Memory is sampled inside the child by `bench/soak-probe.ts` (a timer that
 * reads `process.memoryUsage()`, nothing more); peak RSS is the kernel's
 * VmHWM of the child.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin/streams.ts');
const probe = join(root, 'bench/soak-probe.ts');
const aimMbPerMin = 0.2;

const { values: options } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    every: { type: 'string', default: '60' },
    rate: { type: 'string', default: '50000' },
    keys: { type: 'string', default: '500' },
    size: { type: 'string', default: '10s' },
    slide: { type: 'string', default: '1s' },
    out: { type: 'string', default: '/dev/null' },
    snapshots: { type: 'string' },
    'snapshot-at': { type: 'string', default: '' },
    'node-flags': { type: 'string' },
  },
});
const minutes = Number(options.minutes);
const warmupMinutes = Number(options.warmup);
const everySeconds = Number(options.every);
const snapshotMinutes = options['snapshot-at'] ? options['snapshot-at'].split(',').map(Number) : [];

interface Sample {
  minute: number;
  rssMb: number;
  heapMb: number;
  /** Heap in use after the last full collection: the live heap. */
  liveMb: number;
  /** Records generated so far (from the child's metrics). */
  generated: number;
}

/** The soaked pipeline; `distinct` counts users, of which there are 2,000. */
function pipelineYaml(): string {
  return `streams: 1
name: soak
nodes:
  readings:
    op: generate
    with:
      rate: ${Number(options.rate)}
      fields:
        device: '"dev-" + string(random_int % ${Number(options.keys)})'
        user: random_int % 2000
        value: random * 100.0
        ts: now
  valid:
    op: filter
    in: readings
    with: { where: "value >= 1.0" }
  windows:
    op: window.sliding
    in: valid
    with: { size: ${options.size}, every: ${options.slide}, time: ts, key: device }
  stats:
    op: aggregate
    in: windows
    with: { count: count(), avg: avg(value), p99: "quantile(value, 0.99)", users: distinct(user) }
  out:
    op: file.write
    in: stats
    with: { path: ${JSON.stringify(resolve(options.out))}, mode: truncate }
`;
}

/** The Node flags the `streams` command starts with: those on its shebang line. */
function commandNodeFlags(): string[] {
  const shebang = readFileSync(bin, 'utf8').split('\n', 1)[0];
  const words = shebang.replace(/^#!/, '').trim().split(/\s+/);
  return words.slice(words.findIndex((word) => /(^|\/)node$/.test(word)) + 1).filter((word) => word.startsWith('--'));
}

/** Peak resident set of a live process, in MB (Linux), or NaN. */
function peakRssMb(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** A free loopback port for the child's `--metrics` endpoint. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.once('error', fail);
  });
}

/**
 * Records the generator has emitted so far, from the child's Prometheus
 * endpoint (a scrape a sample, as a monitored run would have), or NaN.
 */
async function generated(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const match = /^streams_node_records_out_total\{[^}]*node="readings"[^}]*\} (\S+)$/m.exec(text);
    return match ? Number(match[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Least-squares slope of y over x; NaN with fewer than two points. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  return sxy / sxx;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'ami-streams-soak-'));
  const pipeline = join(work, 'soak.yaml');
  writeFileSync(pipeline, pipelineYaml());
  const snapshotDir = options.snapshots ? resolve(options.snapshots) : undefined;
  if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
  const baseFlags = options['node-flags'] === undefined ? commandNodeFlags() : options['node-flags'].split(/\s+/).filter(Boolean);
  const nodeFlags = [...baseFlags, ...(snapshotDir ? ['--heapsnapshot-signal=SIGUSR2'] : []), '--import', probe];
  console.log(`soak: ${minutes} min, rate ${options.rate}/s, ${options.keys} keys, window.sliding ${options.size} every ${options.slide}; warm-up ${warmupMinutes} min; sample every ${everySeconds} s`);
  console.log(`child: node ${nodeFlags.join(' ')} bin/streams.ts run ${pipeline}`);

  // fd 3 is the probe's pipe; heap snapshots land in the child's working folder.
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeFlags, bin, 'run', pipeline, '--log-level', 'warn', '--metrics', String(port)], {
    cwd: snapshotDir ?? work,
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, SOAK_PROBE_FD: '3', SOAK_PROBE_MS: String(everySeconds * 1000) },
  });
  const started = Date.now();
  const samples: Sample[] = [];
  let peak = NaN;
  let lastCount = 0;
  let lastAt = started;
  const probeLines = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
  probeLines.on('line', async function onSample(line) {
    const { at, rss, heapUsed, heapAfterGc, heapTotal } = JSON.parse(line) as { at: number; rss: number; heapUsed: number; heapAfterGc: number | null; heapTotal: number };
    const count = await generated(port);
    const sample = { minute: (at - started) / 60000, rssMb: rss / 2 ** 20, heapMb: heapUsed / 2 ** 20, liveMb: (heapAfterGc ?? NaN) / 2 ** 20, generated: count };
    samples.push(sample);
    peak = peakRssMb(child.pid!);
    const rate = (count - lastCount) / ((Date.now() - lastAt) / 1000);
    [lastCount, lastAt] = [count, Date.now()];
    console.log(
      `${sample.minute.toFixed(1).padStart(6)} min   RSS ${sample.rssMb.toFixed(1).padStart(7)} MB   heap used ${sample.heapMb.toFixed(1).padStart(7)} MB   after full GC ${sample.liveMb.toFixed(1).padStart(6)} MB   heap total ${(heapTotal / 2 ** 20).toFixed(0)} MB   peak RSS ${peak.toFixed(1)} MB   generated ${(rate / 1000).toFixed(1)}k/s`,
    );
  });

  const snapshotTimers = snapshotMinutes.map((minute) =>
    setTimeout(function takeSnapshot() {
      console.log(`${minute.toFixed(1).padStart(6)} min   heap snapshot requested (into ${snapshotDir})`);
      child.kill('SIGUSR2');
    }, minute * 60000),
  );
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const deadline = new Promise<'time'>((done) => setTimeout(() => done('time'), minutes * 60000));
  const first = await Promise.race([exited, deadline]);
  for (const timer of snapshotTimers) clearTimeout(timer);
  if (first !== 'time') throw new Error(`streams run exited early with code ${String(first)}`);
  peak = peakRssMb(child.pid!);
  child.kill('SIGTERM');
  await exited;
  rmSync(work, { recursive: true, force: true });

  const after = samples.filter((s) => s.minute >= warmupMinutes);
  const rssSlope = slope(after.map((s) => ({ x: s.minute, y: s.rssMb })));
  const heapSlope = slope(after.map((s) => ({ x: s.minute, y: s.heapMb })));
  const liveSlope = slope(after.filter((s) => Number.isFinite(s.liveMb)).map((s) => ({ x: s.minute, y: s.liveMb })));
  const atWarmup = after[0];
  console.log(`after the ${warmupMinutes}-min warm-up (${after.length} samples, from RSS ${atWarmup?.rssMb.toFixed(1)} MB, heap ${atWarmup?.heapMb.toFixed(1)} MB):`);
  console.log(`  RSS slope ${rssSlope.toFixed(3)} MB/min   heap slope ${heapSlope.toFixed(3)} MB/min   heap-after-GC slope ${liveSlope.toFixed(3)} MB/min   peak RSS ${peak.toFixed(1)} MB`);
  // On a busy machine the pipeline may not keep up with the rate asked: memory depends on what it reached.
  const reached = after.length > 1 ? (after.at(-1)!.generated - after[0].generated) / ((after.at(-1)!.minute - after[0].minute) * 60) : NaN;
  console.log(`  records generated after the warm-up: ${(reached / 1000).toFixed(1)}k/s of the ${(Number(options.rate) / 1000).toFixed(1)}k/s asked`);
  // Printed beside it, so that a slow growth cannot hide behind a long warm-up.
  const early = samples.filter((s) => s.minute >= 2);
  if (warmupMinutes > 2 && early.length > 1) console.log(`  RSS slope after 2 minutes (the climb to the plateau included): ${slope(early.map((s) => ({ x: s.minute, y: s.rssMb }))).toFixed(3)} MB/min`);
  console.log(`  aim: flat, RSS slope under ${aimMbPerMin} MB/min: ${rssSlope < aimMbPerMin ? 'met' : 'NOT met'}`);
}

await main();
