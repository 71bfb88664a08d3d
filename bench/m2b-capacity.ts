/**
 * M2b capacity: N concurrent 720p30 RTMP publishes (the 10 s source at
 * 4.6 Mbit/s, ffmpeg `-re -stream_loop -1 -c copy` on this machine) passed
 * through to LL-HLS: `ingest.rtmp` → `segment.hls` (2 s segments, 200 ms
 * parts) → `serve.http`, the engine in its own process (`node bin/streams.ts
 * run` on a generated pipeline). The publishers are grouped, `per-ffmpeg`
 * streams to a process (10 by default; 1 is one ffmpeg each): one read and
 * demux, then the tee muxer's FLV muxer and RTMP connection per stream, each
 * its own publish with its own key (live-source.ts `publishTee`). First, in
 * the same run, the publishers' CPU per stream one way against the other.
 * Then N rises step by step; each step adds publishers, lets them settle,
 * then measures over a window:
 *
 * - real time: for every stream, how fast the newest listed media time
 *   (the last `EXT-X-PROGRAM-DATE-TIME` plus the durations after it) moves
 *   against the wall clock (1.00 = real time; a stream that falls behind,
 *   in the publisher or the engine, shows less), and its lag behind now;
 *   packets the engine dropped (its `/metrics`), warnings it logged;
 * - CPU: the engine's, from /proc/PID/stat (utime + stime) over the window,
 *   as % of one core per stream; the publishers' together; the machine's;
 * - part availability at that load: blocking reloads held on a few streams'
 *   video playlists, answer received − `X-Streams-Closed-At` (when the
 *   closing packet reached the engine), counting requests sent before it;
 * - the engine's resident memory at the end of the window.
 *
 * The highest N whose every stream stayed at real time (rate ≥ 0.97, no
 * drops) is reported. `ingest.rtmp`'s idle `timeout` is 30 s here (a tee's
 * first outputs wait for the others to open). `M2B_COMPARE=0` skips the
 * publishers' comparison; `ENGINE_NODE_ARGS` passes node flags to the
 * engine (`--cpu-prof --cpu-prof-dir=DIR` to profile it). The engine is not niced. Every ffmpeg is killed at
 * the end, on Ctrl-C and on errors (live-source.ts).
 *
 *   node bench/m2b-capacity.ts [steps=25,50,100,150,200] [window=30] [per-ffmpeg=10]
 *
 * Loopback ports 19482 (RTMP), 19483 (HTTP), 19484 (metrics).
 *
 * 2026-12-03 12:00, after the launcher counts media buffers in V8's global heap limit (bin/streams.ts; the engine's
 * CPU per stream 0.58-0.68x of the build before, in the same run: `m2b-engine-cost.ts`), 20 s windows, load average
 * 9.2 before, 13.4 after, both cores 100 % busy:
 *       N  real time (min rate)  engine %core/stream  engine %core  publishers %core  engine RSS  part availability
 *      50  yes (0.990)                 0.54             27.0              7.2          747 MB    p50 7 ms   p95 58 ms
 *     100  yes (0.998)                 0.37             36.9             14.2         1601 MB    p50 8 ms   p95 46 ms
 *     152  yes (0.984)                 0.29             43.3             21.6         3075 MB    p50 6 ms   p95 57 ms
 * Part availability p95 at 152: 57 ms (199 ms at 150 in the 09:40 run below); the 20 ms aim is still not met on this
 * shared machine. `ENGINE_NODE_ARGS=--no-external-memory-accounted-in-global-limit` runs the engine with V8's default.
 * Where its time goes now (`m2b-engine-cost.ts 40 20 2 --against <old build> --profile`, same run): garbage collection
 * 17 % against the old build's 33 %, copying sample bytes (RTMP reassembly, then into the segment) 9 %, the RTMP
 * chunk parser 2 %; the rest is spread thin (no other function of the engine's over 3 %).
 *
 * Earlier, before that change: 30 s windows, 10 streams per tee ffmpeg, on the machine shared with other
 * helpers' builds and benchmarks (both cores 100 % busy in every step from 100 streams on):
 *   publishers, 10 streams, same run: one ffmpeg each 0.666 %core/stream, one tee ffmpeg 0.135
 *   (0.20x; 0.23x and 0.24x in two earlier runs). The engine meanwhile: 1.04 / 0.88 %core/stream
 *   (a tee's outputs send each packet together, so the engine reads them in fewer loop turns:
 *   0.84x; at 100 streams and more, independent publishers fill its batches anyway).
 * 09:40, load average 6.9 before, 12.5 after:
 *       N  real time (min rate)  engine %core/stream  engine %core  publishers %core  part availability
 *      50  yes (0.999)                 1.04             51.8              7.5          p50 3 ms   p95 25 ms
 *     100  yes (0.986)                 0.48             48.3             11.7          p50 5 ms   p95 46 ms
 *     150  yes (0.996)                 0.39             57.7             16.8          p50 9 ms   p95 199 ms
 *     200  yes (0.995)                 0.29             57.2             20.8          p50 18 ms  p95 241 ms
 * 09:35, the same with ENGINE_NODE_ARGS=--external-memory-accounted-in-global-limit (below), load 9-15:
 *     100  yes (0.999)                 0.41             40.6             13.3          p50 3 ms   p95 44 ms
 *     150  yes (1.001)                 0.24             36.1             17.4          p50 6 ms   p95 105 ms
 *     200  yes (0.994)                 0.24             48.0             24.4          p50 6 ms   p95 221 ms
 * 09:28, load average 15.5 before, 16-19 during:
 *      50  yes (0.996)                 0.55             27.6              6.8          p50 10 ms  p95 64 ms
 *     100  yes (0.972)                 0.26             26.1             11.7          p50 32 ms  p95 3.8 s
 *     150  yes (0.997)                 0.32             48.6             18.4          p50 24 ms  p95 520 ms
 *     200  NO                          0.28             55.3             10.8          (no answers)
 * 09:44, load average 9.3 before, 16 after: 200 yes (0.998), 0.31 %core/stream, part p95 184 ms; 250 NO
 * (only 47 of 250 playlists answered within 5 s: the engine fell behind while the 50 joined).
 * 200 streams in real time with their publishers on this 2-core machine, the engine under 0.3 % of
 * a core per stream (CPU here counts all the engine's threads, V8's GC helpers included, which take
 * more when the machine is idle: hence the higher figures at 50). The publishers take 0.1 % of a
 * core per stream. When the other jobs hold the run queue at 16-24, the engine (one thread among
 * them) gets too little CPU for 200: new publishers' handshakes pass the 10 s publish timeout and
 * playlists take over 5 s (09:28 run; an earlier run failed at 100 at load 20-24). Part availability
 * p95 is the engine waiting for CPU too: the 20 ms aim is met at 50 streams here, not at 150.
 *
 * Where the engine's time goes (`--cpu-prof`, 60 streams, 22 % of a core): garbage collection 36 %,
 * copying samples into segment buffers 17 % (writeFragmentInto: a fresh 1-2 MB buffer per segment;
 * filling fresh memory costs ~15x refilling a used one), RTMP chunk parsing 21 %, allocation of
 * packet buffers 6 %. Nearly every full GC is set off by ArrayBuffer bytes, not heap growth: at 10
 * streams a mark-compact every 0.9 s while the heap itself stayed at 17 MB. V8's
 * `--external-memory-accounted-in-global-limit` cut them from 22 to 5 in 20 s and the engine's CPU
 * by 40 % at 10 streams (back to back); at 200, 0.24 against 0.29 %core/stream (runs 5 min apart).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLiveSource, publish, publishTee, quantile, spawnTracked, spread, stop, untilServing } from './live-source.ts';
import type { ChildProcess } from 'node:child_process';
import { listedPositions, partAvailability, residentMegabytes, untilListed as listedOn } from './live-probes.ts';

const steps = (process.argv[2] ?? '25,50,100,150,200').split(',').map(Number);
const windowSeconds = Number(process.argv[3] ?? 30);
const perProcess = Number(process.argv[4] ?? 10);
const settleSeconds = 4;
const sampled = 3;
const ports = { rtmp: 19482, http: 19483, metrics: 19484 };
const ticksPerSecond = 100; // USER_HZ

/** CPU seconds (user + system) of a live process so far; 0 when it is gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - cpu[3] - cpu[4], total };
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Packets the engine dropped, from its Prometheus text; NaN when an overloaded engine does not answer within 10 s (the step then does not count as real time). */
async function drops(): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((response) => response.text(), () => undefined).catch(() => undefined);
  if (text === undefined) return Number.NaN;
  let sum = 0;
  for (const line of text.split('\n')) if (!line.startsWith('#') && /dropped/.test(line)) sum += Number(line.split(' ').at(-1));
  return sum;
}

