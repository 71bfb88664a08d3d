/**
 * The `tls` setting of the server operators, through the real engine and
 * real HTTPS/WSS clients: `http.server` (files relative to the pipeline's
 * folder, a renewal picked up while running), `serve.http` (the origin),
 * `sse.server`, `ws.server`; a missing file fails the node for good with
 * its name and the path, and `streams validate` points at the setting.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { checkPipelineText } from '../../cli/pipeline-file.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import serveHttp from '../../nodes/media/serve-http.ts';
import type { Batch } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';
import { httpsGet, makeCertificate, replaceFile, type TestCertificate } from '../helpers/certificates.ts';
import { init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';
import { checkWith, collector, feed, freePort, recordingLogger, until } from './http-harness.ts';

let dir: string;
let first: TestCertificate;
let second: TestCertificate;
const engines: Engine[] = [];
const stops: (() => void)[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'streams-tls-ops-'));
  first = makeCertificate(dir, 'first');
  second = makeCertificate(dir, 'second');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await Promise.all(engines.splice(0).map((engine) => engine.drain({ deadlineMs: 5_000 })));
});

/** Runs `yaml` as if its file were in `baseDir`. */
function run(yaml: string, baseDir: string, extra: Parameters<typeof checkWith>[1] = []): { engine: Engine; log: ReturnType<typeof recordingLogger> } {
  const { graph, registry } = checkWith(yaml, extra);
  const log = recordingLogger();
  const engine = new Engine(graph, { registry, log, baseDir });
  engine.start();
  engines.push(engine);
  return { engine, log };
}

/** A pipeline folder with `certs/live.pem` and `certs/live.key`, a copy of `first`. */
function pipelineFolder(name: string): { folder: string; cert: string; key: string } {
  const folder = mkdtempSync(join(dir, `${name}-`));
  mkdirSync(join(folder, 'certs'));
  const files = { folder, cert: join(folder, 'certs', 'live.pem'), key: join(folder, 'certs', 'live.key') };
  copyFileSync(first.cert, files.cert);
  copyFileSync(first.key, files.key);
  return files;
}

