/**
 * The compiled CLI the benchmarks run, as an installed package runs it:
 * `dist/bin/streams.js`, bundled afresh with `npm run build` (a second or two)
 * so that a benchmark never measures a stale build.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** The repository's root folder. */
export const root = join(new URL('.', import.meta.url).pathname, '..');

/** Builds `dist/` from the sources; returns the compiled entry point of `streams`. */
export function buildDist(): string {
  process.stderr.write('building dist/ (npm run build)...\n');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return join(root, 'dist', 'bin', 'streams.js');
}

/**
 * Node options that make a process print, when it exits, its peak RSS (KB)
 * and the CPU time it used (user and system, microseconds) as one JSON line
 * on stderr, so a parent can read them for any command. CPU time is what to
 * compare on a busy machine, where wall time also counts waiting for a core.
 */
export const reportUsage = ['--import', `data:text/javascript,process.on('exit',()=>{const u=process.resourceUsage();process.stderr.write('\\n{"maxRssKb":'+u.maxRSS+',"cpuUs":'+(u.userCPUTime+u.systemCPUTime)+'}\\n')})`];

/** The peak RSS (MB) and CPU time (seconds) a process started with {@link reportUsage} printed on stderr. */
export function usage(stderr: string): { rssMb: number; cpuSeconds: number } {
  const line = stderr.trim().split('\n').at(-1) ?? '';
  const match = /^\{"maxRssKb":(\d+),"cpuUs":(\d+)\}$/.exec(line);
  if (!match) throw new Error(`no usage line in the output: ${stderr.slice(-500)}`);
  return { rssMb: Number(match[1]) / 1024, cpuSeconds: Number(match[2]) / 1e6 };
}
