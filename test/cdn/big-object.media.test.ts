/**
 * A 5 GiB object through the edge (`streams run`, its own process): the
 * origin makes the bytes as it sends them (nothing on disk), the object is
 * larger than `max_object` so the edge streams it through without keeping
 * it, the client receives every byte in order (CRC-32 and length equal on
 * both sides), and the edge's resident memory grows by a small fraction of
 * the object. Runs under vitest.media.config.ts: it moves 10 GiB over
 * loopback, 40 s at load 13 on 2 cores, 97 s at load 27; the limit is
 * 4 minutes so a loaded machine does not fail it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.ts';
import { startOrigin, stopAll, type TestOrigin } from './edge-harness.ts';

const cli = join(import.meta.dirname, '..', '..', 'bin', 'streams.ts');
const chunkBytes = 1024 * 1024;
const objectBytes = 5 * 1024 * 1024 * 1024;
const chunks = objectBytes / chunkBytes;
/** Bytes every chunk starts from; each chunk carries its index in its first 8 bytes, so a lost, repeated or reordered chunk changes the CRC. */
const pattern = randomBytes(chunkBytes);

/** What the origin sent for one request. */
interface Sent {
  bytes: number;
  crc: number;
}

let dir: string;
let origin: TestOrigin;
let edge: ChildProcess | undefined;
let edgeStderr = '';
let edgeBase: string;
const sent: Sent[] = [];

/** Answers `/big.bin` with 5 GiB made on the fly, honouring backpressure; CRC of what it wrote. */
function serveBig(response: import('node:http').ServerResponse): void {
  const record: Sent = { bytes: 0, crc: 0 };
  sent.push(record);
  response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': objectBytes, 'Cache-Control': 'max-age=3600' });
  let index = 0;
  function writeMore(): void {
    while (index < chunks) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      pattern.copy(chunk);
      chunk.writeBigUInt64BE(BigInt(index), 0);
      index++;
      record.crc = crc32(chunk, record.crc);
      record.bytes += chunk.length;
      if (!response.write(chunk)) {
        response.once('drain', writeMore);
        return;
      }
    }
    response.end();
  }
  response.on('close', () => response.off('drain', writeMore));
  writeMore();
}

/** The edge process's resident memory (KiB), and its peak so far. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

function getResponse(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => httpGet(url, resolve).on('error', reject));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edge-big-'));
  origin = await startOrigin((request, response) => {
    if (request.url === '/big.bin') serveBig(response);
    else response.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'max-age=60' }).end('small\n');
  });
  const port = await freePort();
  edgeBase = `http://127.0.0.1:${port}`;
  await writeFile(
    join(dir, 'edge.yaml'),
    `streams: 1\nname: big-edge\nnodes:\n  edge:\n    op: cache\n    with: { listen: "127.0.0.1:${port}", origin: "${origin.url}", size: 256MiB, max_object: 64MiB }\n`,
  );
  edge = spawn(process.execPath, [cli, 'run', join(dir, 'edge.yaml'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  edge.stderr!.on('data', (chunk: Buffer) => (edgeStderr = (edgeStderr + chunk.toString()).slice(-4000)));
  // Node compiling the engine takes seconds on a loaded machine: ask every 100 ms, for a minute at most.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (edge.exitCode !== null) throw new Error(`the edge exited ${edge.exitCode}: ${edgeStderr}`);
    const answer = await fetch(`${edgeBase}/healthz`).then((response) => response.text().then(() => response.ok), () => false);
    if (answer) break;
    if (Date.now() > deadline) throw new Error(`the edge did not answer /healthz within 60 s: ${edgeStderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  if (edge && edge.exitCode === null) {
    const exited = new Promise((resolve) => edge!.once('exit', resolve));
    edge.kill('SIGTERM');
    await exited;
  }
  await stopAll();
  await rm(dir, { recursive: true, force: true });
});

describe('cache: a 5 GiB object', () => {
  it('streams it through byte for byte in bounded memory, without keeping it', async () => {
    // Warm the edge's request path so the baseline includes what any request allocates.
    for (let i = 0; i < 3; i++) expect((await fetch(`${edgeBase}/small.txt`)).status).toBe(200);
    const pid = edge!.pid!;
    const before = await memory(pid);

    // Peak RSS sampled in each half of the transfer: memory that followed the object would keep climbing.
    const peakByHalf = [before.rss, before.rss];
    let received = 0;
    const sampler = setInterval(() => {
      const half = received < objectBytes / 2 ? 0 : 1;
      void memory(pid).then((now) => (peakByHalf[half] = Math.max(peakByHalf[half], now.rss)), () => undefined);
    }, 100);
    const started = performance.now();
    const response = await getResponse(`${edgeBase}/big.bin`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(objectBytes));
    let crc = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      received += chunk.length;
      crc = crc32(chunk, crc);
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const after = await memory(pid);
    const peakRss = Math.max(...peakByHalf, after.rss);

    expect(origin.count('/big.bin')).toBe(1);
    expect(sent[0].bytes).toBe(objectBytes);
    expect(received).toBe(objectBytes);
    expect(crc).toBe(sent[0].crc);

    const growthMiB = (peakRss - before.rss) / 1024;
    const hwmGrowthMiB = (Math.max(after.peak, peakRss) - before.rss) / 1024;
    process.stdout.write(
      `5 GiB through the edge in ${seconds.toFixed(1)} s (${(objectBytes / 2 ** 20 / seconds).toFixed(0)} MiB/s); edge RSS ${(before.rss / 1024).toFixed(0)} MiB before, peak ${(peakRss / 1024).toFixed(0)} MiB sampled (+${growthMiB.toFixed(0)} MiB; first half +${((peakByHalf[0] - before.rss) / 1024).toFixed(0)}, second half +${((peakByHalf[1] - before.rss) / 1024).toFixed(0)}), high-water +${hwmGrowthMiB.toFixed(0)} MiB; load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}\n`,
    );
    // Far less than the object (5120 MiB): the body holds at most 1 MiB ahead of the client; the rest of the growth
    // is garbage (64 KiB buffers at over 100 MiB/s) that V8 collects when external memory passes its limit.
    expect(hwmGrowthMiB).toBeLessThan(256);

    // Not kept: the next request goes to the origin again (read no further than the headers).
    const again = await getResponse(`${edgeBase}/big.bin`);
    expect(again.statusCode).toBe(200);
    again.destroy();
    expect(origin.count('/big.bin')).toBe(2);
  }, 240_000);
});
