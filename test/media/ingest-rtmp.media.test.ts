import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import type { Engine } from '../../runtime/engine.ts';
import type { Logger } from '../../runtime/api.ts';
import { collected, startYaml } from '../helpers/pipeline.ts';
import { publish, type Publisher } from './rtmp-publisher.ts';

const port = 19531;
const key = 'k3y-secret-one';
const other = 'k3y-secret-two';
const aliceKey = 'alice-s3cret-key';
const lines: { level: string; fields: object; message: string }[] = [];
const log: Logger = {
  debug: (fields, message) => void lines.push({ level: 'debug', fields, message }),
  info: (fields, message) => void lines.push({ level: 'info', fields, message }),
  warn: (fields, message) => void lines.push({ level: 'warn', fields, message }),
  error: (fields, message) => void lines.push({ level: 'error', fields, message }),
};
let engine: Engine;
const running = new Set<Publisher>();

function url(streamKey: string): string {
  return `rtmp://127.0.0.1:${port}/live/${streamKey}`;
}

function start(streamKey: string, options: { seconds: number; video?: boolean; audio?: boolean }): Publisher {
  const publisher = publish(url(streamKey), options);
  running.add(publisher);
  void publisher.exited.then(() => running.delete(publisher));
  return publisher;
}

function items(): MediaItem[] {
  return (collected.get('rtmp') ?? []) as MediaItem[];
}

function packetsOf(stream: string, from = 0): MediaPacket[] {
  return items()
    .slice(from)
    .filter((item): item is MediaPacket => !isMediaEnd(item) && item.stream === stream);
}

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function endIndex(stream: string, from: number): number {
  return items().findIndex((item, index) => index >= from && isMediaEnd(item) && item.stream === stream);
}

function dropped(reason: string): number {
  return new Map(engine.nodeStats()).get('rtmp')!.dropped.get(reason) ?? 0;
}

beforeAll(async () => {
  process.env.RTMP_TEST_KEY = key;
  engine = startYaml(
    `
streams: 1
name: ingest
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${port}", keys: ["\${env:RTMP_TEST_KEY}", "${other}", { name: alice, key: "${aliceKey}" }], max_streams: 4, timeout: 4000 } }
  media: { op: test.collect, in: rtmp, with: { into: rtmp } }
  stats: { op: test.collect, in: rtmp.stats, with: { into: rtmp-stats } }
`,
    { log },
  );
  await until('the listener', () => lines.some((line) => line.message.includes('RTMP ingest listening')));
});

afterAll(async () => {
  for (const publisher of running) publisher.child.kill('SIGKILL');
  await engine.drain({ deadlineMs: 5000 });
  collected.delete('rtmp');
  collected.delete('rtmp-stats');
});

