/**
 * The cost of a hit: CPU time the edge spends a request for a 1 KB
 * playlist and a 256 KB segment served from its cache, against a bare
 * `node:http` + `lru-cache` server (`cdn-bare-server.ts`) and nginx (one
 * worker) serving the same bytes, in the same run (servers from
 * `cdn-targets.ts`; wrk, 64 keep-alive connections, targets in turns,
 * rounds interleaved). CPU a request is read from /proc before and after
 * each wrk run: on a shared machine it holds steady where requests a
 * second follow whoever else runs (`cdn-serve.ts` prints those).
 *
 *   node bench/cdn-hit-path.ts [seconds=5] [rounds=5] [--profile] [--perf] [--size 1KB|256KB] [--against DIR] [--log]
 *
 * `--against DIR` also runs the edge of another checkout (DIR holds its
 * `bin/streams.ts`; `git archive` a commit into a folder and link
 * `node_modules`) as `baseline`, in turns with the others: the paired ratio
 * edge / baseline compares two builds within one run. Each round then
 * also drives the edge and the baseline at once, a wrk each over the same
 * seconds (`together`): load from elsewhere falls on both alike, and the
 * paired ratio of those runs is the figure to quote for a change.
 *
 * `--log` connects the edges' access log to the analytics
 * `pipelines/cdn-edge.yaml` runs on it (a 10 s window, count, bytes, TTFB
 * p99) in the same process: the cost of a hit with its record.
 *
 * `--profile` runs the edge and bare Node under `--cpu-prof` and prints
 * where the edge's CPU went, self time by function and by file (the
 * engine's own files, Node's internals, and garbage collection), and then
 * the functions whose self time a request differs most between the edge
 * and bare Node: what the edge does that bare Node does not.
 * V8's profiler samples wall time: on a loaded machine its figures a request
 * grow with the load. `--perf` instead samples the CPU clock with Linux
 * `perf` (`cdn-cpu-samples.ts`) during one more wrk run of each Node server
 * after the rounds (the first size measured), and prints CPU a request in
 * user space and in the kernel, and the symbols whose time a request
 * differs most, edge against bare Node (and against the baseline). Node
 * writes a map line for every function it compiles under `--perf`: the
 * rounds' figures of such a run are not the ones to quote.
 * Installs wrk and nginx-light (Debian) if they are missing.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './dist.ts';
import { ensureTools, loadAverage, median, objects, startTargets, wrk, wrkTogether, type Target } from './cdn-targets.ts';
import { perfAvailable, perfNodeOptions, printDifference as printSampledDifference, sampleWhile, timeByRequest, type SampledTime } from './cdn-cpu-samples.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { profile: { type: 'boolean', default: false }, size: { type: 'string' }, against: { type: 'string' }, log: { type: 'boolean', default: false }, perf: { type: 'boolean', default: false } } });
if (values.size !== undefined && !(values.size in objects)) throw new Error(`--size: one of ${Object.keys(objects).join(', ')}`);
/** The sizes measured: both unless `--size` names one (a profile of one size says where that size's time goes). */
const sizes = Object.entries(objects).filter(([size]) => values.size === undefined || size === values.size);
const seconds = Number(positionals[0] ?? 5);
const rounds = Number(positionals[1] ?? 5);
const baselineRoot = values.against === undefined ? undefined : resolve(values.against);

