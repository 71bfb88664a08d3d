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
 * Node options that make a process print its peak RSS (in KB, as one JSON
 * line on stderr) when it exits, so a parent can read it for any command.
 */
export const reportPeakRss = ['--import', `data:text/javascript,process.on('exit',()=>process.stderr.write('\\n{"maxRssKb":'+process.resourceUsage().maxRSS+'}\\n'))`];

/** The peak RSS in MB a process started with {@link reportPeakRss} printed on stderr. */
export function peakRssMb(stderr: string): number {
  const line = stderr.trim().split('\n').at(-1) ?? '';
  const match = /^\{"maxRssKb":(\d+)\}$/.exec(line);
  if (!match) throw new Error(`no peak RSS in the output: ${stderr.slice(-500)}`);
  return Number(match[1]) / 1024;
}
