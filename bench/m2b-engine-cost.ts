/**
 * The engine's CPU per live stream, two or three engines side by side in
 * one run: `N` 720p30 RTMP publishes (the M2b source, see
 * `m2b-capacity.ts`) passed through `ingest.rtmp` → `segment.hls` (2 s
 * segments, 200 ms parts) → `serve.http`, each engine in its own process
 * with its own ports, fed the same packets at the same instants: every tee
 * ffmpeg (`per-ffmpeg` streams each) writes each stream to every engine.
 * Load from the rest of the machine then falls on all engines alike, and
 * the ratio of their CPU over the same window is the figure to quote for a
 * change; it is repeated `rounds` times and the median given.
 *
 * Engines: `this` (this checkout), `baseline` with `--against DIR` (DIR
 * holds another checkout's `bin/streams.ts`: `git archive COMMIT | tar -x
 * -C DIR` and link `node_modules`), and `flags` with `--flags="..."` (this
 * checkout with extra node flags, e.g.
 * `--external-memory-accounted-in-global-limit`). In each window: each
 * engine's CPU from /proc (all its threads, GC helpers included) as % of
 * one core per stream, and part availability on a few streams (blocking
 * reloads, answer − `X-Streams-Closed-At`; `--viewers K` holds K at once on
 * each, as K players of a stream would), and its resident memory (mean
 * and peak of a sample a second). `--profile` runs every engine
 * under `--cpu-prof` and prints where each one's time went over the
 * windows (`cpu-profile.ts`). Every ffmpeg is killed at the end, on Ctrl-C
 * and on errors (live-source.ts).
 *
 *   node bench/m2b-engine-cost.ts [streams=30] [window=20] [rounds=3] [per-ffmpeg=10] [--against DIR] [--flags="..."] [--viewers K] [--profile]
 *
 * Loopback ports 19490-19499 (this), 19500-19509 (baseline), 19510-19519 (flags).
 *
 * Measured 2026-12-03 on the shared 2-core machine (load 9-18), 20 s windows, median of the paired ratios
 * old / new engine CPU per stream:
 * - media buffers counted in V8's global heap limit (bin/streams.ts) against the build before (37f1bd5):
 *   1.48x, 1.54x, 1.73x at 20 streams, 1.61x at 30, 1.58x at 40, 1.49x at 60; resident memory mean/peak
 *   718/1027 MB against 561/563 MB at 30 streams, 2746/2768 against 960/970 MB at 60;
 * - a held request's abort without a DOMException, with `--viewers 25`: 1.14x (1.12-1.15);
 * - tried and not kept: `--max-semi-space-size=16` 0.97x, `=1` none, `=32` on top of the change none and more
 *   memory; `--single-threaded-gc` on top of it 1.09x (0.90-1.10: no clear sign); RTMP bodies cut from
 *   256 KB slabs instead of one allocation each 1.07x (0.90-1.23); a playlist rendered once per change for
 *   25 viewers of a stream 0.97x (answering the requests costs far more than rendering).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { cpuMicros, loadAverage, median } from './cdn-targets.ts';
import { printProfile, profileClock, summariseProfiles } from './cpu-profile.ts';
import { root } from './dist.ts';
import { ensureLiveSource, publishTee, quantile, spawnTracked, stop, untilServing } from './live-source.ts';
import { listedPositions, partAvailability, residentMegabytes, untilListed } from './live-probes.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { against: { type: 'string' }, flags: { type: 'string' }, viewers: { type: 'string', default: '1' }, profile: { type: 'boolean', default: false } } });
const streamCount = Number(positionals[0] ?? 30);
const windowSeconds = Number(positionals[1] ?? 20);
const rounds = Number(positionals[2] ?? 3);
const perProcess = Number(positionals[3] ?? 10);
const settleSeconds = 6;
/** Streams per engine whose part availability is measured. */
const sampled = 2;
/** Blocking-reload loops held on each of those streams at once (players of one stream). */
const viewers = Number(values.viewers);

