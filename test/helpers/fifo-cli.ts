/**
 * Runs the `streams` CLI on a FIFO instead of a file: tests of a command
 * that must read its file once (a pipe yields its text to one reader only),
 * or that must be interrupted while it reads.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';

const cli = new URL('../../bin/streams.ts', import.meta.url).pathname;

/** What a CLI run on a FIFO printed, and how it exited. */
export interface FifoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Makes a FIFO at `fifo`, starts `streams ...args fifo`, writes `text` into
 * it and waits for the exit. Opening the FIFO for writing completes only
 * once the CLI opens it to read: `whileReading` runs at that moment (to send
 * a signal while the file is read and checked, whatever the machine's speed).
 * The CLI is killed after `timeoutMs`.
 */
export async function runCliOnFifo(options: { fifo: string; args: string[]; text: string; whileReading?: (child: ChildProcess) => void; timeoutMs?: number }): Promise<FifoRun> {
  const made = spawnSync('mkfifo', [options.fifo]);
  if (made.status !== 0) throw new Error(`mkfifo ${options.fifo} failed: ${made.stderr}`);
  const child = spawn(process.execPath, [cli, ...options.args, options.fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  try {
    const writer = await open(options.fifo, 'w');
    options.whileReading?.(child);
    await writer.writeFile(options.text);
    await writer.close();
    return { code: await exited, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
