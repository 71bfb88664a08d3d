/**
 * Retention on the real versitygw (`npm run services:start`): the server
 * has no lifecycle rules, so `retain` sweeps the bucket itself, by the
 * `LastModified` its listings give.
 */
import { randomBytes } from 'node:crypto';
import { GetBucketLifecycleConfigurationCommand, PutBucketLifecycleConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { Subject } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../../runtime/api.ts';
import { createBucket, openObjectStore, removeBucket, s3SettingsFromEnv, type S3Settings } from '../../native/s3/client.ts';
import type { ObjectStore } from '../../native/s3/object-store.ts';
import objectsPut from '../../nodes/objects/put.ts';
import { init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext, VirtualClock } from '../helpers/fake-context.ts';

const s3: S3Settings = s3SettingsFromEnv();
const bucket = `expiry-test-${randomBytes(4).toString('hex')}`;
const stores: ObjectStore[] = [];

function storeAt(prefix: string): ObjectStore {
  const store = openObjectStore(`s3://${bucket}/${prefix}`, { s3 });
  stores.push(store);
  return store;
}

async function until(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  if (!s3.endpoint || !s3.accessKey) throw new Error('STREAMS_S3_URL / STREAMS_S3_ACCESS_KEY are not set: run `bash test/services/start.sh versitygw`');
  await createBucket(s3, bucket);
});
afterAll(async () => {
  for (const store of stores) store.close();
  await removeBucket(s3, bucket);
});

describe('retention on versitygw', () => {
  it('has no lifecycle rules to lean on: the server answers NotImplemented', async () => {
    const client = new S3Client({ endpoint: s3.endpoint!, region: s3.region ?? 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKey!, secretAccessKey: s3.secretKey! } });
    try {
      const rules = { Rules: [{ ID: 'live', Status: 'Enabled' as const, Filter: { Prefix: 'live/' }, Expiration: { Days: 1 } }] };
      const put = await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: rules })).then(() => undefined, (e: Error) => e);
      const get = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket })).then(() => undefined, (e: Error) => e);
      expect([put?.name, get?.name]).toEqual(['NotImplemented', 'NotImplemented']);
    } finally {
      client.destroy();
    }
  });

  it('lists objects with the time they were written, to the second', async () => {
    const store = storeAt('listed');
    const before = Date.now();
    await store.put('a/1.m4s', Buffer.from('x'));
    const [listed] = await store.list();
    expect(listed.modified).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(listed.modified).toBeLessThanOrEqual(Date.now());
    expect((await store.head('a/1.m4s'))!.modified).toBe(listed.modified);
  });

  it('sweeps at start what an earlier run left in the node\'s prefix, and nothing outside it', async () => {
    const mine = storeAt('live/g/hls');
    const other = storeAt('live/g/other');
    for (const key of ['cam/v/init-1.mp4', 'cam/v/1-0.m4s', 'cam/v/1-1.m4s']) await mine.put(key, randomBytes(1000));
    await other.put('cam/v/1-0.m4s', Buffer.from('kept'));
    // The node's clock is an hour ahead: to it, the earlier run's objects are an hour old.
    const clock = new VirtualClock(Date.now() + 3_600_000);
    const ctx = fakeContext(objectsPut, { store: `s3://${bucket}/live`, prefix: 'g/hls', retain: '30m' }, { clock });
    const input = new Subject<Batch>();
    const run = drive(objectsPut.create(ctx), input);
    // The sweep counts its deletes once all have answered: the last object can be gone a moment before.
    const expiredBytes = () => (ctx.exposedMetrics().find((f) => f.name === 'objects_expired_bytes_total') as { samples: { value: number }[] } | undefined)?.samples[0]?.value;
    await until('the earlier run\'s objects to go', async () => (await mine.list()).length === 0 && (expiredBytes() ?? 0) > 0, 10_000);
    expect((await other.list()).map((o) => o.key)).toEqual(['cam/v/1-0.m4s']);
    expect(expiredBytes()).toBe(3000);
    input.complete();
    await until('the node to end', async () => run.completed, 5_000);
    expect(clock.pending).toBe(0);
  });

  it('empties the prefix a stream wrote, the retention after it stopped writing', async () => {
    const mine = storeAt('live/g/stream');
    const ctx = fakeContext(objectsPut, { store: `s3://${bucket}/live`, prefix: 'g/stream', retain: '2s' });
    const input = new Subject<Batch>();
    const run = drive(objectsPut.create(ctx), input);
    const before = Date.now();
    input.next(batchOf([init('cam', 'v', videoInfo), ...segmentWithParts('cam', 'v', 0, { parts: 2 }), ...segmentWithParts('cam', 'v', 1, { parts: 2 })]));
    await until('the references', async () => run.items().length === 7, 10_000);
    expect(await mine.list()).toHaveLength(7);
    // The init goes last, once nothing was written for the retention plus `liveTrackGraceMs` (10 s).
    await until('the prefix to empty', async () => (await mine.list()).length === 0, 30_000);
    // Not before its time: LastModified is whole seconds, so by the wall clock 2 s of retention may end up to 1 s early.
    expect(Date.now() - before).toBeGreaterThanOrEqual(1_000);
    expect(ctx.logs.filter((l) => l.level === 'warn')).toEqual([]);
    input.complete();
    await until('the node to end', async () => run.completed, 5_000);
  });
});
