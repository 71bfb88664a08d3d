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
 *   node bench/cdn-hit-path.ts [seconds=5] [rounds=5] [--profile] [--size 1KB|256KB]
 *
 * `--profile` runs the edge under `--cpu-prof` and prints where its CPU
 * went: self time by function and by file (the engine's own files, Node's
 * internals, and garbage collection), the place to look for cheap wins.
 * Installs wrk and nginx-light (Debian) if they are missing.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './dist.ts';
import { ensureTools, loadAverage, median, objects, startTargets, targetNames, wrk, type Target } from './cdn-targets.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { profile: { type: 'boolean', default: false }, size: { type: 'string' } } });
if (values.size !== undefined && !(values.size in objects)) throw new Error(`--size: one of ${Object.keys(objects).join(', ')}`);
/** The sizes measured: both unless `--size` names one (a profile of one size says where that size's time goes). */
const sizes = Object.entries(objects).filter(([size]) => values.size === undefined || size === values.size);
const seconds = Number(positionals[0] ?? 5);
const rounds = Number(positionals[1] ?? 5);

ensureTools();
const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'cdn-hit-profile-')) : undefined;
const servers = await startTargets({ base: 7860, edgeNodeOptions: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] });
// The profile's clock is the monotonic one hrtime reads: samples before this are the edge starting.
const measuringFrom = Number(process.hrtime.bigint() / 1000n);
const cpu: Record<string, Record<Target, number[]>> = {};
const rates: Record<string, Record<Target, number[]>> = {};
for (let round = 0; round < rounds; round++) {
  for (const [size, object] of sizes) {
    cpu[size] ??= { edge: [], bare: [], nginx: [] };
    rates[size] ??= { edge: [], bare: [], nginx: [] };
    const order = targetNames.map((_, i, all) => all[(i + round) % all.length]);
    for (const target of order) {
      const measured = wrk(`http://127.0.0.1:${servers.ports[target]}${object.path}`, servers.pids[target], { seconds, connections: 64 });
      cpu[size][target].push(measured.cpuPerRequest);
      rates[size][target].push(measured.perSecond);
      process.stderr.write(`round ${round + 1} ${size} ${target}: ${measured.cpuPerRequest.toFixed(1)} µs CPU a request (${Math.round(measured.perSecond)} req/s)\n`);
    }
  }
}
const load = loadAverage();
await servers.stop();

console.log(`hit path: server CPU a request (µs), median of ${rounds} rounds of wrk -t1 -c64 -d${seconds}s; load ${load}`);
console.log('size    edge      bare-node  nginx     edge cost ×bare  ×nginx   paired ×bare  (req/s medians: edge, bare, nginx)');
for (const [size, byTarget] of Object.entries(cpu)) {
  const [edge, bare, nginx] = [median(byTarget.edge), median(byTarget.bare), median(byTarget.nginx)];
  // The median of each round's own ratio: a round's three runs are seconds apart, so a load that drifts between rounds cancels out.
  const paired = median(byTarget.edge.map((micros, round) => micros / byTarget.bare[round]));
  const rate = (target: Target): string => String(Math.round(median(rates[size][target])));
  console.log(`${size.padEnd(8)}${edge.toFixed(1).padEnd(10)}${bare.toFixed(1).padEnd(11)}${nginx.toFixed(1).padEnd(10)}${(edge / bare).toFixed(2).padEnd(16)}${(edge / nginx).toFixed(2).padEnd(9)}${paired.toFixed(2).padEnd(14)}(${rate('edge')}, ${rate('bare')}, ${rate('nginx')})`);
}

if (profileDir) printProfile(profileDir, measuringFrom);

/** A V8 CPU profile (`.cpuprofile`), the fields read here. */
interface CpuProfile {
  startTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time by function and by file of the edge's profile while it was measured (`from`, µs, monotonic clock), the top of each. */
function printProfile(dir: string, from: number): void {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) {
    console.log(`no CPU profile was written in ${dir}`);
    return;
  }
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = frames.get(profile.samples[i])!;
    const micros = profile.timeDeltas[i] ?? 0;
    at += micros;
    if (at < from) continue;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)') continue;
    total += micros;
    const where = frame.url === '' ? frame.functionName : frame.url.replace(`file://${root}/`, '').replace(/^node:/, 'node:');
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(where, (byFile.get(where) ?? 0) + micros);
  }
  const top = (map: Map<string, number>, count: number): void => {
    for (const [name, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`  ${((micros / total) * 100).toFixed(1).padStart(5)} %  ${name}`);
  };
  console.log(`edge CPU profile (${join(dir, file)}), busy time while measured ${(total / 1e6).toFixed(1)} s; self time by function:`);
  top(byFunction, 25);
  console.log('self time by file:');
  top(byFile, 15);
}
