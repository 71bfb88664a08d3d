/**
 * Helpers of the worker tests: `streams worker` and `streams deploy` as
 * child processes, waiting for a condition, and counting the records a
 * file sink wrote (how many times each `seq` appeared).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const bin = new URL('../../bin/streams.ts', import.meta.url).pathname;

/** A worker process and what it has logged so far. */
export interface WorkerProcess {
  child: ChildProcess;
  log: () => string;
}

/** Starts `streams worker` for `host` of pipeline `name`; `started` collects it for killing after the test. */
export function startWorker(host: string, name: string, control: string, started: ChildProcess[]): WorkerProcess {
  const child = spawn(process.execPath, [bin, 'worker', '--host', host, '--control', control, '--name', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  started.push(child);
  return { child, log: () => log };
}

/** Runs `streams deploy FILE --control URL` to its end. */
export async function deploy(file: string, control: string, timeout = '20s'): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'deploy', file, '--control', control, '--timeout', timeout], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  return { code, stdout, stderr };
}

/** Polls `probe` every 100 ms until it gives a value; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The output's records, by seq: how many times each appeared. */
export function counts(file: string): Map<number, number> {
  const seen = new Map<number, number>();
  if (!existsSync(file)) return seen;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const seq = (JSON.parse(line) as { seq: number }).seq;
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
  }
  return seen;
}

/** Whether every seq below `upTo` was seen. */
export const hasAll = (seen: Map<number, number>, upTo: number): boolean => Array.from({ length: upTo }, (_, i) => i).every((i) => seen.has(i));
/** How many records were seen more than once, counting each repeat. */
export const duplicates = (seen: Map<number, number>): number => [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
