/**
 * What the many-hosts tests share: starting `streams worker` processes
 * (directly, or through a launcher such as a network namespace's `run`),
 * `streams deploy`, waiting, and counting the ids in an output file
 * (every input at least once, duplicates counted).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { openAdmin } from '../../native/kafka/client.ts';

/** The CLI's entry point. */
export const bin = new URL('../../bin/streams.ts', import.meta.url).pathname;

/** Spawns argv (argv[0] is the program): `spawn` itself, or a namespace's `run`. */
export type Launcher = (argv: string[], options: SpawnOptions) => ChildProcess;

const direct: Launcher = ([program, ...args], options) => spawn(program, args, options);

/** A running worker and what it logged so far. */
export interface Worker {
  child: ChildProcess;
  log: () => string;
}

/** Starts `streams worker --host HOST --control URL --name NAME [...extra]`, its stderr kept for `log()`. */
export function startWorker(host: string, name: string, controlUrl: string, launch: Launcher = direct, extra: readonly string[] = []): Worker {
  const child = launch([process.execPath, bin, 'worker', '--host', host, '--control', controlUrl, '--name', name, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  return { child, log: () => log };
}

/** Runs `streams deploy FILE --control URL` to its end. */
export async function deploy(file: string, controlUrl: string, timeout = '20s'): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'deploy', file, '--control', controlUrl, '--timeout', timeout], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  return { code, stdout, stderr };
}

/** Polls `probe` every 100 ms until it gives a truthy value, or throws naming `what`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every worker's capability report is in before the deploy plans with them. */
export async function reported(redis: Redis, name: string, hosts: string[], timeoutMs = 15_000): Promise<void> {
  await until(`the capability reports of ${hosts.join(', ')}`, async () => (await redis.hkeys(`streams:deploy:${name}:capabilities`)).length >= hosts.length, timeoutMs);
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

/** Whether every seq in [0, upTo) is there. */
export const hasAll = (seen: Map<number, number>, upTo: number) => Array.from({ length: upTo }, (_, i) => i).every((i) => seen.has(i));

/** The seqs in [0, upTo) that are not there. */
export const missing = (seen: Map<number, number>, upTo: number) => Array.from({ length: upTo }, (_, i) => i).filter((i) => !seen.has(i));

/** How many records beyond the first of each seq. */
export const duplicates = (seen: Map<number, number>) => [...seen.values()].reduce((sum, n) => sum + n - 1, 0);

/** Kills, with SIGKILL, the workers still running. */
export function killAll(workers: Worker[]): void {
  for (const { child } of workers.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Kills, with SIGKILL, the worker processes still running, and empties the list. */
export function killChildren(children: ChildProcess[]): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Deletes the Kafka topics of the pipelines `names`: their edges' (`streams.NAME.`) and their control plane's (`streams-control.NAME.`). */
export async function deletePipelineTopics(brokers: string, names: readonly string[]): Promise<void> {
  const admin = openAdmin(brokers.split(','));
  try {
    const topics = (await admin.listTopics()).filter((t) => names.some((name) => t.startsWith(`streams.${name}.`) || t.startsWith(`streams-control.${name}.`)));
    if (topics.length > 0) await admin.deleteTopics(topics).catch(() => undefined);
  } finally {
    await admin.close();
  }
}

/** A pipeline name no other run uses (it names Redis keys and Kafka topics): `PREFIX-time-random`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
