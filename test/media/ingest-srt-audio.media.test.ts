/**
 * `ingest.srt` with audio that is not AAC (MP2, AC-3, E-AC-3, Opus: what many SRT encoders
 * and broadcast chains send): a second ffmpeg makes it AAC while the engine
 * demuxes the video itself. ffmpeg publishes testsrc2 and a tone over SRT to
 * ingest.srt -> segment.hls -> serve.http, and ffprobe reads the HLS back:
 * AAC audio as long as what was published, starting within a frame of the
 * video, as with an AAC publish; every ffmpeg gone with the stream.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEVER, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import ingestSrt from '../../nodes/media/ingest-srt.ts';
import { fakeContext } from '../helpers/fake-context.ts';
import { ffprobe, type ProbeResult } from '../../native/ffmpeg/probe.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import { crc32Mpeg } from '../../media/mpegts-psi.ts';
import { childrenNamed, settleChildren } from './children.ts';
import { fetchUntil } from './live-cli.ts';
import { startYaml } from '../helpers/pipeline.ts';
import type { Engine } from '../../runtime/engine.ts';

const SECONDS = 4;
let engine: Engine | undefined;
let subscription: Subscription | undefined;
let publisher: FfmpegProcess | undefined;

afterEach(async () => {
  await engine?.drain({ deadlineMs: 5000 });
  engine = undefined;
  subscription?.unsubscribe();
  subscription = undefined;
  await publisher?.stop(2000);
  publisher = undefined;
  expect(await settleChildren('ffmpeg', 5000)).toEqual([]);
});

/**
 * ffmpeg publishing `seconds` of 320x240 testsrc2 and a 440 Hz tone over SRT, the audio as `codec`. With
 * `linger` the publisher's SRT socket delivers what it still holds when it closes (without it, the last
 * few hundred milliseconds are lost, whatever the codec).
 */
function publish(port: number, codec: string, seconds = SECONDS): FfmpegProcess {
  return FfmpegProcess.spawn({
    inputs: [
      { from: { url: `testsrc2=size=320x240:rate=30:duration=${seconds}` }, options: ['-re', '-f', 'lavfi'] },
      { from: { url: `sine=frequency=440:sample_rate=48000:duration=${seconds}` }, options: ['-re', '-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: `srt://127.0.0.1:${port}?pkt_size=1316&connect_timeout=2000&linger=2` }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', codec, '-f', 'mpegts'] }],
  });
}

interface Published {
  video: ProbeResult;
  audio: ProbeResult;
  /** ffmpeg children seen while the publish ran (publisher, listener, and the transcoder when there is one). */
  children: number;
}

