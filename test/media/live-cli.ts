/**
 * The live pipeline as a user runs it, for media tests: `streams run` as a
 * child process (its JSON log lines and stdout kept), ffmpeg publishers of
 * test patterns over RTMP and SRT, and polling of the origin over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** One JSON log line of the engine (stderr). */
export interface LogLine {
  level: number;
  msg: string;
  node?: string;
  stream?: string;
  pid?: number;
  [field: string]: unknown;
}

/** A running `streams run`: its log lines and stdout lines so far. */
export interface StreamsRun {
  child: ChildProcess;
  logs: LogLine[];
  stdout: string[];
  /** Resolves with the first log line (from the start) that `match` accepts; rejects after `ms`. */
  waitForLog(what: string, match: (line: LogLine) => boolean, ms?: number): Promise<LogLine>;
  /** SIGINT (drain), then the exit code; SIGKILL if it has not exited after `ms`. */
  stop(ms?: number): Promise<number | null>;
}

/** Splits a stream's text into lines as they complete. */
function lines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += chunk.toString('utf8');
    let end: number;
    while ((end = rest.indexOf('\n')) >= 0) {
      each(rest.slice(0, end));
      rest = rest.slice(end + 1);
    }
  });
}

/** Starts `node bin/streams.ts run ARGS...` from the project folder. */
export function streamsRun(args: readonly string[]): StreamsRun {
  const child = spawn(process.execPath, ['bin/streams.ts', 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  let exit: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exit = code))));
  lines(child.stderr!, (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ level: 60, msg: line });
    }
  });
  lines(child.stdout!, (line) => stdout.push(line));
  return {
    child,
    logs,
    stdout,
    async waitForLog(what, match, ms = 15_000) {
      const until = Date.now() + ms;
      for (;;) {
        const found = logs.find(match);
        if (found) return found;
        if (exit !== undefined) throw new Error(`streams exited (${exit}) before ${what}:\n${logs.map((l) => l.msg).join('\n')}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; log:\n${logs.map((l) => l.msg).join('\n')}`);
        await sleep(50);
      }
    },
    async stop(ms = 10_000) {
      if (exit !== undefined) return exit;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** An ffmpeg publisher; `exited` resolves with its exit code and stderr. */
export interface Publisher {
  child: ChildProcess;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/**
 * Publishes `seconds` of testsrc2 (`size`, `rate` fps, a keyframe every
 * second) and a 440 Hz sine, in real time, to `url`: FLV for `rtmp://`,
 * MPEG-TS for `srt://`.
 */
export function publish(url: string, options: { seconds: number; size?: string; rate?: number }): Publisher {
  const rate = options.rate ?? 30;
  const size = options.size ?? '640x360';
  const args = ['-v', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`, '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(options.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(rate), '-keyint_min', String(rate), '-sc_threshold', '0', '-b:v', '800k',
    '-c:a', 'aac', '-b:a', '64k'];
  args.push(...(url.startsWith('srt://') ? ['-f', 'mpegts'] : ['-f', 'flv']), url);
  const child = spawn('nice', ['-n', '10', 'ffmpeg', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, startedAt: Date.now(), exited };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** GETs `url` until it answers 200 and `accept(body)` holds; the body. Rejects after `ms`. */
export async function fetchUntil(url: string, accept: (body: string) => boolean = () => true, ms = 15_000): Promise<string> {
  const until = Date.now() + ms;
  let last = '';
  for (;;) {
    const response = await fetch(url).catch(() => undefined);
    if (response?.status === 200) {
      last = await response.text();
      if (accept(last)) return last;
    } else {
      last = `status ${response?.status ?? 'none'}`;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${url}; last: ${last.slice(-600)}`);
    await sleep(50);
  }
}