ensureTools();
const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'cdn-hit-profile-')) : undefined;
if (values.perf && !perfAvailable()) throw new Error('--perf: `perf` is not installed, or may not sample other processes here (apt-get install linux-perf; kernel.perf_event_paranoid)');
const perfDir = values.perf ? mkdtempSync(join(tmpdir(), 'cdn-hit-perf-')) : undefined;
function profiled(target: 'edge' | 'bare' | 'baseline'): string[] {
  if (perfDir !== undefined) return perfNodeOptions;
  if (profileDir === undefined || target === 'baseline') return [];
  mkdirSync(join(profileDir, target));
  // Sampled every 100 µs (V8's default is 1 ms): a few seconds give enough samples to compare functions of a few hundred ns a request.
  return ['--cpu-prof', '--cpu-prof-interval', '100', `--cpu-prof-dir=${join(profileDir, target)}`];
}
const servers = await startTargets({ base: 7860, nodeOptions: { edge: profiled('edge'), bare: profiled('bare'), baseline: profiled('baseline') }, baselineRoot, log: values.log });
const names = servers.names;
// The profile's clock is the monotonic one hrtime reads: samples before this are the servers starting.
const measuringFrom = Number(process.hrtime.bigint() / 1000n);
const cpu: Record<string, Partial<Record<Target, number[]>>> = {};
const user: Record<string, Partial<Record<Target, number[]>>> = {};
const rates: Record<string, Partial<Record<Target, number[]>>> = {};
const served: Partial<Record<Target, number>> = {};
/** Edge / baseline CPU a request (whole, user space) from runs driving both at once, by size. */
const together: Record<string, { cpu: number[]; user: number[] }> = {};
for (let round = 0; round < rounds; round++) {
  for (const [size, object] of sizes) {
    cpu[size] ??= {};
    user[size] ??= {};
    rates[size] ??= {};
    const order = names.map((_, i, all) => all[(i + round) % all.length]);
    for (const target of order) {
      const measured = wrk(`http://127.0.0.1:${servers.ports[target]}${object.path}`, servers.pids[target], { seconds, connections: 64 });
      (cpu[size][target] ??= []).push(measured.cpuPerRequest);
      (user[size][target] ??= []).push(measured.userPerRequest);
      (rates[size][target] ??= []).push(measured.perSecond);
      served[target] = (served[target] ?? 0) + measured.requests;
      process.stderr.write(`round ${round + 1} ${size} ${target}: ${measured.cpuPerRequest.toFixed(1)} µs CPU a request, ${measured.userPerRequest.toFixed(1)} in user space (${Math.round(measured.perSecond)} req/s)\n`);
    }
    if (baselineRoot !== undefined) {
      const [edge, baseline] = await wrkTogether(
        (['edge', 'baseline'] as const).map((target) => ({ url: `http://127.0.0.1:${servers.ports[target]}${object.path}`, pid: servers.pids[target] })),
        { seconds, connections: 64 },
      );
      together[size] ??= { cpu: [], user: [] };
      together[size].cpu.push(edge.cpuPerRequest / baseline.cpuPerRequest);
      together[size].user.push(edge.userPerRequest / baseline.userPerRequest);
      process.stderr.write(`round ${round + 1} ${size} edge and baseline together: ${edge.cpuPerRequest.toFixed(1)} and ${baseline.cpuPerRequest.toFixed(1)} µs CPU a request\n`);
    }
  }
}
const sampled: Partial<Record<Target, SampledTime>> = {};
if (perfDir !== undefined) {
  const [size, object] = sizes[0];
  for (const target of names.filter((name) => name !== 'nginx')) {
    const file = join(perfDir, `${target}.data`);
    const measured = await sampleWhile(servers.pids[target], file, () => wrk(`http://127.0.0.1:${servers.ports[target]}${object.path}`, servers.pids[target], { seconds, connections: 64 }));
    sampled[target] = timeByRequest(file, measured.requests, target === 'baseline' && baselineRoot !== undefined ? baselineRoot : root);
    process.stderr.write(`perf ${size} ${target}: ${measured.cpuPerRequest.toFixed(1)} µs CPU a request\n`);
  }
}
const load = loadAverage();
await servers.stop();

/** The median over rounds of each round's own ratio of `a` to `b`: a round's runs are seconds apart, so a load that drifts between rounds cancels out. */
function paired(a: number[], b: number[]): number {
  return median(a.map((micros, round) => micros / b[round]));
}

console.log(`hit path${values.log ? ' (edges with their access log and its analytics)' : ''}: server CPU a request (µs), median of ${rounds} rounds of wrk -t1 -c64 -d${seconds}s; load ${load}`);
console.log('size    edge      bare-node  nginx     edge cost ×bare  ×nginx   paired ×bare  (req/s medians: edge, bare, nginx)');
for (const [size, byTarget] of Object.entries(cpu)) {
  const measured = (target: Target): number[] => byTarget[target] ?? [];
  const [edge, bare, nginx] = [median(measured('edge')), median(measured('bare')), median(measured('nginx'))];
  const rate = (target: Target): string => String(Math.round(median(rates[size][target] ?? [])));
  console.log(`${size.padEnd(8)}${edge.toFixed(1).padEnd(10)}${bare.toFixed(1).padEnd(11)}${nginx.toFixed(1).padEnd(10)}${(edge / bare).toFixed(2).padEnd(16)}${(edge / nginx).toFixed(2).padEnd(9)}${paired(measured('edge'), measured('bare')).toFixed(2).padEnd(14)}(${rate('edge')}, ${rate('bare')}, ${rate('nginx')})`);
  const inUser = (target: Target): number[] => user[size][target] ?? [];
  console.log(`${''.padEnd(8)}user space: edge ${median(inUser('edge')).toFixed(1)} µs, bare ${median(inUser('bare')).toFixed(1)} µs, paired ×bare ${paired(inUser('edge'), inUser('bare')).toFixed(2)}`);
  if (baselineRoot !== undefined) {
    const baseline = median(measured('baseline'));
    console.log(`${''.padEnd(8)}baseline (${baselineRoot}) ${baseline.toFixed(1)} µs: edge / baseline ${(edge / baseline).toFixed(3)}, paired ${paired(measured('edge'), measured('baseline')).toFixed(3)}; in user space paired ${paired(inUser('edge'), inUser('baseline')).toFixed(3)}; baseline ×bare paired ${paired(measured('baseline'), measured('bare')).toFixed(2)}`);
    const both = together[size];
    console.log(`${''.padEnd(8)}edge / baseline driven together: ${median(both.cpu).toFixed(3)} (rounds ${Math.min(...both.cpu).toFixed(3)}-${Math.max(...both.cpu).toFixed(3)}), in user space ${median(both.user).toFixed(3)}`);
  }
}

