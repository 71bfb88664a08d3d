/**
 * What the live media benchmarks share: the 720p30 source file (made once,
 * the M2b publish: x264 at 4.5 Mbit/s, a keyframe every second, AAC), the
 * ffmpeg publishers they start (one stream each, or many through one ffmpeg's
 * tee muxer; each process killed on exit, Ctrl-C or error),
 * FLV tags paced at real time into a pipe (the baseline's input), and
 * quantiles.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

/** Seconds of media in the source file. */
export const sourceSeconds = 10;

/** The 720p30 H.264 + AAC FLV file every live benchmark publishes, made once (a few seconds of x264). */
export function ensureLiveSource(): string {
  const file = join(tmpdir(), `bench-live-720p30-${sourceSeconds}s.flv`);
  if (existsSync(file)) return file;
  console.error(`making ${file} (once)...`);
  const made = spawnSync('nice', ['-n', '10', 'ffmpeg', '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${sourceSeconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${sourceSeconds}`,
    // A keyframe every 30 frames and nowhere else; no B-frames, as a low-latency publisher (OBS) sends.
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-keyint_min', '30', '-sc_threshold', '0',
    '-b:v', '4.5M', '-maxrate', '4.5M', '-bufsize', '4.5M', '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', file], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error('ffmpeg could not make the source file');
  return file;
}

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Spawns a child that is killed when this process ends, however it ends. */
export function spawnTracked(command: string, args: string[], options: { stdin?: boolean } = {}): ChildProcess {
  const child = spawn(command, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  children.add(child);
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-2000)));
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code !== 0 && code !== 255 && signal === null) console.error(`${command} exited ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`);
  });
  return child;
}

/** Publishes the file to `url` with ffmpeg, in real time and in a loop, without re-encoding. */
export function publish(file: string, url: string): ChildProcess {
  return spawnTracked('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', url]);
}

/**
 * Publishes the file to every url from one ffmpeg, in real time, in a loop,
 * without re-encoding: one read and demux, then ffmpeg's tee muxer writes
 * each packet to one FLV muxer per url, each over its own RTMP connection
 * with its own key, so the server sees `urls.length` independent publishes
 * at a fraction of the CPU of one ffmpeg each. The outputs share one pace:
 * every packet goes to all of them back to back, and an output whose socket
 * is full holds up the others (`onfail=ignore` only drops an output that
 * fails). Connections open one after the other before any media is sent.
 */
export function publishTee(file: string, urls: string[]): ChildProcess {
  for (const url of urls) {
    // The tee muxer's own syntax: `|` separates outputs, `[...]` holds options, `\` escapes.
    if (/[|[\]\\]/.test(url)) throw new Error(`a tee output url cannot hold | [ ] or \\: ${url}`);
  }
  const outputs = urls.map((url) => `[f=flv:onfail=ignore]${url}`).join('|');
  return spawnTracked('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', file, '-map', '0', '-c', 'copy', '-f', 'tee', outputs]);
}

/** Stops a child and waits for it to be gone. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}

/** One FLV tag: its bytes, timestamp (ms), and whether it is a video keyframe or a sequence header. */
interface FlvTag {
  bytes: Buffer;
  time: number;
  keyframe: boolean;
  header: boolean;
}

function flvTags(file: string): { head: Buffer; tags: FlvTag[] } {
  const data = readFileSync(file);
  const headerSize = data.readUInt32BE(5);
  const head = data.subarray(0, headerSize + 4);
  const tags: FlvTag[] = [];
  for (let at = headerSize + 4; at + 11 <= data.length;) {
    const type = data[at];
    const size = data.readUIntBE(at + 1, 3);
    const time = data.readUIntBE(at + 4, 3) | (data[at + 7] << 24);
    const bytes = data.subarray(at, at + 11 + size + 4);
    const first = data[at + 11];
    const second = data[at + 12];
    tags.push({ bytes, time, keyframe: type === 9 && first >> 4 === 1 && second === 1, header: type === 18 || ((type === 8 || type === 9) && second === 0) });
    at += 11 + size + 4;
  }
  return { head, tags };
}

/**
 * Writes the file's FLV tags into `sink` at real time, looping with
 * timestamps carried on, for `seconds`. Calls `onKeyframe(time, writtenAt)`
 * for every video keyframe as it is written.
 */
export async function paceFlv(file: string, sink: Writable, seconds: number, onKeyframe: (time: number, writtenAt: number) => void): Promise<void> {
  const { head, tags } = flvTags(file);
  const loopMs = Math.round(sourceSeconds * 1000);
  sink.write(head);
  const started = performance.now();
  for (let loop = 0; loop * loopMs < seconds * 1000; loop++) {
    for (const tag of tags) {
      if (loop > 0 && tag.header) continue;
      const time = tag.time + loop * loopMs;
      if (time > seconds * 1000) break;
      const wait = started + time - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const bytes = Buffer.from(tag.bytes);
      bytes.writeUIntBE(time & 0xffffff, 4, 3);
      bytes[7] = (time >>> 24) & 0xff;
      if (!sink.write(bytes)) await new Promise((resolve) => sink.once('drain', resolve));
      if (tag.keyframe) onKeyframe(time, Date.now());
    }
  }
  sink.end();
}

/** The q-quantile of `values` (nearest rank); NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** `p50 X ms  p95 Y ms (n=N)`. */
export function spread(values: number[], unit = 'ms', digits = 1): string {
  return `p50 ${quantile(values, 0.5).toFixed(digits)} ${unit}  p95 ${quantile(values, 0.95).toFixed(digits)} ${unit}  (n=${values.length})`;
}

/** Resolves once `url` answers 200 (the engine is listening); throws after `ms`. */
export async function untilServing(url: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}
