/**
 * Media segments across hosts, as a CDN carries them: two `streams worker`
 * processes (hosts `origin` and `edge`, Redis control plane) run one
 * deployed graph. ffmpeg publishes 4 s of 320x240 over RTMP to the origin,
 * whose packager's segments go to versitygw (`objects.put`) with references
 * on a Kafka topic; the edge reads them (`objects.get`) into its own
 * `serve.http`, and ffprobe reads the whole stream from the edge.
 *
 * A second test sends media packets through Kafka twice: an ingest on
 * `origin`, `encode` on `gpu`, the packager and origin on `edge`. A third
 * gives the segments a retention (`transports.objects.retain`) and watches
 * the bucket empty once the stream has ended.
 *
 * It needs Kafka, Redis and versitygw: it starts them through the services
 * script (`test/services/start.sh kafka redis versitygw`), which leaves
 * running services alone, so it runs in the media config.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffprobe } from '../../native/ffmpeg/probe.ts';
import { openAdmin } from '../../native/kafka/client.ts';
import { createBucket, openObjectStore, removeBucket, type S3Settings } from '../../native/s3/client.ts';
import { fetchUntil, publish } from '../media/live-cli.ts';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'bin/streams.ts');
const ports = { rtmp: 7712, origin: 7710, edge: 7711 };
const name = `objhosts-${randomBytes(3).toString('hex')}`;
const mediaName = `objmedia-${randomBytes(3).toString('hex')}`;
const retainedName = `objretain-${randomBytes(3).toString('hex')}`;
const bucket = `objects-hosts-${randomBytes(4).toString('hex')}`;
const topics = [`streams.${name}.hls.out.cdn.in`, `streams.${mediaName}.rtmp.out.ladder.in`, `streams.${mediaName}.ladder.out.hls.in`, `streams.${retainedName}.hls.out.cdn.in`];

let env: Record<string, string> = {};
let s3: S3Settings;
let dir: string;
let redis: Redis;
const workers: Array<{ child: ChildProcess; log: () => string }> = [];

/** Starts the services this test needs (a no-op for those already up) and reads their settings. */
function services(): Record<string, string> {
  const started = spawnSync('bash', [join(root, 'test/services/start.sh'), 'kafka', 'redis', 'versitygw'], { encoding: 'utf8', timeout: 300_000 });
  if (started.status !== 0) throw new Error(`test/services/start.sh failed: ${started.stderr.slice(-800)}`);
  const found: Record<string, string> = {};
  for (const match of started.stdout.matchAll(/^export (STREAMS_[A-Z0-9_]+)=(.*)$/gm)) found[match[1]] = match[2];
  return found;
}

