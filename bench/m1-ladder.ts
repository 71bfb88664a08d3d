/**
 * M1, ladder overhead: the engine's `encode` against the same ffmpeg
 * command run by hand, on the same input (1080p30, about 10 s, H.264 and
 * AAC in FLV, made once), to the default ladder 1080p/720p/480p with x264
 * `veryfast`, keyframes every 2 s.
 *
 * The hand run is the argument array `encode` builds, reading the file
 * itself and writing each rung to /dev/null. The engine run reads the file
 * into packets (media/flv.ts), hands them to an `encode` node, which writes
 * them into its ffmpeg's stdin and reads every rung back into packets.
 * CPU is user + system time: of ffmpeg (this process's reaped children,
 * from /proc/self/stat) and, for the engine, of this process too.
 *
 *   nice -n 10 node bench/m1-ladder.ts [rounds=2] [seconds=10]
 *
 * Prints CPU seconds and the realtime factor (media seconds per wall
 * second) of each (median of the rounds), and the engine's ratios to raw
 * ffmpeg (aim: CPU within 5 %).
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { FlvReader } from '../media/flv.ts';
import type { MediaItem } from '../media/packet.ts';
import { probeEncoders, chooseEncoder } from '../native/ffmpeg/encoders.ts';
import { FfmpegProcess, runToEnd } from '../native/ffmpeg/process.ts';
import encode from '../nodes/media/encode.ts';
import { ladderCommand } from '../nodes/media/ladder-command.ts';
import { resolveLadder, type Rung } from '../nodes/media/ladders.ts';
import { Ack, type Batch } from '../runtime/api.ts';
import { fakeContext } from '../test/helpers/fake-context.ts';

const rounds = Number(process.argv[2] ?? 2);
const seconds = Number(process.argv[3] ?? 10);
const ticksPerSecond = 100; // USER_HZ on Linux

/** CPU seconds of this process's children that have exited and been reaped. */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After `pid (comm)`: state is field 3, so cutime (16) and cstime (17) are at 13 and 14 here.
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
}

function selfCpu(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function makeInput(): Promise<string> {
  const file = join(tmpdir(), `m1-ladder-1080p30-${seconds}s.flv`);
  if (existsSync(file)) return file;
  console.error(`making ${file} (once)...`);
  await runToEnd(FfmpegProcess.spawn({
    inputs: [
      { from: { url: `testsrc2=size=1920x1080:rate=30:duration=${seconds}` }, options: ['-f', 'lavfi'] },
      { from: { url: `sine=frequency=440:duration=${seconds}` }, options: ['-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: file }, options: ['-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '6M', '-g', '60', '-c:a', 'aac', '-f', 'flv', '-y'] }],
  }));
  return file;
}

interface Measure {
  cpu: number;
  wall: number;
}

async function runRaw(file: string, rungs: Rung[]): Promise<Measure> {
  const choice = chooseEncoder(await probeEncoders(), 'h264', 'none')!;
  const command = ladderCommand({ rungs, encoder: choice.spec, preset: 'veryfast', segmentSeconds: 2 });
  const byHand = {
    ...command,
    global: [...(command.global ?? []), '-y'],
    inputs: [{ from: { url: file }, options: command.inputs[0].options }],
    outputs: command.outputs.map((output) => ({ ...output, to: { url: '/dev/null' } })),
  };
  const cpu0 = childrenCpu();
  const start = performance.now();
  await runToEnd(FfmpegProcess.spawn(byHand));
  return { wall: (performance.now() - start) / 1000, cpu: childrenCpu() - cpu0 };
}

async function runEngine(file: string): Promise<Measure & { packets: number }> {
  const ctx = fakeContext(encode, { ladder: 'default', hw: 'none', preset: 'veryfast', segment: '2s' });
  const input = new Subject<Batch>();
  let packets = 0;
  const cpu0 = childrenCpu();
  const self0 = selfCpu();
  const start = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    encode.create(ctx)(input).subscribe({ next: (batch) => (packets += (batch.items as MediaItem[]).length), error: reject, complete: resolve });
  });
  const read = new FlvReader({ stream: 'bench' }).push(readFileSync(file));
  input.next({ items: read.packets, ack: Ack.none() });
  input.complete();
  await done;
  const wall = (performance.now() - start) / 1000;
  if (Object.keys(ctx.drops).length > 0) console.error('drops:', ctx.drops);
  return { wall, cpu: childrenCpu() - cpu0 + (selfCpu() - self0), packets };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const file = await makeInput();
  const rungs = resolveLadder('default') as Rung[];
  await probeEncoders(); // once, outside the measured runs
  const raw: Measure[] = [];
  const engine: Measure[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(await runRaw(file, rungs));
    engine.push(await runEngine(file));
    console.error(`round ${round + 1}: raw ${raw.at(-1)!.cpu.toFixed(2)} s CPU / ${raw.at(-1)!.wall.toFixed(2)} s; engine ${engine.at(-1)!.cpu.toFixed(2)} s CPU / ${engine.at(-1)!.wall.toFixed(2)} s`);
  }
  const rawCpu = median(raw.map((m) => m.cpu));
  const rawWall = median(raw.map((m) => m.wall));
  const engineCpu = median(engine.map((m) => m.cpu));
  const engineWall = median(engine.map((m) => m.wall));
  console.log(`M1 ladder: ${seconds} s of 1080p30 -> 1080p/720p/480p, libx264 veryfast, median of ${rounds}`);
  console.log(`  raw ffmpeg:  CPU ${rawCpu.toFixed(2)} s, realtime factor ${(seconds / rawWall).toFixed(2)}x`);
  console.log(`  engine:      CPU ${engineCpu.toFixed(2)} s, realtime factor ${(seconds / engineWall).toFixed(2)}x`);
  console.log(`  ratio engine/raw: CPU ${(engineCpu / rawCpu).toFixed(3)}, wall ${(engineWall / rawWall).toFixed(3)}`);
}

await main();
