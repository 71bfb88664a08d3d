/**
 * A running ffmpeg: spawned from a command (argument arrays, never a
 * shell), with its input on stdin, each piped output on its own descriptor,
 * progress parsed, the tail of stderr kept for the error, and a stop that
 * asks first (SIGTERM: ffmpeg finishes its outputs) and forces after a
 * deadline (SIGKILL). Node reaps the child on exit, so no zombie is left;
 * the exit is awaited before `stop` resolves.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { NativeError } from '../client-owner.ts';
import { ffmpegArgs, type CommandLayout, type FfmpegCommand } from './command.ts';
import { ProgressParser, type FfmpegProgress } from './progress.ts';

/** Codes of `FfmpegError`: a non-zero exit, death by a signal we did not send, or no binary. */
export type FfmpegErrorCode = 'ffmpeg_failed' | 'ffmpeg_killed' | 'ffmpeg_missing';

/** ffmpeg (or ffprobe) ended badly: the exit code or signal, and the last lines it wrote to stderr. */
export class FfmpegError extends NativeError {
  declare readonly code: FfmpegErrorCode;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines of stderr, oldest first. */
  readonly stderr: readonly string[];

  constructor(code: FfmpegErrorCode, message: string, details: { exitCode: number | null; signal: NodeJS.Signals | null; stderr: readonly string[]; cause?: unknown }) {
    super(code, message, { cause: details.cause });
    this.name = 'FfmpegError';
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stderr = details.stderr;
  }
}

/** How a run ended. `error` is set unless it succeeded or was stopped by us. */
export interface FfmpegExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** `stop` or `finish` was called before it exited. */
  stopped: boolean;
  error?: FfmpegError;
}

/** Options of a spawn. */
export interface SpawnOptions {
  /** The binary, `ffmpeg` on the PATH unless told. */
  binary?: string;
  /** Called with each progress report (needs `progress: true` in the command). */
  onProgress?(progress: FfmpegProgress): void;
  /** How many stderr lines to keep for the error (20). */
  stderrLines?: number;
  /** Secrets in the arguments (a passphrase) that must never reach a message: replaced by `***` in the kept stderr. */
  redact?: readonly string[];
}

/** The last `size` lines written to a stream (ffmpeg ends lines with `\n` or, for stats, `\r`). */
class LineTail {
  readonly lines: string[] = [];
  #partial = '';
  readonly #size: number;
  readonly #secrets: readonly string[];

  constructor(size: number, secrets: readonly string[] = []) {
    this.#size = size;
    this.#secrets = secrets.filter((secret) => secret.length > 0);
  }

  push(chunk: Buffer): void {
    const parts = (this.#partial + chunk.toString()).split(/[\r\n]/);
    this.#partial = parts.pop() ?? '';
    for (const part of parts) this.#add(part);
  }

  flush(): void {
    this.#add(this.#partial);
    this.#partial = '';
  }

  #add(line: string): void {
    if (line.trim() === '') return;
    for (const secret of this.#secrets) line = line.split(secret).join('***');
    this.lines.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.lines.length > this.#size) this.lines.shift();
  }
}

/** One ffmpeg (or ffprobe) process. */
export class FfmpegProcess {
  readonly #child: ChildProcess;
  readonly #layout: CommandLayout;
  readonly #tail: LineTail;
  #stopped = false;
  #exit: FfmpegExit | undefined;
  /** Resolves when the process has exited and its descriptors are closed; never rejects. */
  readonly exited: Promise<FfmpegExit>;

  /** Spawns `command` (see `ffmpegArgs`). A missing binary shows as `exited` with `ffmpeg_missing`. */
  static spawn(command: FfmpegCommand, options: SpawnOptions = {}): FfmpegProcess {
    return new FfmpegProcess(ffmpegArgs(command), options);
  }

  /** Spawns a binary with raw arguments (ffprobe); stdout is piped, stdin is not. */
  static spawnRaw(args: string[], options: SpawnOptions = {}): FfmpegProcess {
    return new FfmpegProcess({ args, stdin: false, stdout: true, outputFds: [1], fdCount: 3 }, options);
  }

  private constructor(layout: CommandLayout, options: SpawnOptions) {
    this.#layout = layout;
    this.#tail = new LineTail(options.stderrLines ?? 20, options.redact);
    const stdio: StdioOptions = [layout.stdin ? 'pipe' : 'ignore', layout.stdout ? 'pipe' : 'ignore', 'pipe'];
    for (let fd = 3; fd < layout.fdCount; fd++) stdio.push('pipe');
    const binary = options.binary ?? 'ffmpeg';
    this.#child = spawn(binary, layout.args, { stdio });
    const child = this.#child;
    // A write to a pipe ffmpeg has closed (it died, or stopped reading) is seen through the exit, not thrown.
    for (const stream of child.stdio) stream?.on('error', () => undefined);
    child.stderr?.on('data', (chunk: Buffer) => this.#tail.push(chunk));
    if (layout.progressFd !== undefined) {
      const parser = new ProgressParser((progress) => options.onProgress?.(progress));
      (child.stdio[layout.progressFd] as Readable).on('data', (chunk: Buffer) => parser.push(chunk));
    }
    this.exited = new Promise<FfmpegExit>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') return;
        this.#exit = {
          exitCode: null,
          signal: null,
          stopped: this.#stopped,
          error: new FfmpegError('ffmpeg_missing', `\`${binary}\` was not found: install ffmpeg (Debian: apt-get install ffmpeg)`, { exitCode: null, signal: null, stderr: [], cause: error }),
        };
        resolve(this.#exit);
      });
      child.once('close', (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (this.#exit) return;
        this.#tail.flush();
        this.#exit = { exitCode, signal, stopped: this.#stopped, error: this.#stopped ? undefined : this.#errorOf(binary, exitCode, signal) };
        resolve(this.#exit);
      });
    });
  }

