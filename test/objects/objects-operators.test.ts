/**
 * `objects.put` then `objects.get` through a folder store: the items come
 * back as they went in, references are small JSON records, and what cannot
 * be stored or fetched goes to the dead-letter port with a clear reason.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CmafItem } from '../../media/segment.ts';
import { openObjectStore } from '../../native/s3/client.ts';
import { ObjectStoreError } from '../../native/s3/object-store.ts';
import objectsGet from '../../nodes/objects/get.ts';
import objectsPut from '../../nodes/objects/put.ts';
import { audioInfo, end, init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'objects-ops-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function settled(run: { completed: boolean; error: unknown }): Promise<void> {
  for (let i = 0; i < 200 && !run.completed && run.error === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(run.error).toBeUndefined();
  expect(run.completed).toBe(true);
}

const stream: CmafItem[] = [
  init('cam/1', '720p', videoInfo),
  init('cam/1', 'audio', audioInfo),
  ...segmentWithParts('cam/1', '720p', 0, { parts: 2 }),
  ...segmentWithParts('cam/1', 'audio', 0, { parts: 2 }),
  end('cam/1', 'audio'),
  end('cam/1'),
];

async function put(items: CmafItem[], settings: Record<string, unknown> = {}) {
  const ctx = fakeContext(objectsPut, { store: join(dir, 'store'), prefix: 'g/hls', ...settings });
  const run = drive(objectsPut.create(ctx), [batchOf(items.slice(0, 3)), batchOf(items.slice(3))]);
  await settled(run);
  return { ctx, references: run.items() as Record<string, unknown>[] };
}

describe('objects.put and objects.get', () => {
  it('store every item under keys after the origin\'s URLs and bring the same items back', async () => {
    const { ctx, references } = await put(stream);
    expect(ctx.failures).toEqual([]);
    expect(references.map((r) => [r.type, r.key])).toEqual([
      ['init', expect.stringMatching(/^cam%2F1\/720p\/init-e-[0-9a-f]{12}\.mp4$/)],
      ['init', expect.stringMatching(/^cam%2F1\/audio\/init-e-[0-9a-f]{12}\.mp4$/)],
      ['part', 'cam%2F1/720p/e-0.0.m4s'],
      ['part', 'cam%2F1/720p/e-0.1.m4s'],
      ['segment', 'cam%2F1/720p/e-0.m4s'],
      ['part', 'cam%2F1/audio/e-0.0.m4s'],
      ['part', 'cam%2F1/audio/e-0.1.m4s'],
      ['segment', 'cam%2F1/audio/e-0.m4s'],
      ['end', ''],
      ['end', ''],
    ]);
    expect(references[4]).toMatchObject({ stream: 'cam/1', track: '720p', rendition: '720p', msn: 0, size: 200, content_type: 'video/iso.segment', discontinuity: false });
    expect(references[0]).toMatchObject({ content_type: 'video/mp4', info: { codecString: 'avc1.64001f', config: Buffer.from([1, 0x64, 0, 0x1f]).toString('base64') } });
    expect(ctx.bytes).toBe(stream.reduce((sum, item) => sum + ('data' in item ? item.data.length : 0), 0));
    // References cross hosts as JSON: a round trip through text changes nothing.
    const wire = JSON.parse(JSON.stringify(references)) as unknown[];
    const getCtx = fakeContext(objectsGet, { store: join(dir, 'store'), prefix: 'g/hls' });
    const run = drive(objectsGet.create(getCtx), [batchOf(wire.slice(0, 5)), batchOf(wire.slice(5))]);
    await settled(run);
    expect(getCtx.failures).toEqual([]);
    expect(run.items()).toEqual(stream.map((item) => (item.type === 'end' && item.track === undefined ? { type: 'end', stream: item.stream } : item)));
  });

  it('stores objects with the cache headers and content types given', async () => {
    await put(stream.slice(0, 3), { cache_control: 'public, max-age=60' });
    const keys = readdirSync(join(dir, 'store', 'g', 'hls', 'cam%2F1', '720p')).sort();
    expect(keys).toEqual([expect.stringMatching(/^e-0\.0\.m4s$/), expect.stringMatching(/^init-e-/)]);
  });

  it('names a track\'s objects by content when its init was not seen (a writer restarted mid-track)', async () => {
    const { references } = await put(segmentWithParts('s', 'v', 7, { parts: 1 }));
    expect(references.map((r) => r.key)).toEqual([expect.stringMatching(/^s\/v\/7-[0-9a-f]{12}\.0\.m4s$/), expect.stringMatching(/^s\/v\/7-[0-9a-f]{12}\.m4s$/)]);
  });

  it('sends an item whose key cannot be a key to the dead-letter port and goes on', async () => {
    const { ctx, references } = await put([init('..', 'v', videoInfo), init('ok', 'v', videoInfo)]);
    expect(references.map((r) => r.stream)).toEqual(['ok']);
    expect(ctx.failures).toHaveLength(1);
    expect(ctx.failures[0].reason).toMatch(/^folder .*: key `\.\.\/v\/init-e-[0-9a-f]+\.mp4` has a `\.\.` part$/);
    expect(ctx.failures[0].item).toMatchObject({ type: 'init', stream: '..', key: '' });
  });

  it('sends a reference whose object is missing to the dead-letter port, naming the store and the key', async () => {
    const { references } = await put(stream.slice(0, 3));
    rmSync(join(dir, 'store', 'g', 'hls', 'cam%2F1', '720p', 'e-0.0.m4s'));
    const ctx = fakeContext(objectsGet, { store: join(dir, 'store'), prefix: 'g/hls', retries: 1, retry_delay: '1ms' });
    const run = drive(objectsGet.create(ctx), [batchOf(references)]);
    await settled(run);
    expect((run.items() as CmafItem[]).map((i) => i.type)).toEqual(['init', 'init']);
    expect(ctx.failures.map((f) => f.reason)).toEqual([`folder ${join(dir, 'store', 'g', 'hls')}: no object \`cam%2F1/720p/e-0.0.m4s\``]);
  });

  it('refuses an object whose size is not its reference\'s', async () => {
    const { references } = await put(stream.slice(2, 3));
    const ctx = fakeContext(objectsGet, { store: join(dir, 'store'), prefix: 'g/hls', retries: 0 });
    const run = drive(objectsGet.create(ctx), [batchOf([{ ...references[0], size: 5 }])]);
    await settled(run);
    expect(run.items()).toEqual([]);
    expect(ctx.failures[0].reason).toMatch(/: object `cam%2F1\/720p\/0-[0-9a-f]{12}\.0\.m4s` has 100 bytes, its reference says 5 \(rewritten since\?\)$/);
  });

  it('sends records that are not references to the dead-letter port, saying which field is wrong', async () => {
    const ctx = fakeContext(objectsGet, { store: join(dir, 'store') });
    const run = drive(objectsGet.create(ctx), [batchOf([{ type: 'segment', stream: 's', track: 't', rendition: 't', key: 'k', size: 1, etag: '', content_type: '' }, { hello: 1 }, 'text'])]);
    await settled(run);
    expect(run.items()).toEqual([]);
    expect(ctx.failures.map((f) => f.reason)).toEqual([
      expect.stringMatching(/^not an object reference at `msn`: /),
      expect.stringMatching(/^not an object reference at `type`: /),
      expect.stringMatching(/^not an object reference: /),
    ]);
  });

  it('refuses settings that cannot name a store, when the pipeline is checked', () => {
    expect(objectsPut.settings.safeParse({ store: 's3://Bad_Bucket/x' }).success).toBe(false);
    expect(objectsGet.settings.safeParse({ store: 'objects', prefix: '../up' }).success).toBe(false);
    expect(objectsPut.settings.safeParse({ store: 's3://media/live', endpoint: 'ftp://x' }).success).toBe(false);
  });

  it('fails the node, not each item, when the S3 store has no credentials', async () => {
    const names = ['STREAMS_S3_ACCESS_KEY', 'STREAMS_S3_SECRET_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
    const saved = names.map((n) => [n, process.env[n]] as const);
    for (const n of names) delete process.env[n];
    try {
      const ctx = fakeContext(objectsPut, { store: 's3://media/live', endpoint: 'http://127.0.0.1:7749' });
      const run = drive(objectsPut.create(ctx), [batchOf([init('cam', 'v', videoInfo)])]);
      for (let i = 0; i < 100 && run.error === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(run.error).toBeInstanceOf(ObjectStoreError);
      expect((run.error as ObjectStoreError).cure).toBe('settings');
      expect((run.error as Error).message).toMatch(/^s3:\/\/media\/live at http:\/\/127\.0\.0\.1:7749: no credentials/);
      expect(ctx.failures).toEqual([]);
    } finally {
      for (const [n, value] of saved) if (value !== undefined) process.env[n] = value;
    }
  });

  it('needs S3 credentials, and says where to put them', () => {
    const error = (() => {
      try {
        openObjectStore('s3://media/live', { s3: { endpoint: 'http://127.0.0.1:7749' } });
      } catch (e) {
        return e as ObjectStoreError;
      }
    })();
    expect(error?.code).toBe('object_store_settings');
    expect(error?.message).toMatch(/^s3:\/\/media\/live at http:\/\/127\.0\.0\.1:7749: no credentials: set STREAMS_S3_ACCESS_KEY and STREAMS_S3_SECRET_KEY/);
  });
});