/** Publishes with `codec` audio into ingest.srt -> segment.hls -> serve.http, and probes the finished HLS. */
async function publishAndProbe(codec: string, ports: { srt: number; http: number }): Promise<Published> {
  engine = startYaml(`streams: 1
name: srt-audio
nodes:
  srt:
    op: ingest.srt
    with: { listen: "127.0.0.1:${ports.srt}", streamid: cam }
  hls:
    op: segment.hls
    in: srt
    with: { segment: 1s, reconnect: 0s }
  origin:
    op: serve.http
    in: hls
    with: { listen: "127.0.0.1:${ports.http}", path_prefix: /live }
`);
  const base = `http://127.0.0.1:${ports.http}/live/cam/`;
  // The listener is up once its ffmpeg runs.
  const until = Date.now() + 5000;
  while (childrenNamed('ffmpeg').length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
  publisher = publish(ports.srt, codec);
  let children = 0;
  const watch = setInterval(() => (children = Math.max(children, childrenNamed('ffmpeg').length)), 50);
  expect((await publisher.exited).exitCode).toBe(0);
  clearInterval(watch);
  // The stream's end closes both playlists.
  const audioPlaylist = await fetchUntil(`${base}audio/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 10_000);
  expect(audioPlaylist).toContain('#EXT-X-MAP');
  await fetchUntil(`${base}source/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 10_000);
  const follow = { inputOptions: ['-live_start_index', '0'], packets: true, countFrames: true };
  const [video, audio] = await Promise.all([ffprobe(`${base}source/index.m3u8`, { ...follow, select: 'v:0' }), ffprobe(`${base}audio/index.m3u8`, { ...follow, select: 'a:0' })]);
  return { video, audio, children };
}

const first = (probe: ProbeResult) => Math.min(...probe.packets!.map((p) => Number(p.pts_time)));
const last = (probe: ProbeResult) => Math.max(...probe.packets!.map((p) => Number(p.pts_time)));

describe('ingest.srt with audio that is not AAC', () => {
  const results = new Map<string, Published>();

  it.each([
    ['aac', 19560],
    ['mp2', 19562],
    ['ac3', 19564],
    ['eac3', 19568],
    ['libopus', 19570],
  ])('serves %s audio as AAC over HLS, as long as what was published, starting with the video', async (codec, port) => {
    const got = await publishAndProbe(codec, { srt: port, http: port + 1 });
    results.set(codec, got);
    const audio = got.audio.streams[0]!;
    expect(audio).toMatchObject({ codec_type: 'audio', codec_name: 'aac', sample_rate: '48000', channels: 1 });
    const video = got.video.streams[0]!;
    expect(video).toMatchObject({ codec_name: 'h264', width: 320, height: 240 });
    // Every frame published: 30 fps video, AAC frames of 1024 samples at 48 kHz (a frame or two may go at each end).
    const videoFrames = Number(video.nb_read_frames);
    const audioFrames = Number(audio.nb_read_frames);
    const audioSeconds = last(got.audio) - first(got.audio) + 1024 / 48000;
    console.log(
      `${codec}: video ${videoFrames} frames from ${first(got.video).toFixed(3)} to ${last(got.video).toFixed(3)} s; audio ${audioFrames} AAC frames from ${first(got.audio).toFixed(3)} s to ${last(got.audio).toFixed(3)}, ${audioSeconds.toFixed(3)} s long; ffmpeg children ${got.children}`,
    );
    expect(videoFrames).toBeGreaterThanOrEqual(SECONDS * 30 - 3);
    expect(videoFrames).toBeLessThanOrEqual(SECONDS * 30);
    expect(audioFrames).toBeGreaterThanOrEqual(Math.floor((SECONDS * 48000) / 1024) - 3);
    expect(audioFrames).toBeLessThanOrEqual(Math.ceil((SECONDS * 48000) / 1024) + 2);
    expect(audioSeconds).toBeGreaterThan(SECONDS - 0.1);
    expect(audioSeconds).toBeLessThan(SECONDS + 0.1);
    // Audio and video start together: within one video frame.
    expect(Math.abs(first(got.audio) - first(got.video)), `audio starts at ${first(got.audio)}, video at ${first(got.video)}`).toBeLessThanOrEqual(1 / 30);
    // The transcoder is a third ffmpeg while the stream runs (none for AAC); afterEach sees all of them gone.
    expect(got.children).toBe(codec === 'aac' ? 2 : 3);
  });

  it('gives the transcoded audio the duration and start of an AAC publish', () => {
    const aac = results.get('aac')!;
    for (const codec of ['mp2', 'ac3', 'eac3', 'libopus']) {
      const got = results.get(codec)!;
      const offset = (probe: Published) => first(probe.audio) - first(probe.video);
      expect(Math.abs(offset(got) - offset(aac)), codec).toBeLessThanOrEqual(1 / 30);
      expect(Math.abs(Number(got.audio.streams[0]!.nb_read_frames) - Number(aac.audio.streams[0]!.nb_read_frames)), codec).toBeLessThanOrEqual(3);
    }
  });
});

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await wait(25);
  return check();
}

