/**
 * Where a server's CPU time goes, sampled by Linux `perf` on the CPU clock:
 * only while the process runs, in user space and in the kernel alike,
 * JavaScript named through Node's `--perf-basic-prof` map. V8's own
 * profiler (`--cpu-prof`) samples wall time, so on a loaded machine a
 * function is charged for the time its process waited for a core; these
 * samples are not, and figures a request from two processes compare.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Node options that let `perf` name JavaScript functions (a map in /tmp, written as code is compiled). */
export const perfNodeOptions = ['--perf-basic-prof'];

/** Samples a second taken of each thread. */
const frequency = 4999;

/** Whether `perf` is installed and allowed to sample other processes here. */
export function perfAvailable(): boolean {
  const probe = spawnSync('perf', ['stat', '-e', 'cpu-clock', '--', 'true'], { encoding: 'utf8' });
  return probe.status === 0;
}

/**
 * Samples `pid` while `work` runs (synchronously, say a wrk run) into
 * `file`; resolves with what `work` returned once perf has written it.
 */
export async function sampleWhile<T>(pid: number, file: string, work: () => T): Promise<T> {
  const recorder = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(frequency), '-p', String(pid), '-o', file, '--quiet'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => recorder.once('exit', () => resolve()));
  // perf attaches to the process's threads after it starts: give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const result = work();
  recorder.kill('SIGINT');
  await exited;
  return result;
}

/** CPU time a request (ns) by symbol, `[k] name` for the kernel's, `[.] name` for user space's, and the totals of each. */
export interface SampledTime {
  bySymbol: Map<string, number>;
  user: number;
  kernel: number;
}

/** The samples in `file` spread over `requests`: ns a request by symbol, JavaScript files named from `root` (the checkout the process ran). */
export function timeByRequest(file: string, requests: number, root: string): SampledTime {
  const report = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', 'sym', '-g', 'none', '-F', 'sample,sym', '--percent-limit', '0', '--stdio'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const nsPerSample = 1e9 / frequency / requests;
  const bySymbol = new Map<string, number>();
  let user = 0;
  let kernel = 0;
  for (const line of report.stdout.split('\n')) {
    const match = /^\s*(\d+)\s+\[(.)\]\s+(.*)$/.exec(line);
    if (!match) continue;
    const ns = Number(match[1]) * nsPerSample;
    // JIT code is named `JS:*'name file:line:column` (the mark says how it was compiled): one name for every tier,
    // and without the line, so that two builds of a file compare function by function.
    const name = `[${match[2]}] ${match[3].trim().replace(/^JS:[*+~^]?'?/, 'JS:').replace(`file://${root}/`, '').replace(/:\d+:\d+$/, '')}`;
    bySymbol.set(name, (bySymbol.get(name) ?? 0) + ns);
    if (match[2] === 'k') kernel += ns;
    else user += ns;
  }
  return { bySymbol, user, kernel };
}

/** Prints the totals of `a` and `b` and the symbols whose time a request differs most between them. */
export function printDifference(names: [string, string], a: SampledTime, b: SampledTime, count: number): void {
  console.log(`CPU a request sampled by perf (ns): ${names[0]} ${(a.user + a.kernel).toFixed(0)} (user ${a.user.toFixed(0)}, kernel ${a.kernel.toFixed(0)}), ${names[1]} ${(b.user + b.kernel).toFixed(0)} (user ${b.user.toFixed(0)}, kernel ${b.kernel.toFixed(0)}); the largest differences in user space:`);
  console.log(`  ${names[0].padStart(8)}  ${names[1].padStart(8)}  difference  symbol`);
  const symbols = new Set([...a.bySymbol.keys(), ...b.bySymbol.keys()].filter((name) => !name.startsWith('[k]')));
  const rows = [...symbols].map((name) => ({ name, a: a.bySymbol.get(name) ?? 0, b: b.bySymbol.get(name) ?? 0 }));
  rows.sort((x, y) => Math.abs(y.a - y.b) - Math.abs(x.a - x.b));
  for (const row of rows.slice(0, count)) {
    console.log(`  ${row.a.toFixed(0).padStart(8)}  ${row.b.toFixed(0).padStart(8)}  ${(row.a - row.b).toFixed(0).padStart(10)}  ${row.name.slice(0, 120)}`);
  }
}
