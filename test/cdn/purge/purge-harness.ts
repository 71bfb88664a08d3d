/**
 * What the purge bus tests share: a logger that keeps its lines, edges
 * (listeners with a counting apply function), and `streams purge` run as a
 * child process.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ClientLogger } from '../../../native/client-owner.ts';
import type { PurgeBusOptions } from '../../../nodes/cdn/purge/bus.ts';
import type { PurgeSelector } from '../../../nodes/cdn/purge/command.ts';
import { startPurgeListener, type PurgeListener } from '../../../nodes/cdn/purge/listener.ts';

const root = join(import.meta.dirname, '..', '..', '..');

/** A channel name no other test run uses. */
export function uniqueChannel(name: string): string {
  return `test:purge:${name}:${randomUUID().slice(0, 8)}`;
}

/** A logger keeping `level message` lines. */
export function keepingLogger(): ClientLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (_fields: object, message: string) => {
    lines.push(`${level} ${message}`);
  };
  return { lines, debug: () => undefined, info: keep('info'), warn: keep('warn'), error: keep('error') };
}

/** A listener for edge `name` whose cache "removes" `removes` objects per purge and remembers every selector. */
export interface TestEdge {
  name: string;
  calls: PurgeSelector[];
  log: ReturnType<typeof keepingLogger>;
  listener: PurgeListener;
}

export async function startEdge(bus: PurgeBusOptions & { heartbeatMs?: number }, name: string, removes: number | (() => number) = 1): Promise<TestEdge> {
  const calls: PurgeSelector[] = [];
  const log = keepingLogger();
  const listener = await startPurgeListener({ ...bus, edge: name }, (selector) => {
    calls.push(selector);
    return typeof removes === 'function' ? removes() : removes;
  }, log);
  return { name, calls, log, listener };
}

/** Runs `node bin/streams.ts ARGS`; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(root, 'bin', 'streams.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** Waits until `check` holds, polling every 20 ms, or fails naming `what`. */
export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
