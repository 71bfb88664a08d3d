/**
 * Where a process's CPU went, from the V8 profile Node writes under
 * `--cpu-prof` (a `.cpuprofile` file): self time by function, by file, and
 * by part (the engine's own folders, each npm package, Node's internals,
 * garbage collection), within a time window. Benchmarks print it to find
 * the cheap wins; the figures are shares of the busy time in the window.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './dist.ts';

/** A V8 CPU profile, the fields read here. */
interface CpuProfile {
  startTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (µs) of one profile within a window, by function, file and part. */
export interface ProfileSummary {
  busyMicros: number;
  byFunction: Map<string, number>;
  byFile: Map<string, number>;
  byPart: Map<string, number>;
}

/** The monotonic clock a profile's times are on (µs), to mark a window's ends. */
export function profileClock(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** What a frame's file belongs to: `node_modules/<package>`, the engine's top folder, `node:*`, or V8's own entries. */
function partOf(where: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (pkg) return pkg[1];
  if (where.startsWith('node:')) return 'node: (internals)';
  if (!where.includes('/')) return where;
  return `${where.split('/')[0]}/`;
}

/** Sums the self time of the profiles in `dir` (or the one file) between `from` and `to` (µs, `profileClock`). */
export function summariseProfiles(path: string, window: { from?: number; to?: number } = {}): ProfileSummary {
  const files = path.endsWith('.cpuprofile') ? [path] : readdirSync(path).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(path, name));
  const summary: ProfileSummary = { busyMicros: 0, byFunction: new Map(), byFile: new Map(), byPart: new Map() };
  const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros);
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    let at = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      const micros = profile.timeDeltas[i] ?? 0;
      at += micros;
      if ((window.from !== undefined && at < window.from) || (window.to !== undefined && at > window.to)) continue;
      const frame = frames.get(profile.samples[i])!;
      if (frame.functionName === '(idle)' || frame.functionName === '(program)') continue;
      const where = frame.url === '' ? frame.functionName : frame.url.replace(`file://${root}/`, '').replace(/^file:\/\/.*\/node_modules\//, 'node_modules/');
      summary.busyMicros += micros;
      add(summary.byFunction, `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`, micros);
      add(summary.byFile, where, micros);
      add(summary.byPart, partOf(where), micros);
    }
  }
  return summary;
}

/** Prints a summary: the busy time, then the largest shares by part, file and function. */
export function printProfile(title: string, summary: ProfileSummary, counts: { parts?: number; files?: number; functions?: number } = {}): void {
  const top = (map: Map<string, number>, count: number): void => {
    for (const [name, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
      console.log(`  ${((micros / summary.busyMicros) * 100).toFixed(1).padStart(5)} %  ${name}`);
    }
  };
  console.log(`${title}: busy ${(summary.busyMicros / 1e6).toFixed(2)} CPU-s in the window; self time by part:`);
  top(summary.byPart, counts.parts ?? 10);
  console.log('  by file:');
  top(summary.byFile, counts.files ?? 12);
  console.log('  by function:');
  top(summary.byFunction, counts.functions ?? 25);
}
