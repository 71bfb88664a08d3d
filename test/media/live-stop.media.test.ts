/**
 * SIGINT to `streams run pipelines/live.yaml` during or right after an RTMP
 * or SRT publish: the run exits 0 within about 2 s and leaves no child
 * process behind, also when the ladder holds a backlog. A clip sent faster
 * than real time stands for a ladder slower than real time (720p on a busy
 * host): before the fix, the stop waited for ffmpeg to encode all of it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';
import { childProcesses } from './children.ts';
import { fetchUntil, publish, streamsRun, type StreamsRun } from './live-cli.ts';

const ports = { rtmp: 19470, srt: 19471, http: 19472 };
const key = 'stop1';
const rtmpUrl = `rtmp://127.0.0.1:${ports.rtmp}/live/${key}`;
const srtUrl = `srt://127.0.0.1:${ports.srt}?pkt_size=1316`;
/** The most a stop may take: about 2 s, with room for a loaded machine. */
const stopBoundMs = 3_000;

let dir: string;
let clip: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'live-stop-'));
  clip = join(dir, 'clip.ts');
  // 30 s of 360p30 with a keyframe a second: the ladder's veryfast 360p rung needs seconds for it, the publisher none (`-c copy`).
  const fixture = FfmpegProcess.spawn({
    inputs: [
      { from: { url: 'testsrc2=size=640x360:rate=30:duration=30' }, options: ['-f', 'lavfi'] },
      { from: { url: 'sine=frequency=440:sample_rate=48000:duration=30' }, options: ['-f', 'lavfi'] },
    ],
    outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-b:v', '800k', '-c:a', 'aac', '-b:a', '64k', '-f', 'mpegts'] }],
  });
  await runToEnd(fixture);
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `streams run pipelines/live.yaml` on this file's ports, once its listeners are up. */
async function startRun(): Promise<StreamsRun> {
  const run = streamsRun(['pipelines/live.yaml', '--param', `rtmp=127.0.0.1:${ports.rtmp}`, '--param', `srt=127.0.0.1:${ports.srt}`, '--param', `http=127.0.0.1:${ports.http}`, '--param', `key=${key}`]);
  await run.waitForLog('the RTMP listener', (l) => l.node === 'rtmp' && l.msg.includes('listening'));
  await run.waitForLog('the origin', (l) => l.node === 'origin' && l.msg.includes('serving'));
  return run;
}

/**
 * Sends the clip faster than real time (`-c copy`): RTMP as fast as it can be
 * read; SRT at 10 times real time (SRT's live mode drops what a sender floods).
 * Resolves when the publisher has sent it all.
 */
function flood(url: string): Promise<number | null> {
  const srt = url.startsWith('srt://');
  const child = spawn('ffmpeg', ['-v', 'error', '-nostdin', ...(srt ? ['-readrate', '10'] : []), '-i', clip, '-c', 'copy', '-f', srt ? 'mpegts' : 'flv', url], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/** SIGINT to the run: its exit code, how long it took, and the children it had then that are still alive after it exited. */
async function interrupt(run: StreamsRun): Promise<{ code: number | null; ms: number; left: string[] }> {
  const children = childProcesses(run.child.pid!);
  expect(children.map((child) => child.name)).toContain('ffmpeg');
  const started = Date.now();
  const code = await run.stop(20_000);
  const ms = Date.now() - started;
  const left = children.filter((child) => existsSync(`/proc/${child.pid}`)).map((child) => `${child.name} ${child.pid}`);
  return { code, ms, left };
}

describe('SIGINT to a live run', () => {
  it.each([
    // SRT is paced at 10x (see `flood`): the ladder may all but keep up, so only the bound is sure to be tested.
    ['SRT', srtUrl, false],
    // RTMP floods: seconds of work wait for the ladder when the publisher is done (on the old code the stop took 5.8 s at load 24).
    ['RTMP', rtmpUrl, true],
  ])('right after an %s publish sent faster than real time: the run exits 0 within the stop bound, no child left (RTMP: frames not encoded counted)', async (protocol, url, behind) => {
    const run = await startRun();
    try {
      const flooded = flood(url);
      await run.waitForLog('the ladder', (l) => l.node === 'ladder' && l.msg.includes('ffmpeg started'), 20_000);
      expect(await flooded).toBe(0);
      const { code, ms, left } = await interrupt(run);
      const dropped = run.logs.find((l) => l.node === 'ladder' && /frames? still waiting for ffmpeg were not encoded/.test(l.msg));
      console.log(`${protocol}: SIGINT right after a publish faster than real time: exited ${code} after ${ms} ms, ${Number(dropped?.dropped ?? 0)} frames not encoded`);
      expect(code).toBe(0);
      expect(left).toEqual([]);
      expect(ms).toBeLessThan(stopBoundMs);
      if (behind) expect(dropped?.dropped).toBeGreaterThan(0);
    } finally {
      await run.stop(1000);
    }
  }, 90_000);

  it.each([
    ['SRT', srtUrl, 'srt'],
    ['RTMP', rtmpUrl, key],
  ])('during a real-time %s publish: the run exits 0 within the stop bound, no child left', async (protocol, url, stream) => {
    const run = await startRun();
    const publisher = publish(url, { seconds: 8, size: '640x360' });
    try {
      // The encoded rung is served: ingest, ladder and packager all hold the stream.
      await fetchUntil(`http://127.0.0.1:${ports.http}/live/${stream}/360p/index.m3u8`, (body) => /\n[0-9a-z]+-\d+\.m4s/.test(body), 20_000);
      const { code, ms, left } = await interrupt(run);
      console.log(`${protocol}: SIGINT during the publish: exited ${code} after ${ms} ms`);
      expect(code).toBe(0);
      expect(left).toEqual([]);
      expect(ms).toBeLessThan(stopBoundMs);
    } finally {
      publisher.child.kill('SIGKILL');
      await run.stop(1000);
    }
  }, 90_000);
});