function startWorker(host: string, pipeline = name): void {
  const child = spawn(process.execPath, [bin, 'worker', '--host', host, '--control', env.STREAMS_REDIS_URL, '--name', pipeline], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  workers.push({ child, log: () => log });
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  return { code, out };
}

/** Waits until `count` workers of `pipeline` have reported their hosts, so the deploy plans with them all. */
async function reported(pipeline: string, count: number): Promise<void> {
  for (let i = 0; (await redis.hkeys(`streams:deploy:${pipeline}:capabilities`)).length < count; i++) {
    if (i > 150) throw new Error(`workers did not report:\n${workers.map((w) => w.log()).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Stops the workers started so far (SIGINT: they drain), SIGKILL after 10 s. */
async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map(({ child }) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  })));
}

beforeAll(async () => {
  env = services();
  s3 = { endpoint: env.STREAMS_S3_URL, accessKey: env.STREAMS_S3_ACCESS_KEY, secretKey: env.STREAMS_S3_SECRET_KEY, region: env.STREAMS_S3_REGION };
  await createBucket(s3, bucket);
  redis = new Redis(env.STREAMS_REDIS_URL);
  dir = mkdtempSync(join(tmpdir(), 'objects-hosts-'));
});

afterAll(async () => {
  for (const { child } of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pipeline of [name, mediaName, retainedName]) {
    const keys = await redis.keys(`streams:deploy:${pipeline}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
  const admin = openAdmin(env.STREAMS_KAFKA_BROKERS.split(','));
  await admin.deleteTopics(topics).catch(() => undefined);
  await admin.close();
  await removeBucket(s3, bucket);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The pipeline of the origin/edge tests: RTMP ingest and packager on
 * `origin`, `serve.http` on `edge`, segments through the bucket; `local`
 * also serves on the origin, `objects` adds to `transports.objects`.
 */
function originEdgePipeline(pipeline: string, { local, objects = '' }: { local: boolean; objects?: string }): string {
  return `streams: 1
name: ${pipeline}
hosts:
  origin: { role: origin, offers: [listen], url: "http://127.0.0.1:${ports.origin}" }
  edge: { role: edge, offers: [listen], url: "http://127.0.0.1:${ports.edge}" }
transports:
  kafka: { brokers: "${env.STREAMS_KAFKA_BROKERS}" }
  objects: { url: "s3://${bucket}/live"${objects} }
nodes:
  rtmp: { op: ingest.rtmp, place: { host: origin }, with: { listen: "127.0.0.1:${ports.rtmp}", keys: [{ name: cam, key: k7712 }] } }
  hls: { op: segment.hls, in: rtmp, place: { host: origin }, with: { segment: 1s, part: 250ms, window: 20, reconnect: 0s } }
${local ? `  local: { op: serve.http, in: hls, place: { host: origin }, with: { listen: "127.0.0.1:${ports.origin}" } }\n` : ''}  cdn: { op: serve.http, in: hls, place: { host: edge }, with: { listen: "127.0.0.1:${ports.edge}" } }
`;
}

describe('media between hosts', () => {
  it('serves on the edge host the stream packaged on the origin host, every frame, through versitygw', async () => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, originEdgePipeline(name, { local: true }));
    startWorker('origin');
    startWorker('edge');
    await reported(name, 2);
    const deployed = await run(['deploy', file, '--control', env.STREAMS_REDIS_URL, '--timeout', '30s']);
    expect(deployed.out).toMatch(/^origin: applied version 1 in \d+ ms \(5 nodes\)$/m);
    expect(deployed.out).toMatch(/^edge: applied version 1 in \d+ ms \(3 nodes\)$/m);
    expect(deployed.code).toBe(0);

    const seconds = 4;
    const publisher = publish(`rtmp://127.0.0.1:${ports.rtmp}/live/k7712`, { seconds, size: '320x240', rate: 25 });
    const edge = `http://127.0.0.1:${ports.edge}/live/cam/`;
    const origin = `http://127.0.0.1:${ports.origin}/live/cam/`;
    const master = await fetchUntil(`${edge}master.m3u8`, (body) => body.includes('source/index.m3u8'), 30_000);
    const firstMs = Date.now() - publisher.startedAt;
    expect(master).toMatch(/RESOLUTION=320x240/);
    // Live on the edge: a part listed there while the publisher still runs.
    const live = await fetchUntil(`${edge}source/index.m3u8`, (body) => body.includes('#EXT-X-PART:'), 30_000);
    expect(live).toContain('#EXT-X-PART-INF:PART-TARGET=0.25');
    expect((await publisher.exited).code).toBe(0);
    const ended = await fetchUntil(`${edge}source/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 30_000);
    const originPlaylist = await fetchUntil(`${origin}source/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 30_000);
    // The same window, segment for segment, with the same bytes.
    const segmentsOf = (playlist: string) => playlist.split('\n').filter((line) => /^[0-9a-z]+-\d+\.m4s$/.test(line));
    expect(segmentsOf(ended)).toEqual(segmentsOf(originPlaylist));
    expect(segmentsOf(ended).length).toBeGreaterThanOrEqual(seconds - 1);
    for (const segment of segmentsOf(ended)) {
      const [a, b] = await Promise.all([fetch(`${edge}source/${segment}`), fetch(`${origin}source/${segment}`)]);
      expect(Buffer.from(await a.arrayBuffer()).equals(Buffer.from(await b.arrayBuffer()))).toBe(true);
    }
    // ffprobe reads the edge's stream: every published frame, once.
    const probe = await ffprobe(`${edge}source/index.m3u8`, { packets: true, select: 'v:0' });
    const frames = (probe.packets ?? []).length;
    expect(frames).toBe(seconds * 25);
    // The bytes went through the bucket, under the plan's prefix.
    const stored = openObjectStore(`s3://${bucket}/live/${name}/hls`, { s3 });
    const keys = (await stored.list('cam/')).map((o) => o.key);
    stored.close();
    expect(keys.some((k) => /^cam\/source\/init-[0-9a-z]+-[0-9a-f]{12}\.mp4$/.test(k))).toBe(true);
    expect(keys.filter((k) => /^cam\/source\/[0-9a-z]+-\d+\.m4s$/.test(k)).length).toBe(segmentsOf(ended).length);
    console.log(`publish to the edge's first master playlist: ${firstMs} ms; ${frames} frames from the edge; ${keys.length} objects in the bucket`);
    for (const { log } of workers) expect(log()).not.toContain(env.STREAMS_S3_SECRET_KEY);
    await stopWorkers();
  });

  it('encodes on a gpu host the packets of an ingest on another host, and packages them on a third: media packets through Kafka', async () => {
    const file = join(dir, `${mediaName}.yaml`);
    writeFileSync(file, `streams: 1
name: ${mediaName}
hosts:
  origin: { role: origin, offers: [listen] }
  gpu: { role: gpu, offers: [ffmpeg] }
  edge: { role: edge, offers: [listen] }
transports:
  kafka: { brokers: "${env.STREAMS_KAFKA_BROKERS}" }
nodes:
  rtmp: { op: ingest.rtmp, place: { host: origin }, with: { listen: "127.0.0.1:${ports.rtmp}", keys: [{ name: cam, key: k7712 }] } }
  ladder: { op: encode, in: rtmp, place: { host: gpu }, with: { ladder: [{ name: low, height: 240, bitrate: 300k }], hw: none, preset: ultrafast, segment: 1s } }
  hls: { op: segment.hls, in: ladder, place: { host: edge }, with: { segment: 1s, window: 20, reconnect: 0s } }
  cdn: { op: serve.http, in: hls, place: { host: edge }, with: { listen: "127.0.0.1:${ports.edge}" } }
`);
    for (const host of ['origin', 'gpu', 'edge']) startWorker(host, mediaName);
    await reported(mediaName, 3);
    const deployed = await run(['deploy', file, '--control', env.STREAMS_REDIS_URL, '--timeout', '30s']);
    expect(deployed.out).toMatch(/^origin: applied version 1 in \d+ ms \(3 nodes\)$/m);
    expect(deployed.out).toMatch(/^gpu: applied version 1 in \d+ ms \(5 nodes\)$/m);
    expect(deployed.out).toMatch(/^edge: applied version 1 in \d+ ms \(4 nodes\)$/m);
    expect(deployed.code).toBe(0);
    const seconds = 4;
    const publisher = publish(`rtmp://127.0.0.1:${ports.rtmp}/live/k7712`, { seconds, size: '320x240', rate: 25 });
    const edge = `http://127.0.0.1:${ports.edge}/live/cam/`;
    const master = await fetchUntil(`${edge}master.m3u8`, (body) => body.includes('low/index.m3u8'), 30_000);
    const firstMs = Date.now() - publisher.startedAt;
    expect(master).toMatch(/RESOLUTION=320x240/);
    expect((await publisher.exited).code).toBe(0);
    await fetchUntil(`${edge}low/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 30_000);
    const probe = await ffprobe(`${edge}low/index.m3u8`, { packets: true, select: 'v:0' });
    const frames = (probe.packets ?? []).length;
    console.log(`media packets across two Kafka hops (ingest -> encode -> packager): publish to the edge's first master playlist ${firstMs} ms, ${frames} encoded frames read from the edge`);
    expect(frames).toBe(seconds * 25);
    await stopWorkers();
  });

  it('empties the bucket of a stream\'s segments the retention after the stream ended; the edge, which fetched them ahead of demand, still serves every frame', async () => {
    const retain = 8;
    const file = join(dir, `${retainedName}.yaml`);
    writeFileSync(file, originEdgePipeline(retainedName, { local: false, objects: `, retain: ${retain}s` }));
    startWorker('origin', retainedName);
    startWorker('edge', retainedName);
    await reported(retainedName, 2);
    const deployed = await run(['deploy', file, '--control', env.STREAMS_REDIS_URL, '--timeout', '30s']);
    expect(deployed.code).toBe(0);
    const stored = openObjectStore(`s3://${bucket}/live/${retainedName}/hls`, { s3 });
    try {
      const seconds = 4;
      const publisher = publish(`rtmp://127.0.0.1:${ports.rtmp}/live/k7712`, { seconds, size: '320x240', rate: 25 });
      const edge = `http://127.0.0.1:${ports.edge}/live/cam/`;
      await fetchUntil(`${edge}master.m3u8`, (body) => body.includes('source/index.m3u8'), 30_000);
      // The segments do go through the bucket while the stream is live.
      let live = 0;
      for (let i = 0; i < 100 && live === 0; i++) {
        live = (await stored.list()).length;
        if (live === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(live).toBeGreaterThan(0);
      expect((await publisher.exited).code).toBe(0);
      const endedAt = Date.now();
      // Playlists only: no segment is asked of the edge until the bucket is empty.
      const ended = await fetchUntil(`${edge}source/index.m3u8`, (body) => body.includes('#EXT-X-ENDLIST'), 30_000);
      // The origin's sweep empties the prefix: the retention (plus the 10 s a track's newest init outlives its last
      // write), a sweep interval and LastModified's second after the last write.
      let left = await stored.list();
      while (left.length > 0) {
        if (Date.now() - endedAt > (retain + 30) * 1000) throw new Error(`${left.length} objects still in the bucket ${retain + 30} s after the stream ended: ${left.slice(0, 3).map((o) => o.key).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
        left = await stored.list();
      }
      const emptyMs = Date.now() - endedAt;
      // Every frame is still served from the edge with the bucket empty: the references came over Kafka as the origin
      // stored the segments, and the edge fetched each at once, ahead of any viewer (no pull on demand, and nothing
      // taken by the retention before the edge had it).
      expect(ended.split('\n').filter((line) => /^[0-9a-z]+-\d+\.m4s$/.test(line)).length).toBeGreaterThanOrEqual(seconds - 1);
      const probe = await ffprobe(`${edge}source/index.m3u8`, { packets: true, select: 'v:0' });
      expect((probe.packets ?? []).length).toBe(seconds * 25);
      console.log(`retain ${retain}s: the bucket held ${live} objects while live, and was empty ${emptyMs} ms after the publisher ended (load ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
      for (const { log } of workers) expect(log()).not.toMatch(/not all deleted/);
    } finally {
      stored.close();
      await stopWorkers();
    }
  });
});