  #errorOf(binary: string, exitCode: number | null, signal: NodeJS.Signals | null): FfmpegError | undefined {
    if (exitCode === 0) return undefined;
    const stderr = [...this.#tail.lines];
    const last = stderr.at(-1) ?? 'no message';
    const details = { exitCode, signal, stderr };
    if (signal !== null) return new FfmpegError('ffmpeg_killed', `${binary} was killed by ${signal}: ${last}`, details);
    return new FfmpegError('ffmpeg_failed', `${binary} exited with code ${exitCode}: ${last}`, details);
  }

  /** The process id (undefined when it could not start). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether it has not exited yet. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last stderr lines so far. */
  get stderr(): readonly string[] {
    return this.#tail.lines;
  }

  /** The input pipe (`{stdin: true}` input), to write the input into. */
  get stdin(): Writable {
    if (!this.#layout.stdin || !this.#child.stdin) throw new Error('ffmpeg command has no stdin input');
    return this.#child.stdin;
  }

  /** The readable side of output number `index` (in the command's `outputs` order), which must be a pipe or stdout. */
  output(index: number): Readable {
    const fd = this.#layout.outputFds[index];
    if (fd === undefined) throw new Error(`ffmpeg output ${index} is not a pipe`);
    return this.#child.stdio[fd] as Readable;
  }

  /**
   * Ends the input and lets ffmpeg finish (flush its encoders, write its
   * trailers); stops it if it has not exited after `deadlineMs`.
   */
  async finish(deadlineMs = 5000): Promise<FfmpegExit> {
    if (this.#exit) return this.#exit;
    this.#stopped = true;
    if (this.#layout.stdin) this.#child.stdin?.end();
    else this.#child.kill('SIGTERM');
    return this.#awaitOrKill(deadlineMs);
  }

  /**
   * Stops it: SIGTERM (ffmpeg finishes its outputs and exits) and the end of
   * its input (ffmpeg blocked reading stdin does not see the signal), then
   * SIGKILL if it has not exited after `deadlineMs`. Resolves once it has exited.
   */
  async stop(deadlineMs = 2000): Promise<FfmpegExit> {
    if (this.#exit) return this.#exit;
    this.#stopped = true;
    this.#child.kill('SIGTERM');
    if (this.#layout.stdin) this.#child.stdin?.end();
    return this.#awaitOrKill(deadlineMs);
  }

  /**
   * Ends the input at once, dropping what was written but not yet taken in
   * (a live backlog that a shutdown must not wait for): ffmpeg finishes what
   * it has read and exits. If it has not after `deadlineMs`, it is stopped
   * (`stop(killMs)`). Resolves once it has exited.
   */
  async cutInput(deadlineMs: number, killMs = 500): Promise<FfmpegExit> {
    if (this.#exit) return this.#exit;
    this.#stopped = true;
    // Destroying the pipe discards Node's queue; what ffmpeg has not read from the kernel's pipe buffer (64 KiB) it still reads.
    if (this.#layout.stdin) this.#child.stdin?.destroy();
    else this.#child.kill('SIGTERM');
    return (await this.#exitWithin(deadlineMs)) ?? this.stop(killMs);
  }

  /** Sends a signal without marking the process stopped (tests simulate a crash this way). */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** The exit, if it comes within `ms`; undefined otherwise. */
  async #exitWithin(ms: number): Promise<FfmpegExit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    const exit = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    return exit;
  }

  async #awaitOrKill(deadlineMs: number): Promise<FfmpegExit> {
    const first = await this.#exitWithin(deadlineMs);
    if (first) return first;
    this.#child.kill('SIGKILL');
    // Descriptors the engine does not read could keep `close` from firing; destroying them lets it.
    for (const stream of this.#child.stdio) stream?.destroy();
    return this.exited;
  }
}

/**
 * Runs a short command to its end and collects stdout: resolves with it on
 * success, rejects with an `FfmpegError` otherwise (fixtures, probes).
 */
export async function runToEnd(process: FfmpegProcess, stdoutIndex?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (stdoutIndex !== undefined) process.output(stdoutIndex).on('data', (chunk: Buffer) => chunks.push(chunk));
  const exit = await process.exited;
  if (exit.error) throw exit.error;
  return Buffer.concat(chunks);
}
