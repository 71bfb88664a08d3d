import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegArgs } from '../../native/ffmpeg/command.ts';
import { chooseEncoder, probeEncoders } from '../../native/ffmpeg/encoders.ts';
import { ffprobe } from '../../native/ffmpeg/probe.ts';
import { FfmpegError, FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import type { FfmpegProgress } from '../../native/ffmpeg/progress.ts';
import { childrenNamed, settleChildren } from './children.ts';

let dir: string;
let flvFile: string;

/** A 2 s 320x240 test pattern with a tone, as FLV (H.264 + AAC). */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ffmpeg-test-'));
  flvFile = join(dir, 'in.flv');
  const make = FfmpegProcess.spawn({
    inputs: [
      { from: { url: 'testsrc2=size=320x240:rate=25:duration=2' }, options: ['-f', 'lavfi'] },
      { from: { url: 'sine=frequency=440:duration=2' }, options: ['-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: flvFile }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-f', 'flv', '-y'] }],
  });
  await runToEnd(make);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  expect(await settleChildren('ffmpeg')).toEqual([]);
});

function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => stream.on('close', () => resolve(Buffer.concat(chunks))));
}

describe('ffmpegArgs', () => {
  it('numbers piped outputs from descriptor 3, after the progress pipe, and reads stdin as pipe:0', () => {
    const layout = ffmpegArgs({
      inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }],
      filterComplex: '[0:v]split=2[a][b]',
      outputs: [
        { to: { pipe: true }, options: ['-map', '[a]', '-f', 'flv'] },
        { to: { url: 'out.ts' }, options: ['-map', '[b]'] },
        { to: { pipe: true }, options: ['-map', '0:a', '-f', 'flv'] },
      ],
      progress: true,
    });
    expect(layout.args).toEqual([
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats', '-progress', 'pipe:3', '-stats_period', '1',
      '-f', 'flv', '-i', 'pipe:0', '-filter_complex', '[0:v]split=2[a][b]',
      '-map', '[a]', '-f', 'flv', 'pipe:4', '-map', '[b]', 'out.ts', '-map', '0:a', '-f', 'flv', 'pipe:5',
    ]);
    expect(layout).toMatchObject({ stdin: true, stdout: false, outputFds: [4, undefined, 5], progressFd: 3, fdCount: 6 });
  });
});

describe('FfmpegProcess', () => {
  it('reads stdin and writes two renditions to their own pipes, with progress', async () => {
    const reports: FfmpegProgress[] = [];
    const process = FfmpegProcess.spawn(
      {
        inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }],
        filterComplex: '[0:v]split=2[a][b];[b]scale=160:120[small]',
        outputs: [
          { to: { pipe: true }, options: ['-map', '[a]', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'flv'] },
          { to: { pipe: true }, options: ['-map', '[small]', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'flv'] },
        ],
        progress: true,
      },
      { onProgress: (progress) => reports.push(progress) },
    );
    const big = collect(process.output(0));
    const small = collect(process.output(1));
    process.stdin.end(readFileSync(flvFile));
    const exit = await process.exited;
    expect(exit).toMatchObject({ exitCode: 0, stopped: false });
    expect(exit.error).toBeUndefined();
    const [bigBytes, smallBytes] = await Promise.all([big, small]);
    expect(bigBytes.subarray(0, 3).toString()).toBe('FLV');
    expect(smallBytes.subarray(0, 3).toString()).toBe('FLV');
    expect(smallBytes.length).toBeLessThan(bigBytes.length);
    const last = reports.at(-1)!;
    expect(last.end).toBe(true);
    expect(last.frame).toBe(50);
    expect(last.outTimeMs).toBeGreaterThan(1900);
  });

  it('fails with ffmpeg_failed, the exit code and the last stderr lines', async () => {
    const process = FfmpegProcess.spawn({ inputs: [{ from: { url: join(dir, 'missing.flv') } }], outputs: [{ to: { url: '-' }, options: ['-f', 'null'] }] });
    const exit = await process.exited;
    expect(exit.error).toBeInstanceOf(FfmpegError);
    expect(exit.error).toMatchObject({ code: 'ffmpeg_failed', exitCode: 1, signal: null });
    expect(exit.error!.stderr.join('\n')).toContain('No such file or directory');
    expect(exit.error!.message).toMatch(/^ffmpeg exited with code 1: .*No such file or directory/);
  });

  it('replaces secrets given to redact in the kept stderr and the message', async () => {
    const secret = 'hunter2-passphrase';
    const process = FfmpegProcess.spawn({ inputs: [{ from: { url: join(dir, `${secret}.flv`) } }], outputs: [{ to: { url: '-' }, options: ['-f', 'null'] }] }, { redact: [secret] });
    const exit = await process.exited;
    expect(exit.error!.message).toContain('***.flv');
    expect(JSON.stringify(exit.error!.stderr) + exit.error!.message).not.toContain(secret);
  });

  it('reports a death by a signal it did not send as ffmpeg_killed', async () => {
    const process = FfmpegProcess.spawn({ inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }], outputs: [{ to: { url: '-' }, options: ['-f', 'null'] }] });
    process.signal('SIGKILL');
    const exit = await process.exited;
    expect(exit.error).toMatchObject({ code: 'ffmpeg_killed', signal: 'SIGKILL', exitCode: null });
  });

  it('reports a missing binary as ffmpeg_missing', async () => {
    const process = FfmpegProcess.spawn({ inputs: [], outputs: [] }, { binary: 'ffmpeg-not-installed' });
    const exit = await process.exited;
    expect(exit.error).toMatchObject({ code: 'ffmpeg_missing' });
  });

  it('stops a running encode with SIGTERM, no error, no child left', async () => {
    let encoding!: () => void;
    const started = new Promise<void>((resolve) => (encoding = resolve));
    const process = FfmpegProcess.spawn(
      {
        inputs: [{ from: { url: 'testsrc2=size=160x120:rate=25' }, options: ['-re', '-f', 'lavfi'] }],
        outputs: [{ to: { url: '-' }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'null'] }],
        progress: true,
      },
      { onProgress: () => encoding() },
    );
    // Once it reports progress it is encoding, its signal handlers installed (before, SIGTERM's default action kills it).
    await started;
    expect(childrenNamed('ffmpeg').map((c) => c.pid)).toContain(process.pid);
    const exit = await process.stop(3000);
    expect(exit).toMatchObject({ stopped: true, signal: null });
    expect(exit.error).toBeUndefined();
  });

  it('kills with SIGKILL after the deadline when SIGTERM is not enough (ffmpeg blocked writing a pipe nobody reads)', async () => {
    const process = FfmpegProcess.spawn({
      inputs: [{ from: { url: 'testsrc2=size=640x480:rate=25' }, options: ['-f', 'lavfi'] }],
      outputs: [{ to: { pipe: true }, options: ['-f', 'rawvideo'] }],
    });
    // Nothing reads the pipe: once it is full, ffmpeg waits in write(2), where SIGTERM only sets a flag.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    const exit = await process.stop(300);
    expect(exit).toMatchObject({ stopped: true, signal: 'SIGKILL' });
    expect(exit.error).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops at once when blocked reading stdin: the input is ended with the signal', async () => {
    const process = FfmpegProcess.spawn({ inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }], outputs: [{ to: { url: '-' }, options: ['-f', 'null'] }] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    const exit = await process.stop(5000);
    // Still opening its input, ffmpeg has not installed its handlers: SIGTERM's default action ends it, or EOF does.
    expect(exit.signal).not.toBe('SIGKILL');
    expect(exit.stopped).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('finishes by ending stdin: ffmpeg flushes and exits 0', async () => {
    const process = FfmpegProcess.spawn({ inputs: [{ from: { stdin: true }, options: ['-f', 'flv'] }], outputs: [{ to: { stdout: true }, options: ['-c', 'copy', '-f', 'flv'] }] });
    const out = collect(process.output(0));
    process.stdin.write(readFileSync(flvFile));
    const exit = await process.finish(5000);
    expect(exit).toMatchObject({ exitCode: 0, stopped: true });
    expect((await out).length).toBeGreaterThan(1000);
  });
});