if (sampled.edge && sampled.bare) {
  printSampledDifference(['edge', 'bare'], sampled.edge, sampled.bare, 30);
  if (sampled.baseline) printSampledDifference(['edge', 'baseline'], sampled.edge, sampled.baseline, 20);
}
if (profileDir) {
  const edgeProfile = readProfile(join(profileDir, 'edge'), measuringFrom);
  const bareProfile = readProfile(join(profileDir, 'bare'), measuringFrom);
  if (edgeProfile) printProfile(edgeProfile);
  if (edgeProfile && bareProfile) printDifference(edgeProfile, served.edge ?? 1, bareProfile, served.bare ?? 1);
}

/** A V8 CPU profile (`.cpuprofile`), the fields read here. */
interface CpuProfile {
  startTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (µs) by function and by file of one profile while it was measured. */
interface SelfTime {
  file: string;
  busy: number;
  byFunction: Map<string, number>;
  byFile: Map<string, number>;
}

/** The self time in the profile written in `dir`, counted from `from` (µs, monotonic clock); undefined when none was written. */
function readProfile(dir: string, from: number): SelfTime | undefined {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) {
    console.log(`no CPU profile was written in ${dir}`);
    return undefined;
  }
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = frames.get(profile.samples[i])!;
    const micros = profile.timeDeltas[i] ?? 0;
    at += micros;
    if (at < from) continue;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)') continue;
    busy += micros;
    const where = frame.url === '' ? frame.functionName : frame.url.replace(`file://${root}/`, '');
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(where, (byFile.get(where) ?? 0) + micros);
  }
  return { file: join(dir, file), busy, byFunction, byFile };
}

/** The edge's self time by function and by file, the top of each. */
function printProfile(profile: SelfTime): void {
  const top = (map: Map<string, number>, count: number): void => {
    for (const [name, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`  ${((micros / profile.busy) * 100).toFixed(1).padStart(5)} %  ${name}`);
  };
  console.log(`edge CPU profile (${profile.file}), busy time while measured ${(profile.busy / 1e6).toFixed(1)} s; self time by function:`);
  top(profile.byFunction, 25);
  console.log('self time by file:');
  top(profile.byFile, 15);
}

/**
 * Self time a request (ns) by function, edge against bare Node, the largest
 * differences either way: what the edge spends that bare Node does not
 * (its own code, Node's work on its longer header block) and the reverse.
 */
function printDifference(edge: SelfTime, edgeRequests: number, bare: SelfTime, bareRequests: number): void {
  const perRequest = (profile: SelfTime, requests: number, name: string): number => ((profile.byFunction.get(name) ?? 0) * 1000) / requests;
  const names = new Set([...edge.byFunction.keys(), ...bare.byFunction.keys()]);
  const rows = [...names].map((name) => ({ name, edge: perRequest(edge, edgeRequests, name), bare: perRequest(bare, bareRequests, name) }));
  rows.sort((a, b) => Math.abs(b.edge - b.bare) - Math.abs(a.edge - a.bare));
  const busy = (profile: SelfTime, requests: number): string => ((profile.busy * 1000) / requests).toFixed(0);
  console.log(`self time a request (ns), edge ${busy(edge, edgeRequests)} against bare Node ${busy(bare, bareRequests)} (profiled busy time over requests served); the largest differences:`);
  console.log('  edge     bare     edge-bare  function');
  for (const row of rows.slice(0, 30)) {
    console.log(`  ${row.edge.toFixed(0).padStart(6)}  ${row.bare.toFixed(0).padStart(6)}  ${(row.edge - row.bare).toFixed(0).padStart(9)}  ${row.name}`);
  }
}
