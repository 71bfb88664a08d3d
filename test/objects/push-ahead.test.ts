/**
 * Issue #11 item 5 asks that segments reach the edges "on demand, or pushed
 * ahead of demand". The second holds already: the origin's `objects.put`
 * emits a reference as soon as each object is stored, the references cross
 * as a Kafka topic the edge's `kafka.consume` reads continuously (see
 * host-graph-segments.test.ts for the cut), and the edge's `objects.get`
 * fetches each object when its reference arrives and hands it to
 * `serve.http`. No viewer request is involved, and there is no other path:
 * `serve.http` never reads the store.
 *
 * Here the two halves run in one process with the Kafka hop replaced by a
 * JSON round trip (what `format: json` does): the edge fetches every object
 * before any request, the store is then removed, and the edge still serves
 * every segment, byte for byte. The media test (media-across-hosts) shows the
 * same with real workers, Kafka and versitygw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CmafItem } from '../../media/segment.ts';
import serveHttp from '../../nodes/media/serve-http.ts';
import objectsGet from '../../nodes/objects/get.ts';
import objectsPut from '../../nodes/objects/put.ts';
import type { Batch } from '../../runtime/api.ts';
import { init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';
import { freePort } from '../helpers/net.ts';

let dir: string;
const stops: Array<() => void> = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'push-ahead-'));
});
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The origin's half: the items stored by `objects.put`, and the references it emits, as they cross Kafka (JSON). */
async function origin(store: string, items: CmafItem[]): Promise<unknown[]> {
  const ctx = fakeContext(objectsPut, { store, prefix: 'g/hls' });
  const run = drive(objectsPut.create(ctx), [batchOf(items)]);
  await until('the origin to store the items', () => run.completed);
  expect(ctx.failures).toEqual([]);
  return JSON.parse(JSON.stringify(run.items())) as unknown[];
}

/** The edge's half: references in, `objects.get` into `serve.http`; nothing asks it anything yet. */
async function edge(store: string, port: number) {
  const getCtx = fakeContext(objectsGet, { store, prefix: 'g/hls', retries: 0 });
  const serveCtx = fakeContext(serveHttp, { listen: `127.0.0.1:${port}` });
  const references = new Subject<Batch>();
  const run = drive(serveHttp.create(serveCtx), objectsGet.create(getCtx)(references));
  stops.push(() => run.unsubscribe());
  await until('the edge to listen', () => serveCtx.logs.some((log) => log.message === 'serving live streams'));
  return { getCtx, references, base: `http://127.0.0.1:${port}/live` };
}

describe('segments reach the edge ahead of demand', () => {
  it('fetches every object as its reference arrives, so the edge serves the stream with the store gone', async () => {
    const store = join(dir, 'store');
    const items: CmafItem[] = [init('cam', 'v', videoInfo), ...[0, 1, 2].flatMap((msn) => segmentWithParts('cam', 'v', msn, { parts: 2 }))];
    const stored = items.reduce((sum, item) => sum + ('data' in item ? item.data.length : 0), 0);
    const { getCtx, references, base } = await edge(store, await freePort());
    references.next(batchOf(await origin(store, items)));
    // No request has been made: the edge fetches because references arrived.
    await until('the edge to fetch every object', () => getCtx.bytes === stored);
    rmSync(store, { recursive: true, force: true });

    const playlist = await (await fetch(`${base}/cam/v/index.m3u8`)).text();
    const segments = playlist.split('\n').filter((line) => /^[^#].*\.m4s$/.test(line));
    expect(segments).toHaveLength(3);
    const bodies = await Promise.all(segments.map(async (segment) => {
      const response = await fetch(`${base}/cam/v/${segment}`);
      expect(response.status).toBe(200);
      return Buffer.from(await response.arrayBuffer());
    }));
    const segmentBytes = items.filter((item) => item.type === 'segment').map((item) => Buffer.from(item.data));
    expect(bodies).toEqual(segmentBytes);
    expect(getCtx.failures).toEqual([]);
  });

  it('has no pull on demand: a reference that arrives once its object is gone is a dead letter, not a later fetch', async () => {
    const store = join(dir, 'store');
    const { getCtx, references, base } = await edge(store, await freePort());
    const wire = await origin(store, [init('cam', 'v', videoInfo), ...segmentWithParts('cam', 'v', 0, { parts: 1 })]);
    rmSync(store, { recursive: true, force: true });
    references.next(batchOf(wire));
    await until('the references to fail', () => getCtx.failures.length === 3);
    expect(getCtx.failures.map((f) => f.reason)).toEqual(wire.map((reference) => `folder ${join(store, 'g', 'hls')}: no object \`${(reference as { key: string }).key}\``));
    expect((await fetch(`${base}/cam/v/index.m3u8`)).status).toBe(404);
  });
});
