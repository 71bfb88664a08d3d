/**
 * The `cache` operator in a pipeline: its settings checked with located
 * errors, and a running graph where a pipeline's own records purge the
 * edge (the stream drives the cache) and the access log flows downstream.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { defineOperator, z, type Batch } from '../../runtime/api.ts';
import { Observable } from 'rxjs';
import { checkYaml, startYaml, take } from '../helpers/pipeline.ts';
import { get, startOrigin, stopAll, until } from './edge-harness.ts';
import { freePort } from '../helpers/net.ts';

afterEach(stopAll);

/** A source that emits one purge record when the test says so. */
let firePurge: ((record: object) => void) | undefined;
const purgeSource = defineOperator({
  name: 'test.purges',
  summary: 'Test source: purge records on demand.',
  doc: 'Emits the records the test hands it.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'Purge records.' } },
  settings: z.object({}),
  create(ctx) {
    return () =>
      new Observable<Batch>((subscriber) => {
        firePurge = (record) => subscriber.next({ items: [record], ack: ctx.newAck() });
        const stop = (): void => subscriber.complete();
        ctx.signal.addEventListener('abort', stop, { once: true });
        return () => ctx.signal.removeEventListener('abort', stop);
      });
  },
});

describe('cache in a pipeline', () => {
  it('checks its settings with located errors', () => {
    const pipeline = (settings: string) => `streams: 1\nname: e\nnodes:\n  edge:\n    op: cache\n    with: ${settings}\n`;
    expect(() => checkYaml(pipeline('{ origin: "http://127.0.0.1:8080", size: 2GiB, ttl: [{ match: "*.m3u8", ttl: 1s }, { match: "video/*", ttl: 1d }] }'))).not.toThrow();
    expect(() => checkYaml(pipeline('{ origin: "ftp://x" }'))).toThrow(/test\.yaml:6:\d+: .*must be an http:\/\/ or https:\/\/ URL/);
    expect(() => checkYaml(pipeline('{ origin: "http://o", size: 2 gigs }'))).toThrow(/test\.yaml:6:\d+: .*is not a size/);
    expect(() => checkYaml(pipeline('{ origin: "http://o", ttl: [{ match: "*.ts", ttl: 5 }] }'))).toThrow(/test\.yaml:6:\d+/);
  });

  it('is purged by records of the pipeline and sends its access log downstream', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('doc');
    });
    const port = await freePort();
    const engine = startYaml(
      `streams: 1\nname: e\nnodes:\n  cms:\n    op: test.purges\n  edge:\n    op: cache\n    in: { purge: cms }\n    with: { listen: "127.0.0.1:${port}", origin: "${origin.url}" }\n  sink:\n    op: test.collect\n    in: edge.log\n    with: { into: cdn-log }\n`,
      { extra: [purgeSource] },
    );
    try {
      const base = `http://127.0.0.1:${port}`;
      await until(() => firePurge !== undefined);
      let up = false;
      while (!up) up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      await get(`${base}/doc`);
      expect((await get(`${base}/doc`)).headers.get('x-cache')).toBe('HIT');
      firePurge!({ url: '/doc' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await get(`${base}/doc`)).headers.get('x-cache')).toBe('MISS');
      await engine.drain({ deadlineMs: 5000 });
      const records = take('cdn-log') as { cache: string; path: string }[];
      expect(records.filter((r) => r.path === '/doc').map((r) => r.cache)).toEqual(['MISS', 'HIT', 'MISS']);
    } finally {
      await engine.drain({ deadlineMs: 2000 });
    }
  });
});