describe('ingest.rtmp with ffmpeg publishing', () => {
  it('emits every frame of a publish with codec configuration, keyframes every 30 frames, stats, and a MediaEnd', async () => {
    const from = items().length;
    const publisher = start(key, { seconds: 3 });
    const { code } = await publisher.exited;
    expect(code).toBe(0);
    const end = await until('the MediaEnd', () => endIndex(key, from) >= 0 && endIndex(key, from), 2000);
    const packets = packetsOf(key, from);
    const video = packets.filter((p) => p.track.kind === 'video');
    const audio = packets.filter((p) => p.track.kind === 'audio');
    expect(video).toHaveLength(90);
    expect(new Set(video.map((p) => p.dts)).size).toBe(90);
    const steps = video.slice(1).map((p, i) => p.dts - video[i]!.dts);
    expect(Math.min(...steps)).toBeGreaterThanOrEqual(33);
    expect(Math.max(...steps)).toBeLessThanOrEqual(34);
    expect(video.flatMap((p, i) => (p.keyframe ? [i] : []))).toEqual([0, 30, 60]);
    expect(video[0]!.track).toMatchObject({ codec: 'h264', codecString: expect.stringMatching(/^avc1\.42c0/), width: 320, height: 240, fps: 30, timescale: 1000 });
    expect(audio.length).toBeGreaterThan(120);
    expect(audio[0]!.track).toMatchObject({ codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 44100, channels: 1 });
    expect(packets.every((p) => p.rendition === 'source' && typeof p.arrival === 'number' && !p.discontinuity)).toBe(true);
    expect(end).toBeGreaterThan(items().indexOf(video.at(-1)!));
    const stats = (collected.get('rtmp-stats') ?? []) as { stream: string; fps: number; bitrate: number; keyframe_interval: number }[];
    const mine = stats.filter((s) => s.stream === key);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(mine.some((s) => s.fps >= 25 && s.fps <= 35 && s.bitrate > 10_000 && s.keyframe_interval === 1)).toBe(true);
    // The schema ingest.srt shares.
    expect(Object.keys(mine[0]!).sort()).toEqual(['bitrate', 'dropped', 'fps', 'keyframe_interval', 'publishes', 'stream']);
  });

  it('refuses a wrong key at once, counts it, and never logs the key', async () => {
    const before = dropped('refused');
    const wrong = 'not-the-key-xyz';
    const { code, ms } = await start(wrong, { seconds: 3 }).exited;
    expect(code).not.toBe(0);
    expect(ms).toBeLessThan(2500);
    expect(dropped('refused')).toBe(before + 1);
    const text = JSON.stringify(lines);
    expect(text).toContain('wrong stream key');
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(key);
    expect(packetsOf(wrong)).toHaveLength(0);
  });

  it('drops a connection that sends random bytes, and goes on accepting publishes', async () => {
    const garbage = randomBytes(8192);
    garbage[0] = 0x47;
    const closedIn = await new Promise<number>((resolve, reject) => {
      const started = Date.now();
      const socket = connect(port, '127.0.0.1', () => socket.write(garbage));
      socket.on('error', () => {});
      socket.on('close', () => resolve(Date.now() - started));
      setTimeout(() => reject(new Error('the server kept the connection')), 3000).unref();
    });
    expect(closedIn).toBeLessThan(1000);
    expect(lines.some((line) => line.level === 'warn' && line.message.includes('not an RTMP handshake'))).toBe(true);
    const from = items().length;
    expect((await start(other, { seconds: 1, audio: false }).exited).code).toBe(0);
    await until('the MediaEnd', () => endIndex(other, from) >= 0);
    expect(packetsOf(other, from).length).toBeGreaterThan(25);
  });

  it('ends the stream within a second when the publisher is killed mid-GOP, and a reconnect continues it with a discontinuity', async () => {
    const from = items().length;
    const publisher = start(key, { seconds: 10 });
    // 45 frames in: half way through the second GOP.
    await until('45 video frames', () => packetsOf(key, from).filter((p) => p.track.kind === 'video').length >= 45);
    const killedAt = Date.now();
    publisher.child.kill('SIGKILL');
    await until('the MediaEnd', () => endIndex(key, from) >= 0, 1000);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    const afterEnd = items().length;
    expect((await start(key, { seconds: 1 }).exited).code).toBe(0);
    await until('the second MediaEnd', () => endIndex(key, afterEnd) >= 0);
    const second = packetsOf(key, afterEnd);
    expect(second[0]!.discontinuity).toBe(true);
    expect(second.filter((p) => p.discontinuity)).toHaveLength(1);
    expect(second.find((p) => p.track.kind === 'video')!.keyframe).toBe(true);
  });

  it('ends a publish whose publisher goes silent with its connection open, after `timeout`', async () => {
    const from = items().length;
    const publisher = start(key, { seconds: 10 });
    try {
      await until('the first packets', () => packetsOf(key, from).length > 10);
      // Stopped, not killed: the TCP connection stays open and nothing more comes, as when a network path dies.
      publisher.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      await until('the MediaEnd', () => endIndex(key, from) >= 0, 6000);
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(3500);
      expect(lines.some((line) => line.message.includes('ended (idle: nothing received for'))).toBe(true);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it('lets a reconnect with the same key replace a live publisher that has gone silent, but not one still sending', async () => {
    const from = items().length;
    const publisher = start(other, { seconds: 10 });
    try {
      await until('the first packets', () => packetsOf(other, from).length > 10);
      publisher.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(endIndex(other, from)).toBe(-1);
      const before = dropped('refused');
      const takeover = start(other, { seconds: 1 });
      await until('the old publish ended', () => endIndex(other, from) >= 0, 3000);
      const afterEnd = endIndex(other, from) + 1;
      expect((await takeover.exited).code).toBe(0);
      expect(dropped('refused')).toBe(before);
      await until('the second MediaEnd', () => endIndex(other, afterEnd) >= 0);
      const second = packetsOf(other, afterEnd);
      expect(second[0]!.discontinuity).toBe(true);
      expect(second.filter((p) => p.track.kind === 'video')).toHaveLength(30);
      expect(lines.some((line) => line.message.includes('replaces the one silent for'))).toBe(true);
    } finally {
      publisher.child.kill('SIGKILL');
    }
  });

  it('names the stream of a named key by its name; the key itself never leaves the node', async () => {
    const from = items().length;
    expect((await start(aliceKey, { seconds: 1, audio: false }).exited).code).toBe(0);
    await until('the MediaEnd', () => endIndex('alice', from) >= 0);
    expect(packetsOf('alice', from)).toHaveLength(30);
    expect(items().slice(from).every((item) => item.stream === 'alice')).toBe(true);
    expect(lines.some((line) => line.message.includes('publish of stream alice started'))).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(aliceKey);
    expect(JSON.stringify(collected.get('rtmp-stats') ?? [])).not.toContain(aliceKey);
  });

  it('carries audio-only and video-only publishes', async () => {
    let from = items().length;
    expect((await start(key, { seconds: 1, video: false }).exited).code).toBe(0);
    await until('the MediaEnd', () => endIndex(key, from) >= 0);
    const audioOnly = packetsOf(key, from);
    expect(audioOnly.length).toBeGreaterThan(30);
    expect(audioOnly.every((p) => p.track.kind === 'audio')).toBe(true);
    from = items().length;
    expect((await start(key, { seconds: 1, audio: false }).exited).code).toBe(0);
    await until('the MediaEnd', () => endIndex(key, from) >= 0);
    const videoOnly = packetsOf(key, from);
    expect(videoOnly).toHaveLength(30);
    expect(videoOnly.every((p) => p.track.kind === 'video')).toBe(true);
  });

  it('refuses a second publisher on a live key while the first goes on', async () => {
    const from = items().length;
    const first = start(other, { seconds: 3 });
    await until('the first packets', () => packetsOf(other, from).length > 10);
    const before = dropped('refused');
    const second = await start(other, { seconds: 3 }).exited;
    expect(second.code).not.toBe(0);
    expect(second.ms).toBeLessThan(2500);
    expect(dropped('refused')).toBe(before + 1);
    expect(lines.some((line) => line.message.includes('already live'))).toBe(true);
    expect(endIndex(other, from)).toBe(-1);
    expect((await first.exited).code).toBe(0);
    await until('the MediaEnd', () => endIndex(other, from) >= 0);
    expect(packetsOf(other, from).filter((p) => p.track.kind === 'video')).toHaveLength(90);
  });
});

describe('ingest.rtmp behind a slow sink', () => {
  it('drops whole GOPs, never single frames, and counts them', async () => {
    const slowPort = 19534;
    const slow = startYaml(`
streams: 1
name: slow
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${slowPort}" } }
  media: { op: test.collect, in: rtmp, with: { into: rtmp-slow, delay_ms: 150 }, capacity: 8 }
`);
    try {
      const publisher = publish(`rtmp://127.0.0.1:${slowPort}/live/slow`, { seconds: 3, audio: false });
      expect((await publisher.exited).code).toBe(0);
      await until('the MediaEnd', () => ((collected.get('rtmp-slow') ?? []) as MediaItem[]).some(isMediaEnd), 10_000);
      const video = ((collected.get('rtmp-slow') ?? []) as MediaItem[]).filter((item): item is MediaPacket => !isMediaEnd(item));
      const drops = new Map(slow.nodeStats()).get('rtmp')!.dropped.get('downstream_full') ?? 0;
      expect(drops).toBeGreaterThan(0);
      expect(video.length + drops).toBe(90);
      // After every gap the stream resumes on a keyframe: what was dropped ran up to one.
      for (let i = 1; i < video.length; i++) if (video[i]!.dts - video[i - 1]!.dts > 34) expect(video[i]!.keyframe).toBe(true);
      expect(video[0]!.keyframe).toBe(true);
    } finally {
      await slow.drain({ deadlineMs: 5000 });
      collected.delete('rtmp-slow');
    }
  });
});

describe('ingest.rtmp limits', () => {
  it('warns when any key is accepted, and refuses another application, keys that could become paths, and publishes past max_streams', async () => {
    const limitPort = 19535;
    const limitLines: { level: string; message: string }[] = [];
    const keep = (level: string) => (_fields: object, message: string) => void limitLines.push({ level, message });
    const limited = startYaml(
      `
streams: 1
name: limits
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${limitPort}", max_streams: 1 } }
  keyed: { op: ingest.rtmp, with: { listen: "127.0.0.1:${limitPort + 1}", keys: [good, "bad/key"] } }
  keyed-media: { op: test.collect, in: keyed, with: { into: rtmp-keyed } }
  media: { op: test.collect, in: rtmp, with: { into: rtmp-limits } }
`,
      { log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') } },
    );
    try {
      await until('the listener', () => limitLines.some((line) => line.message.includes('RTMP ingest listening')));
      expect(limitLines.some((line) => line.level === 'warn' && line.message.includes('any stream key is accepted'))).toBe(true);
      await until('the keyed listener', () => limitLines.filter((line) => line.message.includes('RTMP ingest listening')).length === 2);
      expect(limitLines.filter((line) => line.message.includes('`keys` entry 2 is not letters, digits'))).toHaveLength(1);
      expect(JSON.stringify(limitLines)).not.toContain('bad/key');
      const wrongApp = await publish(`rtmp://127.0.0.1:${limitPort}/other/one`, { seconds: 2, video: false }).exited;
      expect(wrongApp.code).not.toBe(0);
      expect(limitLines.some((line) => line.message.includes('unknown application `other`'))).toBe(true);
      const longApp = await publish(`rtmp://127.0.0.1:${limitPort}/${'x'.repeat(300)}/one`, { seconds: 2, video: false }).exited;
      expect(longApp.code).not.toBe(0);
      expect(limitLines.some((line) => line.message.includes(`unknown application \`${'x'.repeat(64)}…\``))).toBe(true);
      expect(JSON.stringify(limitLines)).not.toContain('x'.repeat(65));
      const badKey = await publish(`rtmp://127.0.0.1:${limitPort}/live/bad!key`, { seconds: 2, video: false }).exited;
      expect(badKey.code).not.toBe(0);
      expect(limitLines.some((line) => line.message.includes('a stream key must be letters'))).toBe(true);
      const first = publish(`rtmp://127.0.0.1:${limitPort}/live/one`, { seconds: 3, video: false });
      running.add(first);
      await until('the first packets', () => (collected.get('rtmp-limits') ?? []).length > 5);
      const second = await publish(`rtmp://127.0.0.1:${limitPort}/live/two`, { seconds: 2, video: false }).exited;
      expect(second.code).not.toBe(0);
      expect(second.ms).toBeLessThan(2500);
      expect(limitLines.some((line) => line.message.includes('`max_streams` (1) publishes are live'))).toBe(true);
      expect(new Map(limited.nodeStats()).get('rtmp')!.dropped.get('refused')).toBe(4);
      expect((await first.exited).code).toBe(0);
    } finally {
      await limited.drain({ deadlineMs: 5000 });
      collected.delete('rtmp-limits');
      collected.delete('rtmp-keyed');
    }
  });
});
