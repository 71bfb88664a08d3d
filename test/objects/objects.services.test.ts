/**
 * The S3 store and the object operators against the real versitygw
 * (`npm run services:start`): a bucket made for the test and removed after.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CmafItem } from '../../media/segment.ts';
import { createBucket, openObjectStore, removeBucket, s3SettingsFromEnv, type S3Settings } from '../../native/s3/client.ts';
import { ObjectStoreError, readBody, type ObjectStore } from '../../native/s3/object-store.ts';
import objectsGet from '../../nodes/objects/get.ts';
import objectsPut from '../../nodes/objects/put.ts';
import { audioInfo, init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';

const s3: S3Settings = s3SettingsFromEnv();
const bucket = `objects-test-${randomBytes(4).toString('hex')}`;
let store: ObjectStore;

beforeAll(async () => {
  if (!s3.endpoint || !s3.accessKey) throw new Error('STREAMS_S3_URL / STREAMS_S3_ACCESS_KEY are not set: run `bash test/services/start.sh versitygw`');
  await createBucket(s3, bucket);
  store = openObjectStore(`s3://${bucket}/live`, { s3 });
});
afterAll(async () => {
  store?.close();
  await removeBucket(s3, bucket);
});

async function failure(promise: Promise<unknown>): Promise<ObjectStoreError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ObjectStoreError);
  return error as ObjectStoreError;
}

async function settled(run: { completed: boolean; error: unknown }): Promise<void> {
  for (let i = 0; i < 500 && !run.completed && run.error === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(run.error).toBeUndefined();
  expect(run.completed).toBe(true);
}

describe('the S3 store on versitygw', () => {
  it('puts, heads, gets whole and by range, lists and deletes', async () => {
    const body = randomBytes(100_000);
    const info = await store.put('cam/v/1-0.m4s', body, { cacheControl: 'public, max-age=60' });
    expect(info).toMatchObject({ key: 'cam/v/1-0.m4s', size: 100_000, contentType: 'video/iso.segment' });
    expect(info.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(await store.head('cam/v/1-0.m4s')).toMatchObject({ size: 100_000, etag: info.etag, contentType: 'video/iso.segment', cacheControl: 'public, max-age=60' });
    expect(await store.head('cam/v/none.m4s')).toBeUndefined();
    const whole = await store.get('cam/v/1-0.m4s');
    expect(whole.length).toBe(100_000);
    expect((await readBody(whole)).equals(body)).toBe(true);
    const range = await store.get('cam/v/1-0.m4s', { range: { start: 1000, end: 1999 } });
    expect(range).toMatchObject({ size: 100_000, length: 1000 });
    expect((await readBody(range)).equals(body.subarray(1000, 2000))).toBe(true);
    const tail = await store.get('cam/v/1-0.m4s', { range: { start: 99_990 } });
    expect((await readBody(tail)).equals(body.subarray(99_990))).toBe(true);
    await store.put('cam/a/1-0.m4s', Buffer.from('a'));
    expect((await store.list()).map((o) => o.key)).toEqual(['cam/a/1-0.m4s', 'cam/v/1-0.m4s']);
    expect((await store.list('cam/v/')).map((o) => o.key)).toEqual(['cam/v/1-0.m4s']);
    await store.delete('cam/a/1-0.m4s');
    await store.delete('cam/a/1-0.m4s');
    expect((await store.list()).map((o) => o.key)).toEqual(['cam/v/1-0.m4s']);
  });

  it('says which object is missing, on which server and bucket', async () => {
    const error = await failure(store.get('cam/v/none.m4s'));
    expect(error.code).toBe('object_not_found');
    expect(error.message).toBe(`s3://${bucket}/live at ${s3.endpoint}: no object \`cam/v/none.m4s\``);
  });

  it('says the bucket is missing', async () => {
    const other = openObjectStore('s3://objects-test-none-zz/x', { s3 });
    const error = await failure(other.put('k', Buffer.from('k')));
    other.close();
    expect(error.code).toBe('bucket_not_found');
    expect(error.message).toBe(`s3://objects-test-none-zz/x at ${s3.endpoint}: the bucket does not exist`);
  });

  it('refuses bad credentials clearly, and never shows the secret', async () => {
    const wrongSecret = openObjectStore(`s3://${bucket}/live`, { s3: { ...s3, secretKey: 'not-the-secret-0123' } });
    const signed = await failure(wrongSecret.get('cam/v/1-0.m4s'));
    wrongSecret.close();
    expect(signed.code).toBe('object_access_denied');
    expect(signed.cure).toBe('settings');
    expect(signed.message).toBe(`s3://${bucket}/live at ${s3.endpoint}: the server refused the request signature (check STREAMS_S3_SECRET_KEY)`);
    const unknownKey = openObjectStore(`s3://${bucket}/live`, { s3: { ...s3, accessKey: 'nobody-here' } });
    const known = await failure(unknownKey.put('x', Buffer.from('x')));
    unknownKey.close();
    expect(known.code).toBe('object_access_denied');
    expect(known.message).toMatch(/the access key is not known to the server \(check STREAMS_S3_ACCESS_KEY\)$/);
    for (const message of [signed.message, known.message]) {
      expect(message).not.toContain(s3.secretKey!);
      expect(message).not.toContain('not-the-secret-0123');
    }
  });

  it('says when the server cannot be reached', async () => {
    const down = openObjectStore(`s3://${bucket}/live`, { s3: { ...s3, endpoint: 'http://127.0.0.1:7749' } });
    const error = await failure(down.get('k'));
    down.close();
    expect(error.code).toBe('object_store_unreachable');
    expect(error.message).toBe(`s3://${bucket}/live at http://127.0.0.1:7749: cannot read \`k\`: the server cannot be reached (ECONNREFUSED)`);
  });

  it('carries CMAF items through objects.put and objects.get, with their cache headers', async () => {
    const items: CmafItem[] = [init('cam', '720p', videoInfo), init('cam', 'audio', audioInfo), ...segmentWithParts('cam', '720p', 0), ...segmentWithParts('cam', 'audio', 0)];
    const settings = { store: `s3://${bucket}/ops`, prefix: 'g/hls' };
    const putCtx = fakeContext(objectsPut, settings);
    const put = drive(objectsPut.create(putCtx), [batchOf(items)]);
    await settled(put);
    expect(putCtx.failures).toEqual([]);
    const references = JSON.parse(JSON.stringify(put.items())) as Array<{ key: string }>;
    const stored = openObjectStore(`s3://${bucket}/ops/g/hls`, { s3 });
    expect(await stored.head(references[2].key)).toMatchObject({ contentType: 'video/iso.segment', cacheControl: 'public, max-age=31536000, immutable' });
    expect(await stored.head(references[0].key)).toMatchObject({ contentType: 'video/mp4' });
    stored.close();
    const getCtx = fakeContext(objectsGet, settings);
    const get = drive(objectsGet.create(getCtx), [batchOf(references)]);
    await settled(get);
    expect(getCtx.failures).toEqual([]);
    expect(get.items()).toEqual(items);
  });
});