interface Engine {
  name: string;
  dir: string;
  args: string[];
  ports: { rtmp: number; http: number };
  process?: ChildProcess;
  profileDir?: string;
}

const engines: Engine[] = [{ name: 'this', dir: root, args: [], ports: { rtmp: 19490, http: 19491 } }];
if (values.against !== undefined) engines.push({ name: 'baseline', dir: resolve(values.against), args: [], ports: { rtmp: 19500, http: 19501 } });
if (values.flags !== undefined) engines.push({ name: 'flags', dir: root, args: values.flags.split(' ').filter(Boolean), ports: { rtmp: 19510, http: 19511 } });
if (engines.length < 2) throw new Error('compare with --against DIR and/or --flags="..."');

const file = ensureLiveSource();
const work = mkdtempSync(join(tmpdir(), 'm2b-cost-'));
const publishers: ChildProcess[] = [];
const keys = Array.from({ length: streamCount }, (_, i) => `s${i}`);
try {
  for (const engine of engines) {
    const pipeline = join(work, `${engine.name}.yaml`);
    writeFileSync(pipeline, `streams: 1
name: m2b-engine-cost
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${engine.ports.rtmp}", max_streams: 1000, timeout: 30000 } }
  hls: { op: segment.hls, in: rtmp, with: { segment: 2s, part: 200ms, window: 6 } }
  origin: { op: serve.http, in: hls, with: { listen: "127.0.0.1:${engine.ports.http}", max_streams: 1000 } }
`);
    if (values.profile) {
      engine.profileDir = join(work, `profile-${engine.name}`);
      mkdirSync(engine.profileDir);
      engine.args.push('--cpu-prof', `--cpu-prof-dir=${engine.profileDir}`);
    }
    engine.process = spawnTracked(process.execPath, [...engine.args, join(engine.dir, 'bin/streams.ts'), 'run', pipeline, '--log-level', 'warn']);
  }
  await Promise.all(engines.map((engine) => untilServing(`http://127.0.0.1:${engine.ports.http}/healthz`)));
  console.log(`M2b engine cost: ${streamCount} streams of 720p30 4.6 Mbit/s to each of ${engines.map((e) => `${e.name} (${e.dir === root ? 'this checkout' : e.dir}${e.args.length ? ` ${e.args.join(' ')}` : ''})`).join(', ')}; ${perProcess} streams per tee ffmpeg; ${viewers} viewer(s) on each of ${sampled} streams per engine; ${rounds} windows of ${windowSeconds} s; load average before: ${loadAverage()}`);
  for (let i = 0; i < streamCount; i += perProcess) {
    const group = keys.slice(i, i + perProcess);
    publishers.push(publishTee(file, engines.flatMap((engine) => group.map((key) => `rtmp://127.0.0.1:${engine.ports.rtmp}/live/${key}`))));
  }
  for (const engine of engines) {
    const ready = await untilListed(engine.ports.http, keys, 60_000);
    if (ready < keys.length) throw new Error(`${engine.name}: only ${ready} of ${keys.length} streams listed a segment within 60 s`);
  }
  await new Promise((r) => setTimeout(r, settleSeconds * 1000));
  const perStream = new Map(engines.map((engine) => [engine.name, [] as number[]]));
  const delays = new Map(engines.map((engine) => [engine.name, [] as number[]]));
  const profileFrom = profileClock();
  const rss = new Map(engines.map((engine) => [engine.name, [] as number[]]));
  const peaks = new Map(engines.map((engine) => [engine.name, [] as number[]]));
  console.log(`  round  ${engines.map((e) => `${e.name} %core/stream`.padStart(22)).join('')}  ${engines.slice(1).map((e) => `${e.name}/this`.padStart(14)).join('')}  min rate  ${engines.map((e) => `${e.name} RSS mean/peak`.padStart(20)).join('')}  load`);
  for (let round = 1; round <= rounds; round++) {
    const first = await Promise.all(engines.map((engine) => listedPositions(engine.ports.http, keys)));
    const firstAt = Date.now();
    const before = engines.map((engine) => cpuMicros(engine.process!.pid!));
    const wall0 = performance.now();
    const until = Date.now() + windowSeconds * 1000;
    // Resident memory saws up and down with the collections: sampled every second, its mean and peak over the window.
    const samples = engines.map(() => [] as number[]);
    const sampler = setInterval(() => engines.forEach((engine, i) => samples[i].push(residentMegabytes(engine.process!.pid!))), 1000);
    await Promise.all(engines.flatMap((engine) => keys.slice(0, sampled).flatMap((key) => Array.from({ length: viewers }, () => partAvailability(engine.ports.http, key, until, delays.get(engine.name)!)))));
    clearInterval(sampler);
    const wall = (performance.now() - wall0) / 1e3;
    const used = engines.map((engine, i) => (cpuMicros(engine.process!.pid!) - before[i]) / 1e6);
    const last = await Promise.all(engines.map((engine) => listedPositions(engine.ports.http, keys)));
    const lastAt = Date.now();
    // The slowest stream of any engine: a figure from an engine that fell behind real time is not comparable.
    let minRate = Number.POSITIVE_INFINITY;
    engines.forEach((_, i) => {
      for (const key of keys) {
        const a = first[i].get(key);
        const b = last[i].get(key);
        minRate = Math.min(minRate, a === undefined || b === undefined ? 0 : (b - a) / (lastAt - firstAt));
      }
    });
    const shares = used.map((seconds) => (seconds / wall / streamCount) * 100);
    engines.forEach((engine, i) => perStream.get(engine.name)!.push(shares[i]));
    const resident = samples.map((mbs) => ({ mean: mbs.reduce((a, b) => a + b, 0) / mbs.length, peak: Math.max(...mbs) }));
    engines.forEach((engine, i) => rss.get(engine.name)!.push(resident[i].mean));
    engines.forEach((engine, i) => peaks.get(engine.name)!.push(resident[i].peak));
    console.log(`  ${String(round).padStart(5)}  ${shares.map((share) => share.toFixed(3).padStart(22)).join('')}  ${shares.slice(1).map((share) => `${(share / shares[0]).toFixed(2)}x`.padStart(14)).join('')}  ${minRate.toFixed(3).padStart(8)}  ${resident.map((mb) => `${mb.mean.toFixed(0)}/${mb.peak.toFixed(0)} MB`.padStart(20)).join('')}  ${loadAverage()}`);
  }
  const profileTo = profileClock();
  console.log(`  median %core/stream: ${engines.map((e) => `${e.name} ${median(perStream.get(e.name)!).toFixed(3)}`).join(', ')}; median RSS over a window, mean/peak: ${engines.map((e) => `${e.name} ${median(rss.get(e.name)!).toFixed(0)}/${median(peaks.get(e.name)!).toFixed(0)} MB`).join(', ')}`);
  for (const engine of engines.slice(1)) {
    const ratios = perStream.get(engine.name)!.map((share, i) => share / perStream.get('this')![i]);
    console.log(`  ${engine.name} / this, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)}x`);
  }
  for (const engine of engines) {
    const d = delays.get(engine.name)!;
    console.log(`  part availability ${engine.name.padEnd(8)} p50 ${quantile(d, 0.5)} ms  p95 ${quantile(d, 0.95)} ms  (n=${d.length})`);
  }
  console.log(`  load average after: ${loadAverage()}`);
  if (values.profile) {
    await Promise.all(publishers.map(stop));
    publishers.length = 0;
    await Promise.all(engines.map(stopEngine));
    for (const engine of engines) printProfile(`${engine.name}`, summariseProfiles(engine.profileDir!, { from: profileFrom, to: profileTo }), { parts: 8, files: 10, functions: 18 });
  }
} finally {
  await Promise.all(publishers.map(stop));
  await Promise.all(engines.map(stopEngine));
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);

/** SIGINT lets an engine drain and exit (and write its CPU profile); SIGKILL after 10 s. */
async function stopEngine(engine: Engine): Promise<void> {
  const child = engine.process;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