/** The command line of a child process, as ffmpeg was given it. */
const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe('ingest.srt\'s audio transcoder', () => {
  function startNode(port: number) {
    const ctx = fakeContext(ingestSrt, { listen: `127.0.0.1:${port}`, streamid: 'cam' });
    const items: MediaItem[] = [];
    const at: number[] = [];
    subscription = ingestSrt.create(ctx)(NEVER).subscribe((batch) => {
      for (const item of batch.items as MediaItem[]) {
        items.push(item);
        at.push(Date.now());
      }
    });
    return { ctx, items, at };
  }
  const transcoders = () => childrenNamed('ffmpeg').filter((child) => commandLine(child.pid).includes('-copyts'));

  it('lags the video by a few frames only, and is gone as soon as the node stops mid-publish', async () => {
    const node = startNode(19566);
    await until(() => childrenNamed('ffmpeg').length === 1, 5000);
    publisher = publish(19566, 'mp2', 30);
    expect(await until(() => transcoders().length === 1, 10_000)).toBe(true);
    const [transcoder] = transcoders();
    await until(() => node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'audio').length > 100, 10_000);
    // How long after the video frame of the same time each AAC frame arrived.
    const video = node.items.flatMap((item, i) => (!isMediaEnd(item) && item.track.kind === 'video' ? [{ pts: item.pts, at: node.at[i]! }] : []));
    const lags = node.items
      .flatMap((item, i) => {
        if (isMediaEnd(item) || item.track.kind !== 'audio') return [];
        const same = video.find((frame) => frame.pts >= (item as MediaPacket).pts);
        return same ? [node.at[i]! - same.at] : [];
      })
      .sort((a, b) => a - b);
    const median = lags[Math.floor(lags.length / 2)]!;
    console.log(`transcoded audio after the video of the same time: median ${median} ms, p90 ${lags[Math.floor(lags.length * 0.9)]} ms over ${lags.length} frames (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
    expect(median).toBeLessThan(1000);
    // The node stops while the publisher still sends: its listener and the transcoder exit, and are reaped. (The
    // publisher may exit too, a few ms later, when SRT tells it the listener closed: only the node's own are awaited.)
    const own = childrenNamed('ffmpeg').filter((child) => child.pid !== publisher!.pid).map((child) => child.pid);
    expect(own).toHaveLength(2);
    expect(own).toContain(transcoder!.pid);
    subscription!.unsubscribe();
    subscription = undefined;
    expect(await until(() => !childrenNamed('ffmpeg').some((child) => own.includes(child.pid)), 5000)).toBe(true);
  });

  it('goes on with the video, the failure logged, when the transcoder dies', async () => {
    const node = startNode(19567);
    await until(() => childrenNamed('ffmpeg').length === 1, 5000);
    publisher = publish(19567, 'ac3', 4);
    expect(await until(() => transcoders().length === 1, 10_000)).toBe(true);
    process.kill(transcoders()[0]!.pid, 'SIGKILL');
    await until(() => node.ctx.logs.some((line) => line.level === 'error'), 5000);
    const videoBefore = node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'video').length;
    expect((await publisher.exited).exitCode).toBe(0);
    await until(() => node.items.some(isMediaEnd), 5000);
    expect(node.ctx.logs.filter((line) => line.level === 'error').map((line) => line.message)).toEqual([
      expect.stringMatching(/^node `ingest-srt` \(test\): stream `cam`: the AC-3 to AAC transcoder failed: ffmpeg was killed by SIGKILL.*; the video goes on without audio$/),
    ]);
    const video = node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'video').length;
    expect(video).toBeGreaterThan(videoBefore + 30);
    expect(node.items.filter(isMediaEnd)).toEqual([{ stream: 'cam', end: true }]);
  });

  it('logs output of the transcoder that does not read as MPEG-TS and goes on with the video, the listener untouched', async () => {
    // An ffmpeg on the PATH that, run as the transcoder (`-copyts`), writes a table its reader cannot read (a
    // PAT longer than its packet) before its own output; the listener and the publisher get the real one.
    const dir = mkdtempSync(join(tmpdir(), 'srt-shim-'));
    const real = execFileSync('sh', ['-c', 'command -v ffmpeg'], { encoding: 'utf8' }).trim();
    const bad = Buffer.alloc(188, 0xff);
    bad.set([0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xbf, 0xff]);
    writeFileSync(join(dir, 'bad.ts'), bad);
    writeFileSync(join(dir, 'ffmpeg'), `#!/bin/sh\ncase " $* " in *" -copyts "*) cat '${join(dir, 'bad.ts')}' ;; esac\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      const node = startNode(19568);
      await until(() => childrenNamed('ffmpeg').length === 1, 5000);
      publisher = publish(19568, 'mp2', 4);
      await until(() => node.ctx.logs.some((line) => line.level === 'error'), 10_000);
      const videoBefore = node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'video').length;
      expect((await publisher.exited).exitCode).toBe(0);
      await until(() => node.items.some(isMediaEnd), 5000);
      expect(node.ctx.logs.filter((line) => line.level === 'error').map((line) => line.message)).toEqual([
        expect.stringMatching(/^node `ingest-srt` \(test\): stream `cam`: the MPEG audio \(MP2\) to AAC transcoder's output does not read: a PAT or PMT longer than one packet is not supported; the video goes on without audio$/),
      ]);
      // The listener went on to the end of the publish (never restarted): one publish, its video all there, one end.
      expect(node.ctx.logs.filter((line) => line.message.endsWith('publisher connected'))).toHaveLength(1);
      expect(node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'video').length).toBeGreaterThan(videoBefore + 30);
      expect(node.items.filter(isMediaEnd)).toEqual([{ stream: 'cam', end: true }]);
    } finally {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends the transcoder when AAC joins the program mid-publish (a new PMT version), going on with the AAC as the one audio track', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'srt-pmt-'));
    try {
      // 3 s of video and MP2, then 3 s of video and AAC on other PIDs, its PMT made version 1.
      const part = async (name: string, audio: string, extra: string[]) => {
        await runToEnd(
          FfmpegProcess.spawn({
            inputs: [
              { from: { url: 'testsrc2=size=160x120:rate=30:duration=3' }, options: ['-f', 'lavfi'] },
              { from: { url: 'sine=frequency=440:sample_rate=48000:duration=3' }, options: ['-f', 'lavfi'] },
            ],
            outputs: [{ to: { url: join(dir, name) }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', audio, ...extra, '-f', 'mpegts', '-y'] }],
          }),
        );
        return readFileSync(join(dir, name));
      };
      const first = await part('a.ts', 'mp2', []);
      const second = await part('b.ts', 'aac', ['-mpegts_start_pid', '0x200', '-output_ts_offset', '3']);
      for (let at = 0; at < second.length; at += 188) {
        const pid = ((second[at + 1]! & 0x1f) << 8) | second[at + 2]!;
        if (pid !== 0x1000 || !(second[at + 1]! & 0x40)) continue;
        const section = second.subarray(at + 5);
        section[5] = 0xc1 | (1 << 1);
        const end = 3 + (((section[1]! & 0x0f) << 8) | section[2]!) - 4;
        section.writeUInt32BE(crc32Mpeg(section.subarray(0, end)), end);
      }
      writeFileSync(join(dir, 'both.ts'), Buffer.concat([first, second]));
      const node = startNode(19569);
      await until(() => childrenNamed('ffmpeg').length === 1, 5000);
      // The bytes as they are (no remux, which would rewrite the tables), at once.
      publisher = FfmpegProcess.spawn({
        inputs: [{ from: { url: join(dir, 'both.ts') }, options: ['-f', 'data', '-raw_packet_size', '1316'] }],
        outputs: [{ to: { url: 'srt://127.0.0.1:19569?pkt_size=1316&connect_timeout=2000&linger=2' }, options: ['-map', '0', '-c', 'copy', '-f', 'data'] }],
      });
      expect((await publisher.exited).exitCode).toBe(0);
      expect(await until(() => node.items.some(isMediaEnd), 10_000)).toBe(true);
      const lines = node.ctx.logs.filter((line) => line.level !== 'debug').map((line) => line.message.replace(/^node `ingest-srt` \(test\): /, ''));
      // The transcoder starts at the first audio PES, which may come before or after the first keyframe connects the publish.
      const [started, connected] = [lines[1], lines[2]].sort();
      expect([lines[0], started, connected, ...lines.slice(3)]).toEqual([
        expect.stringMatching(/^no `passphrase`/),
        'stream `cam`: audio is MPEG audio (MP2): transcoding it to AAC',
        'stream `cam`: publisher connected',
        'stream `cam`: the MPEG audio (MP2) audio left the program: its transcoder ends',
        expect.stringMatching(/^stream `cam`: publisher left/),
      ]);
      const audio = node.items.filter((item): item is MediaPacket => !isMediaEnd(item) && item.track.kind === 'audio');
      // All 6 s of audio, 48 kHz AAC: the transcoded 3 s, then the publisher's own.
      expect(audio.length).toBeGreaterThan(270);
      // In time order: the publisher's own AAC waited for the transcoder's last frames (sent all at once here, the
      // whole transcoded 3 s would otherwise come after it); its first frame, priming before the MP2's end, dropped.
      expect(audio.filter((packet, i) => i > 0 && packet.dts <= audio[i - 1]!.dts)).toEqual([]);
      expect(node.ctx.drops.audio_overlap).toBe(1);
      const video = node.items.filter((item) => !isMediaEnd(item) && item.track.kind === 'video');
      expect(video.length).toBeGreaterThan(170);
      expect(transcoders()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