/** New connections until one shows `fingerprint`; resolves with how long that took, ms. */
async function untilServed(url: string, fingerprint: string, since: number, options: { method?: string; body?: string } = {}): Promise<number> {
  for (;;) {
    const answer = await httpsGet(url, [first.pem, second.pem], options);
    if (answer.fingerprint === fingerprint) return Date.now() - since;
    if (Date.now() - since > 5_000) throw new Error(`still served ${answer.fingerprint}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the tls setting', () => {
  it('makes http.server take webhooks over HTTPS, its files read from the pipeline\'s folder, and a renewal served within a second', async () => {
    const files = pipelineFolder('http');
    const port = await freePort();
    const sink = collector();
    const { log } = run(
      `streams: 1
name: hooks
nodes:
  hooks:
    op: http.server
    with: { listen: "127.0.0.1:${port}", path: /hook, tls: { cert: certs/live.pem, key: certs/live.key } }
  keep: { op: test.collect, in: hooks }
`,
      files.folder,
      [sink.op],
    );
    const url = `https://127.0.0.1:${port}/hook`;
    const answer = await httpsGet(url, first.pem, { method: 'POST', body: '{"n":1}' });
    expect(answer).toMatchObject({ status: 200, fingerprint: first.fingerprint });
    await sink.waitFor(1);
    expect(sink.records).toEqual([{ n: 1 }]);
    expect(log.entries.find((e) => e.message === 'listening for requests')?.fields).toMatchObject({ scheme: 'https' });

    const renewed = Date.now();
    replaceFile(files.key, second.keyPem);
    replaceFile(files.cert, second.pem);
    expect(await untilServed(url, second.fingerprint, renewed, { method: 'POST', body: '{"n":2}' })).toBeLessThan(1_000);
    const reload = log.entries.find((e) => e.message.includes('new TLS certificate'))!;
    expect(reload.message).toBe(`node \`hooks\` (test.yaml:4): new TLS certificate from \`${files.cert}\` serves new connections`);
  });

  it('makes serve.http (the origin) serve playlists over HTTPS, and renewals without a restart', async () => {
    const files = pipelineFolder('origin');
    const port = await freePort();
    const ctx = fakeContext(serveHttp, { listen: `127.0.0.1:${port}`, tls: { cert: files.cert, key: files.key } });
    const input = new Subject<Batch>();
    const running = drive(serveHttp.create(ctx as never), input);
    stops.push(() => running.unsubscribe());
    await until(() => ctx.logs.some((entry) => entry.message === 'serving live streams') || running.error !== undefined, 'the origin listening');
    expect(running.error).toBeUndefined();
    input.next(batchOf([{ ...init('k', 'v', videoInfo), epoch: 'e' }, ...segmentWithParts('k', 'v', 0), ...segmentWithParts('k', 'v', 1)]));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const base = `https://127.0.0.1:${port}`;
    const playlist = await httpsGet(`${base}/live/k/v/index.m3u8`, first.pem);
    expect(playlist).toMatchObject({ status: 200, fingerprint: first.fingerprint });
    expect(playlist.body).toContain('#EXTM3U');

    const renewed = Date.now();
    replaceFile(files.key, second.keyPem);
    replaceFile(files.cert, second.pem);
    expect(await untilServed(`${base}/healthz`, second.fingerprint, renewed)).toBeLessThan(1_000);
  });

  it('makes sse.server stream and ws.server accept WebSocket connections over TLS', async () => {
    const files = pipelineFolder('push');
    const [ssePort, wsPort] = [await freePort(), await freePort()];
    const source = feed();
    run(
      `streams: 1
name: push
nodes:
  src: { op: test.feed }
  events:
    op: sse.server
    in: src
    with: { listen: "127.0.0.1:${ssePort}", path: /events, tls: { cert: certs/live.pem, key: certs/live.key } }
  sockets:
    op: ws.server
    in: src
    with: { listen: "127.0.0.1:${wsPort}", path: /feed, tls: { cert: certs/live.pem, key: certs/live.key } }
`,
      files.folder,
      [source.op],
    );
    const socket = await new Promise<WebSocket>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const attempt = (): void => {
        const client = new WebSocket(`wss://127.0.0.1:${wsPort}/feed`, { ca: first.pem });
        client.once('open', () => resolve(client));
        client.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' && Date.now() < deadline ? setTimeout(attempt, 20) : reject(error)));
      };
      attempt();
    });
    stops.push(() => socket.terminate());
    const received = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    const sse = await new Promise<{ status: number; fingerprint: string; text: Promise<string> }>((resolve, reject) => {
      const sent = request(`https://127.0.0.1:${ssePort}/events`, { ca: first.pem }, (response) => {
        const text = new Promise<string>((done) => response.on('data', (chunk: Buffer) => chunk.toString().includes('data:') && done(chunk.toString())));
        resolve({ status: response.statusCode ?? 0, fingerprint: (response.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256, text });
      });
      sent.on('error', reject);
      sent.end();
      stops.push(() => sent.destroy());
    });
    expect(sse).toMatchObject({ status: 200, fingerprint: first.fingerprint });
    source.push({ n: 7 });
    expect(JSON.parse(await received)).toEqual({ n: 7 });
    expect(await sse.text).toContain('data: {"n":7}');
  });

  it('fails the node for good at start when a file is missing, naming the node and the path', async () => {
    const port = await freePort();
    const missing = join(dir, 'missing.pem');
    const started = Date.now();
    const { engine } = run(
      `streams: 1
name: broken
nodes:
  web:
    op: http.server
    with: { listen: "127.0.0.1:${port}", tls: { cert: ${JSON.stringify(missing)}, key: ${JSON.stringify(first.key)} } }
  keep: { op: test.collect, in: web }
`,
      dir,
      [collector().op],
    );
    await expect(engine.done).rejects.toThrow(`node \`web\` (test.yaml:4): cannot read \`tls.cert\` file \`${missing}\`: ENOENT: no such file or directory, open '${missing}'`);
    expect(Date.now() - started).toBeLessThan(2_000);
    const stats = new Map(engine.nodeStats()).get('web')!;
    expect({ state: stats.state, restarts: stats.restarts }).toEqual({ state: 'failed', restarts: 0 });
    // The run is over: nothing is left to drain.
    engines.splice(engines.indexOf(engine), 1);
  });

  it('is checked before running: a missing file is an error located at the setting, relative to the pipeline file', () => {
    const folder = mkdtempSync(join(dir, 'validate-'));
    const file = join(folder, 'edge.yaml');
    const text = `streams: 1
name: edge
nodes:
  web:
    op: http.server
    with:
      listen: 127.0.0.1:0
      tls:
        cert: certs/nope.pem
        key: certs/nope.key
  out: { op: stdout, in: web }
`;
    writeFileSync(file, text);
    const result = checkPipelineText(file, text, {});
    expect(result.graph).toBeUndefined();
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      `${file}:9:15: error: node \`web\`, setting \`tls.cert\`: input file \`${join(folder, 'certs/nope.pem')}\` does not exist`,
      `${file}:10:14: error: node \`web\`, setting \`tls.key\`: input file \`${join(folder, 'certs/nope.key')}\` does not exist`,
    ]);
  });

  it('refuses a tls setting without its key', () => {
    const yaml = (tls: string): string => `streams: 1\nname: t\nnodes:\n  web: { op: http.server, with: { tls: ${tls} } }\n  keep: { op: test.collect, in: web }\n`;
    expect(() => checkWith(yaml('{ cert: a.pem }'), [collector().op])).toThrow(/test\.yaml:4:\d+: error: missing required setting `tls\.key` for `http\.server`/);
  });
});