/** CPU used while `work` runs, as % of one core: the engine's, the publishers' together, and the machine's busy share. */
async function cpuDuring<T>(publishers: ChildProcess[], work: () => Promise<T>): Promise<{ result: T; wall: number; engine: number; publishers: number; machine: number }> {
  const pubsCpu = () => publishers.reduce((sum, p) => sum + cpuOf(p.pid!), 0);
  const wall0 = Date.now();
  const engine0 = cpuOf(engine.pid!);
  const pubs0 = pubsCpu();
  const machine0 = machine();
  const result = await work();
  const engineCpu = cpuOf(engine.pid!) - engine0;
  const pubs = pubsCpu() - pubs0;
  const machine1 = machine();
  const wall = (Date.now() - wall0) / 1000;
  return { result, wall, engine: (engineCpu / wall) * 100, publishers: (pubs / wall) * 100, machine: ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100 };
}

/** Waits (up to 30 s: on a busy machine publishers take a while to connect) until every stream lists a segment; how many did. */
async function untilListed(keys: string[]): Promise<number> {
  const ready = await listedOn(ports.http, keys);
  if (ready < keys.length) console.log(`       only ${ready} of ${keys.length} streams listed a segment within 30 s of starting`);
  return ready;
}

const positions = (keys: string[]) => listedPositions(ports.http, keys);
const availability = (key: string, until: number, delays: number[]) => partAvailability(ports.http, key, until, delays);

