/**
 * An ffmpeg command as data: inputs, a filter graph, outputs. `ffmpegArgs`
 * turns it into the argument array `spawn` takes (never a shell string), and
 * numbers the pipes: stdin is `pipe:0`, each output written to the engine
 * gets its own descriptor from 3 up, so one process can write several
 * renditions at once.
 */

/** Where an input is read from: a URL or file ffmpeg opens itself, or the process's stdin. */
export type InputSource = { url: string } | { stdin: true };

/** One `-i`: the options before it (`-f flv`, `-re`) and its source. */
export interface FfmpegInput {
  from: InputSource;
  /** Input options, placed before `-i` (`['-f', 'flv']`). */
  options?: readonly string[];
}

/** Where an output goes: a URL or file ffmpeg writes itself, or a pipe the engine reads. */
export type OutputTarget = { url: string } | { pipe: true } | { stdout: true };

/** One output: its options (`-map`, codecs, `-f`) followed by its target. */
export interface FfmpegOutput {
  to: OutputTarget;
  /** Output options, placed before the target (`['-map', '[v0]', '-c:v', 'libx264', '-f', 'flv']`). */
  options: readonly string[];
}

/** A whole command. */
export interface FfmpegCommand {
  inputs: readonly FfmpegInput[];
  /** A `-filter_complex` graph, labels and all (`[0:v]split=2[a][b]`). */
  filterComplex?: string;
  outputs: readonly FfmpegOutput[];
  /** Options placed first (`-threads 2`); `-hide_banner -nostdin` and the log level are always there. */
  global?: readonly string[];
  /** ffmpeg's `-loglevel`: `error` by default, so stderr holds what went wrong and little else. */
  logLevel?: 'quiet' | 'error' | 'warning' | 'info' | 'verbose';
  /** Report progress (frame, fps, speed, out_time) on a pipe of its own. */
  progress?: boolean;
}

/** What spawning needs besides the arguments: which descriptors carry what. */
export interface CommandLayout {
  args: string[];
  /** Whether stdin carries an input. */
  stdin: boolean;
  /** Whether stdout carries an output. */
  stdout: boolean;
  /** The descriptor of each `{pipe: true}` output, in the order of `outputs` (others absent). */
  outputFds: (number | undefined)[];
  /** The descriptor progress is written to, when asked for. */
  progressFd?: number;
  /** How many descriptors the child needs (`stdio` length). */
  fdCount: number;
}

/**
 * Lays out a command: its argument array and its descriptors.
 *
 * @example
 * ffmpegArgs({ inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }],
 *   outputs: [{ to: { pipe: true }, options: ['-c', 'copy', '-f', 'flv'] }] }).args
 * // ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'flv', '-i', 'pipe:0', '-c', 'copy', '-f', 'flv', 'pipe:3']
 */
export function ffmpegArgs(command: FfmpegCommand): CommandLayout {
  const args = ['-hide_banner', '-nostdin', '-loglevel', command.logLevel ?? 'error', ...(command.global ?? [])];
  let stdin = false;
  let stdout = false;
  let nextFd = 3;
  let progressFd: number | undefined;
  if (command.progress) {
    progressFd = nextFd++;
    // -nostats: the periodic stats line would otherwise fill stderr, whose tail is kept for errors.
    args.push('-nostats', '-progress', `pipe:${progressFd}`, '-stats_period', '1');
  }
  for (const input of command.inputs) {
    args.push(...(input.options ?? []));
    if ('stdin' in input.from) {
      if (stdin) throw new Error('ffmpeg command: only one input can read stdin');
      stdin = true;
      args.push('-i', 'pipe:0');
    } else {
      args.push('-i', input.from.url);
    }
  }
  if (command.filterComplex !== undefined) args.push('-filter_complex', command.filterComplex);
  const outputFds: (number | undefined)[] = [];
  for (const output of command.outputs) {
    args.push(...output.options);
    if ('pipe' in output.to) {
      const fd = nextFd++;
      outputFds.push(fd);
      args.push(`pipe:${fd}`);
    } else if ('stdout' in output.to) {
      if (stdout) throw new Error('ffmpeg command: only one output can write stdout');
      stdout = true;
      outputFds.push(1);
      args.push('pipe:1');
    } else {
      outputFds.push(undefined);
      args.push(output.to.url);
    }
  }
  return { args, stdin, stdout, outputFds, progressFd, fdCount: nextFd };
}
