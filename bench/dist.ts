/**
 * The compiled CLI the benchmarks run, as an installed package runs it:
 * `dist/bin/streams.js`, rebuilt with `npm run build` when a source file is
 * newer than it (or it is missing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The repository's root folder. */
export const root = join(new URL('.', import.meta.url).pathname, '..');

/** The compiled entry point of `streams`. */
export const distBin = join(root, 'dist', 'bin', 'streams.js');

function newestSource(folder: string): number {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds `dist/` when it is missing or older than the code it is compiled from; returns {@link distBin}. */
export function ensureDist(): string {
  const built = existsSync(distBin) ? statSync(distBin).mtimeMs : 0;
  const sources = Math.max(...['bin', 'cli', 'graph', 'nodes', 'runtime', 'native'].map((folder) => newestSource(join(root, folder))));
  if (sources > built) {
    process.stderr.write('building dist/ (npm run build)...\n');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return distBin;
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