const keyUrl = (key: string) => `rtmp://127.0.0.1:${ports.rtmp}/live/${key}`;

/**
 * The publishers' cost, one way against the other in this run: `count`
 * streams from one ffmpeg each, then the same streams from one tee ffmpeg;
 * CPU per stream of each, and of the engine meanwhile (the tee's outputs
 * send each packet at the same instant, which lets the engine read them in
 * fewer turns of its loop: its figure shows how much that flatters it).
 */
async function comparePublishers(count: number, seconds: number): Promise<void> {
  const ways = [
    { name: 'one ffmpeg per stream', prefix: 'one', start: (keys: string[]) => keys.map((key) => publish(file, keyUrl(key))) },
    { name: `one tee ffmpeg for ${count}`, prefix: 'tee', start: (keys: string[]) => [publishTee(file, keys.map(keyUrl))] },
  ];
  const perStream: { publishers: number; engine: number }[] = [];
  for (const way of ways) {
    const keys = Array.from({ length: count }, (_, i) => `${way.prefix}${i}`);
    const processes = way.start(keys);
    try {
      await untilListed(keys);
      await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1000));
      const cpu = await cpuDuring(processes, () => new Promise((resolve) => setTimeout(resolve, seconds * 1000)));
      perStream.push({ publishers: cpu.publishers / count, engine: cpu.engine / count });
      console.log(`  ${way.name.padEnd(24)} ${count} streams: publishers ${(cpu.publishers / count).toFixed(3)} %core/stream (${processes.length} process${processes.length > 1 ? 'es' : ''}), engine ${(cpu.engine / count).toFixed(3)} %core/stream, machine ${cpu.machine.toFixed(0)} % busy`);
    } finally {
      await Promise.all(processes.map(stop));
    }
  }
  console.log(`  publishers' CPU per stream, tee / one each: ${(perStream[1].publishers / perStream[0].publishers).toFixed(2)}x; engine's: ${(perStream[1].engine / perStream[0].engine).toFixed(2)}x; load average ${loadAverage()}`);
}

