/**
 * Start latency of a live publish, SRT against RTMP (issue #8): the same
 * clip (720p30 H.264 at 2.5 Mbit/s, a keyframe every second, AAC, in
 * MPEG-TS) is published by ffmpeg (`-re -c copy`) to `ingest.srt` or to
 * `ingest.rtmp` in this process, each feeding `segment.hls` (1 s segments,
 * 200 ms parts). Per run, from the publisher's spawn: the first packet out
 * of the ingest, the first part and the first video segment out of the
 * packager (what a playlist needs), and how much video came within 100 ms
 * of the first packet (a burst, as a probing ingest releases, shows there).
 * Both protocols pay the publisher's own start (ffmpeg, its probe of the
 * file, the handshake), so the difference between the rows is the ingest's.
 * A third row publishes the clip cut mid-GOP (`-copyinkf`, so its first
 * frames are not keyframes): the ingest must start at the next keyframe.
 * Runs alternate between the rows, so load changes weigh on all alike.
 *
 *   node bench/srt-start.ts [runs=5]
 *
 * Loopback ports 19720 (SRT) and 19721 (RTMP).
 *
 * Measured 2026-12-03, 5 runs per row, medians in ms from the publisher's spawn (the
 * publisher's own start, ~250 ms here, is in every figure):
 *   ffmpeg relaying the bytes (`-f data`), the node demuxing (load 6.3-12.6):
 *     rtmp packet 362, video segment 1369; srt packet 322 (0.89x rtmp), part 530,
 *     video segment 1324 (0.97x rtmp), 100 ms of video in the first 100 ms (no burst);
 *     srt mid-GOP packet 863, video segment 2305
 *   before, ffmpeg probing (`-analyzeduration 1000000`) and remuxing to FLV (load 5.8-8.7):
 *     rtmp packet 313, video segment 1333; srt packet 1583 (5.06x rtmp), video segment 1675
 *     (1.26x rtmp), 1134 ms of video in the first 100 ms (the probe's backlog, in one burst);
 *     srt mid-GOP packet 1892, video segment 2506
 * The first segment closes at the second keyframe, a GOP (1 s) after the first: SRT now meets
 * issue #8's 1.5 s from the first keyframe as RTMP does; the probe held the first packet back 1.2 s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEVER, share, type Subscription } from 'rxjs';
import ingestRtmp from '../nodes/media/ingest-rtmp.ts';
import ingestSrt from '../nodes/media/ingest-srt.ts';
import segmentHls from '../nodes/media/segment-hls.ts';
import { FfmpegProcess, runToEnd } from '../native/ffmpeg/process.ts';
import { isMediaEnd, type MediaItem } from '../media/packet.ts';
import type { CmafItem } from '../media/segment.ts';
import { fakeContext } from '../test/helpers/fake-context.ts';

const runs = Number(process.argv[2] ?? 5);
const SRT_PORT = 19720;
const RTMP_PORT = 19721;
const dir = mkdtempSync(join(tmpdir(), 'srt-start-'));
const clip = join(dir, 'clip.ts');
const midGop = join(dir, 'mid-gop.ts');

/** The clip: 6 s, made once; and the same bytes cut 0.5 s into a GOP (at a TS packet boundary). */
async function makeClips(): Promise<void> {
  await runToEnd(
    FfmpegProcess.spawn({
      inputs: [
        { from: { url: 'testsrc2=size=1280x720:rate=30:duration=6' }, options: ['-f', 'lavfi'] },
        { from: { url: 'sine=frequency=440:duration=6' }, options: ['-f', 'lavfi'] },
      ],
      outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-b:v', '2500k', '-c:a', 'aac', '-f', 'mpegts', '-y'] }],
    }),
  );
  const bytes = readFileSync(clip);
  // About half a second in at 2.6 Mbit/s, rounded to a whole TS packet: mid-GOP, since keyframes are 1 s apart.
  const cut = Math.floor((bytes.length * 0.5) / 6 / 188) * 188;
  writeFileSync(midGop, bytes.subarray(cut));
}

/**
 * A publisher as OBS is one: encoding a live source as it goes (a keyframe every second), so media
 * arrives at its real pace. (A file sent with `-re -c copy` reaches RTMP with its first second in a
 * burst, which hides the wait for the first segment's closing keyframe.)
 */
