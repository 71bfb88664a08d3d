/**
 * MPEG-TS demuxing speed (`TsReader`): a generated stream of many small PES
 * (30 fps H.264 of 2 KB frames, AAC of 2 ADTS frames a PES, as SRT from a
 * low-bitrate encoder carries it), pushed in 1316-byte chunks (an SRT
 * payload). Prints PES/s and MB/s: the median over 10 processes of each
 * one's fastest of 7 rounds (after two to warm up); with `--baseline=FILE`
 * (another version of `media/mpegts.ts` beside it, e.g. from `git show`),
 * the same for it, the processes alternating, and the ratio.
 *
 *   node bench/mpegts-read.ts [seconds of stream] [--baseline=media/mpegts-before.ts]
 */
import { execFileSync } from 'node:child_process';
import { relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildAdtsHeader, buildAsc } from '../media/aac.ts';
import { loadAverage, median } from './cdn-targets.ts';
import { AUDIO_PID, VIDEO_PID, pes, programTables } from '../test/media/ts-builder.ts';

type Reader = { push(chunk: Buffer): { packets: unknown[]; error?: Error }; end(): { packets: unknown[] } };
type ReaderClass = new (options: { stream: string }) => Reader;

const args = process.argv.slice(2);
const seconds = Number(args.find((a) => !a.startsWith('--')) ?? 600);
const baselinePath = args.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);


/** `seconds` of stream: tables each second, a keyframe each second, audio PES 43 a second. */
function stream(): { bytes: Buffer; pes: number } {
  const startCode = Buffer.from([0, 0, 0, 1]);
  const sps = Buffer.from('6742c00dda0507ec0440000003004000000f03c50aa8', 'hex');
  const pps = Buffer.from('68ce0fc8', 'hex');
  const idr = Buffer.concat([startCode, sps, startCode, pps, startCode, Buffer.from([0x65, 0x88]), Buffer.alloc(8000, 0x11)]);
  const inter = Buffer.concat([startCode, Buffer.from([0x41, 0x9a]), Buffer.alloc(2000, 0x22)]);
  const asc = buildAsc(2, 4, 2);
  const frame = Buffer.alloc(180, 0x21);
  const adts = Buffer.concat([buildAdtsHeader(asc, frame.length), frame, buildAdtsHeader(asc, frame.length), frame]);
  const video = { n: 0 };
  const audio = { n: 0 };
  const parts: Buffer[] = [];
  let count = 0;
  for (let s = 0; s < seconds; s++) {
    parts.push(programTables());
    for (let f = 0; f < 30; f++) {
      const dts = 90_000 * s + 3000 * f;
      parts.push(pes(VIDEO_PID, f === 0 ? idr : inter, dts + 3000, dts, video));
      count++;
      // 43 audio PES a second (2048 samples each at 44.1 kHz), spread over the frames.
      for (let a = Math.ceil((f * 43) / 30); a < Math.ceil(((f + 1) * 43) / 30); a++) {
        parts.push(pes(AUDIO_PID, adts, 90_000 * s + Math.round((a * 90_000) / 43), undefined, audio));
        count++;
      }
    }
  }
  return { bytes: Buffer.concat(parts), pes: count };
}

/** Reads the whole stream once; returns the seconds it took and the packets out. */
function readOnce(Reader: ReaderClass, bytes: Buffer): { seconds: number; packets: number } {
  const started = performance.now();
  const reader = new Reader({ stream: 'bench' });
  let packets = 0;
  for (let i = 0; i < bytes.length; i += 1316) {
    const result = reader.push(bytes.subarray(i, i + 1316));
    if (result.error) throw result.error;
    packets += result.packets.length;
  }
  packets += reader.end().packets.length;
  return { seconds: (performance.now() - started) / 1000, packets };
}

/**
 * In this process: one module's reader, `ROUNDS` times after two to warm up;
 * prints the fastest round's seconds (the other helpers of a shared machine
 * only ever add time) and the packets out.
 */
async function measure(file: string): Promise<void> {
  const { TsReader: Reader } = (await import(pathToFileURL(resolve(file)).href)) as { TsReader: ReaderClass };
  const { bytes } = stream();
  const times: number[] = [];
  let packets = 0;
  for (let round = 0; round < ROUNDS + 2; round++) {
    const run = readOnce(Reader, bytes);
    packets = run.packets;
    if (round > 1) times.push(run.seconds);
  }
  process.stdout.write(JSON.stringify({ seconds: Math.min(...times), packets }));
}

const ROUNDS = 7;
const PROCESSES = 10;
const child = args.find((a) => a.startsWith('--child='))?.slice('--child='.length);
if (child) {
  await measure(child);
} else {
  // Each reader in processes of its own, alternating: in one process, two copies of the same reader differ by
  // up to 10 % (the JIT inlines shared code for the first), more than the differences being looked for.
  const files = [fileURLToPath(new URL('../media/mpegts.ts', import.meta.url)), ...(baselinePath ? [resolve(baselinePath)] : [])];
  const runs = files.map(() => [] as { seconds: number; packets: number }[]);
  for (let p = 0; p < PROCESSES; p++) {
    for (const i of p % 2 ? [...files.keys()].reverse() : [...files.keys()]) {
      const out = execFileSync(process.execPath, [import.meta.filename, String(seconds), `--child=${files[i]}`], { encoding: 'utf8' });
      runs[i]!.push(JSON.parse(out) as { seconds: number; packets: number });
    }
  }
  const packets = runs.map((r) => r[0]!.packets);
  if (packets.some((n) => n !== packets[0])) throw new Error(`the readers disagree: ${packets.join(' vs ')} packets`);
  const { bytes, pes: pesCount } = stream();
  console.log(`${(bytes.length / 1e6).toFixed(1)} MB of MPEG-TS, ${pesCount} PES, ${packets[0]} packets out; load ${loadAverage()}`);
  const medians = runs.map((r) => median(r.map((run) => run.seconds)));
  files.forEach((file, i) => {
    const s = medians[i]!;
    const each = runs[i]!.map((run) => (run.seconds * 1000).toFixed(1)).join(' ');
    console.log(`${relative(process.cwd(), file).padEnd(28)} ${(pesCount / s / 1e6).toFixed(3)} M PES/s  ${(bytes.length / s / 1e6).toFixed(0)} MB/s  median ${(s * 1000).toFixed(1)} ms (each process's fastest: ${each})`);
  });
  if (files.length > 1) console.log(`ratio of times, this / baseline: ${(medians[0]! / medians[1]!).toFixed(3)} (median over ${PROCESSES} processes each of its fastest of ${ROUNDS} rounds)`);
}