describe('encoder probe', () => {
  it('finds libx264 working and the hardware encoders failing here, once', async () => {
    const first = probeEncoders();
    expect(probeEncoders()).toBe(first);
    const probe = await first;
    expect(probe.get('libx264')!.works).toBe(true);
    // This machine has no GPU: the listed hardware encoders fail to open.
    expect(probe.get('h264_nvenc')!.works).toBe(false);
    expect(probe.get('h264_nvenc')!.reason).toMatch(/cuda|nvenc|load/i);
    expect(probe.get('h264_vaapi')!.works).toBe(false);
  });

  it('falls back to software with a warning naming what failed', async () => {
    const probe = await probeEncoders();
    const asked = chooseEncoder(probe, 'h264', 'nvenc')!;
    expect(asked.spec.name).toBe('libx264');
    expect(asked.warning).toMatch(/^nvenc h264 encoding does not work on this host \(.+\): using libx264$/);
    const auto = chooseEncoder(probe, 'h264', 'auto')!;
    expect(auto.spec.name).toBe('libx264');
    expect(auto.warning).toContain('h264_nvenc, h264_vaapi, h264_qsv failed');
    expect(chooseEncoder(probe, 'h264', 'none')).toEqual({ spec: expect.objectContaining({ name: 'libx264' }) });
  });
});

describe('ffprobe', () => {
  it('reads streams, format, counted frames and keyframe packets', async () => {
    const result = await ffprobe(flvFile, { countFrames: true });
    const video = result.streams.find((s) => s.codec_type === 'video')!;
    expect(video).toMatchObject({ codec_name: 'h264', width: 320, height: 240, nb_read_frames: '50' });
    expect(result.streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    expect(result.format.format_name).toBe('flv');
    const packets = (await ffprobe(flvFile, { packets: true, select: 'v:0' })).packets!;
    const keyTimes = packets.filter((p) => p.flags.startsWith('K')).map((p) => Number(p.pts_time));
    // A keyframe every 25 frames at 25 fps (the FLV muxer offsets both by the AAC priming delay).
    expect(keyTimes).toHaveLength(2);
    expect(keyTimes[1] - keyTimes[0]).toBeCloseTo(1, 3);
  });

  it('rejects with ffprobe\'s error for a file it cannot read', async () => {
    await expect(ffprobe(join(dir, 'nothing.mp4'))).rejects.toMatchObject({ code: 'ffmpeg_failed', message: expect.stringContaining('ffprobe exited with code 1') });
  });
});