function liveEncoder(target: { url: string }, format: 'mpegts' | 'flv') {
  return {
    inputs: [
      { from: { url: 'testsrc2=size=640x360:rate=30:duration=3' }, options: ['-re', '-f', 'lavfi'] },
      { from: { url: 'sine=frequency=440:duration=3' }, options: ['-re', '-f', 'lavfi'] },
    ],
    outputs: [{ to: target, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30', '-b:v', '1500k', '-c:a', 'aac', '-f', format] }],
  };
}

interface Times {
  packet?: number;
  keyframe?: boolean;
  part?: number;
  /** The first video segment: playlists need one (an audio track may close a short one first). */
  segment?: number;
  /** Media (ms of video timestamps) that arrived within 100 ms of the first packet: a burst shows here. */
  burst?: number;
}

type Row = 'rtmp' | 'srt' | 'srt mid-GOP';

async function once(row: Row): Promise<Times> {
  const srt = row !== 'rtmp';
  const ingest = srt ? ingestSrt.create(fakeContext(ingestSrt, { listen: `127.0.0.1:${SRT_PORT}`, streamid: 'b' })) : ingestRtmp.create(fakeContext(ingestRtmp, { listen: `127.0.0.1:${RTMP_PORT}` }));
  const packager = segmentHls.create(fakeContext(segmentHls, { segment: '1s', part: '200ms' }));
  const times: Times = {};
  let started = 0;
  let firstVideoMs: number | undefined;
  const videoTracks = new Set<string>();
  // One ingest for both subscribers: each subscription would otherwise start its own listener.
  const source = ingest(NEVER).pipe(share());
  const subscriptions: Subscription[] = [
    source.subscribe((batch) => {
      for (const item of batch.items as MediaItem[]) {
        if (isMediaEnd(item)) continue;
        const now = performance.now() - started;
        times.packet ??= now;
        if (item.track.kind !== 'video') continue;
        times.keyframe ??= item.keyframe;
        const ms = (item.dts * 1000) / item.track.timescale;
        firstVideoMs ??= ms;
        if (now - times.packet <= 100) times.burst = ms - firstVideoMs;
      }
    }),
    packager(source).subscribe((batch) => {
      for (const item of batch.items as CmafItem[]) {
        if (item.type === 'part' && times.part === undefined) times.part = performance.now() - started;
        if (item.type === 'init' && item.info.kind === 'video') videoTracks.add(item.track);
        if (item.type === 'segment' && videoTracks.has(item.track)) times.segment ??= performance.now() - started;
      }
    }),
  ];
  // The listener (ffmpeg for SRT, a socket for RTMP) needs a moment before a publisher can connect.
  await new Promise((resolve) => setTimeout(resolve, srt ? 700 : 300));
  const target = srt ? { url: `srt://127.0.0.1:${SRT_PORT}?pkt_size=1316&connect_timeout=3000` } : { url: `rtmp://127.0.0.1:${RTMP_PORT}/live/b` };
  started = performance.now();
  const publisher = FfmpegProcess.spawn(row === 'srt mid-GOP' ? { inputs: [{ from: { url: midGop }, options: ['-re'] }], outputs: [{ to: target, options: ['-t', '3', '-c', 'copy', '-copyinkf', '-f', 'mpegts'] }] } : liveEncoder(target, srt ? 'mpegts' : 'flv'));
  await publisher.exited;
  for (const subscription of subscriptions) subscription.unsubscribe();
  // ffmpeg's listener goes with the unsubscribe; let it go before the next run takes the port.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

await makeClips();
const rows: Row[] = ['rtmp', 'srt', 'srt mid-GOP'];
const results = new Map<Row, Times[]>(rows.map((row) => [row, []]));
const loads: number[] = [];
for (let run = 0; run < runs; run++) {
  for (const row of rows) {
    results.get(row)!.push(await once(row));
    loads.push(loadavg()[0]!);
  }
}
rmSync(dir, { recursive: true, force: true });

console.log(`${runs} runs per row, ms from the publisher's spawn (median [min-max]); load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
const figure = (values: (number | undefined)[]): string => {
  const got = values.filter((v): v is number => v !== undefined);
  if (got.length === 0) return 'none'.padEnd(22);
  const missing = values.length - got.length;
  return `${median(got).toFixed(0)} [${Math.min(...got).toFixed(0)}-${Math.max(...got).toFixed(0)}]${missing ? ` (${missing} missing)` : ''}`.padEnd(22);
};
const base = median(results.get('rtmp')!.map((t) => t.packet ?? Number.NaN));
for (const row of rows) {
  const times = results.get(row)!;
  const packet = median(times.map((t) => t.packet ?? Number.NaN));
  console.log(
    `${row.padEnd(12)} first packet ${figure(times.map((t) => t.packet))} first part ${figure(times.map((t) => t.part))} first segment ${figure(times.map((t) => t.segment))} video within 100 ms of it ${figure(times.map((t) => t.burst))} ${(packet / base).toFixed(2)}× rtmp's first packet; first video a keyframe: ${times.every((t) => t.keyframe !== false)}`,
  );
}
process.exit(0);