const file = ensureLiveSource();
// A tee ffmpeg opens its outputs one after the other and sends media only once all are open: on a busy machine its
// first publishes wait several seconds, longer than ingest.rtmp's default 5 s idle timeout, which would end them.
const idleMs = 30_000;
const dir = mkdtempSync(join(tmpdir(), 'm2b-'));
const pipelineFile = join(dir, 'capacity.yaml');
writeFileSync(pipelineFile, `streams: 1
name: m2b-capacity
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${ports.rtmp}", max_streams: 1000, timeout: ${idleMs} } }
  hls: { op: segment.hls, in: rtmp, with: { segment: 2s, part: 200ms, window: 6 } }
  origin: { op: serve.http, in: hls, with: { listen: "127.0.0.1:${ports.http}", max_streams: 1000 } }
`);
const engineArgs = [...(process.env.ENGINE_NODE_ARGS ?? '').split(' ').filter(Boolean), 'bin/streams.ts', 'run', pipelineFile, '--metrics', `127.0.0.1:${ports.metrics}`, '--log-level', 'warn'];
const engine = spawnTracked(process.execPath, engineArgs);
const engineLog: string[] = [];
engine.stderr!.on('data', (chunk: Buffer) => engineLog.push(...chunk.toString().split('\n').filter(Boolean)));
const publishers: ChildProcess[] = [];
let streams = 0;
let best = 0;
try {
  await untilServing(`http://127.0.0.1:${ports.http}/healthz`);
  console.log(`M2b capacity: 720p30 4.6 Mbit/s RTMP publishes → segment.hls (2 s, 200 ms parts) → serve.http; engine pid ${engine.pid} (node flags: ${engineArgs.slice(0, engineArgs.indexOf('bin/streams.ts')).join(' ') || 'none'}); window ${windowSeconds} s per step; ${perProcess} stream(s) per publishing ffmpeg; load average before: ${loadAverage()}`);
  if (perProcess > 1 && process.env.M2B_COMPARE !== '0') await comparePublishers(perProcess, Math.min(windowSeconds, 20));
  console.log('    N  real time (min / p50 rate)  lag p50/max   drops  warns  engine %core/stream  engine %core  publishers %core  machine busy  engine RSS  part availability');
  for (const n of steps) {
    while (streams < n) {
      const keys = Array.from({ length: Math.min(perProcess, n - streams) }, (_, i) => `s${streams + i}`);
      publishers.push(keys.length === 1 ? publish(file, keyUrl(keys[0])) : publishTee(file, keys.map(keyUrl)));
      streams += keys.length;
      await new Promise((resolve) => setTimeout(resolve, 25 * keys.length));
    }
    const keys = Array.from({ length: n }, (_, i) => `s${i}`);
    await untilListed(keys);
    await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1000));
    const warnsBefore = engineLog.length;
    const drops0 = await drops();
    const first = await positions(keys);
    const firstAt = Date.now();
    const delays: number[] = [];
    const cpu = await cpuDuring(publishers, async () => {
      const until = Date.now() + windowSeconds * 1000;
      await Promise.all(keys.slice(0, sampled).map((key) => availability(key, until, delays)));
    });
    const last = await positions(keys);
    const lastAt = Date.now();
    const dropped = (await drops()) - drops0;
    const rates: number[] = [];
    const lags: number[] = [];
    for (const key of keys) {
      const a = first.get(key);
      const b = last.get(key);
      rates.push(a === undefined || b === undefined ? 0 : (b - a) / (lastAt - firstAt));
      lags.push(b === undefined ? Number.POSITIVE_INFINITY : (lastAt - b) / 1000);
    }
    const minRate = Math.min(...rates);
    const realtime = minRate >= 0.97 && dropped === 0;
    if (realtime) best = n;
    console.log(
      `${String(n).padStart(5)}  ${realtime ? 'yes' : 'NO '} (${minRate.toFixed(3)} / ${quantile(rates, 0.5).toFixed(3)})        ${quantile(lags, 0.5).toFixed(2)}/${Math.max(...lags).toFixed(2)} s  ${String(dropped).padStart(5)}  ${String(engineLog.length - warnsBefore).padStart(5)}  ${(cpu.engine / n).toFixed(3).padStart(19)}  ${cpu.engine.toFixed(1).padStart(12)}  ${cpu.publishers.toFixed(1).padStart(16)}  ${cpu.machine.toFixed(0).padStart(10)} %  ${`${residentMegabytes(engine.pid!).toFixed(0)} MB`.padStart(10)}  ${spread(delays)}`,
    );
    const missing = keys.filter((key) => !first.has(key) || !last.has(key)).length;
    if (missing > 0) console.log(`       ${missing} stream(s) had no playlist at the start or end of the window`);
    for (const line of engineLog.slice(warnsBefore, warnsBefore + 3)) console.log(`       engine: ${line.slice(0, 300)}`);
    if (!realtime) break;
  }
  console.log(`highest N in real time: ${best} (aim ≥ 200, ≤ 1 % of a core per stream); load average after: ${loadAverage()}`);
  if (engineLog.length > 0) console.log(`engine log (first lines): ${engineLog.slice(0, 3).join(' | ').slice(0, 600)}`);
} finally {
  await Promise.all(publishers.map(stop));
  // SIGINT lets the engine drain and exit (and write its CPU profile when asked for one); SIGKILL after 10 s.
  const exited = new Promise((resolve) => engine.once('exit', resolve));
  engine.kill('SIGINT');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (engine.exitCode === null && engine.signalCode === null) engine.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
