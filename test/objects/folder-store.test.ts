import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openObjectStore } from '../../native/s3/client.ts';
import { openFolderStore } from '../../native/s3/folder-store.ts';
import { ObjectStoreError, readBody, type ObjectStore } from '../../native/s3/object-store.ts';

let dir: string;
let store: ObjectStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'objects-folder-'));
  store = openFolderStore(join(dir, 'root'), { prefix: 'p' });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function failure(promise: Promise<unknown>): Promise<ObjectStoreError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ObjectStoreError);
  return error as ObjectStoreError;
}

describe('the folder store', () => {
  it('writes an object under its prefix and reads it back whole, by range, and by head', async () => {
    const info = await store.put('live/cam/1-2.m4s', Buffer.from('hello world'));
    expect(info).toMatchObject({ key: 'live/cam/1-2.m4s', size: 11, contentType: 'video/iso.segment' });
    expect(readdirSync(join(dir, 'root', 'p', 'live', 'cam'))).toEqual(['1-2.m4s']);
    expect((await readBody(await store.get('live/cam/1-2.m4s'))).toString()).toBe('hello world');
    const range = await store.get('live/cam/1-2.m4s', { range: { start: 6, end: 8 } });
    expect(range).toMatchObject({ size: 11, length: 3 });
    expect((await readBody(range)).toString()).toBe('wor');
    expect((await readBody(await store.get('live/cam/1-2.m4s', { range: { start: 6 } }))).toString()).toBe('world');
    expect(await store.head('live/cam/1-2.m4s')).toEqual(info);
    expect(await store.head('live/cam/none.m4s')).toBeUndefined();
  });

  it('changes the ETag when the content changes', async () => {
    const first = await store.put('a.mp4', Buffer.from('one'));
    const second = await store.put('a.mp4', Buffer.from('three'));
    expect(second.etag).not.toBe(first.etag);
    expect(second.size).toBe(5);
  });

  it('reads an empty object', async () => {
    await store.put('empty.bin', Buffer.alloc(0));
    const object = await store.get('empty.bin');
    expect(object.length).toBe(0);
    expect((await readBody(object)).length).toBe(0);
  });

  it('lists objects by prefix in key order, skipping files being written', async () => {
    await store.put('b/2.m4s', Buffer.from('2'));
    await store.put('a/1.m4s', Buffer.from('1'));
    await store.put('b/1.m4s', Buffer.from('1'));
    writeFileSync(join(dir, 'root', 'p', 'b', '.partial-0123'), 'x');
    expect((await store.list()).map((o) => o.key)).toEqual(['a/1.m4s', 'b/1.m4s', 'b/2.m4s']);
    expect((await store.list('b/')).map((o) => o.key)).toEqual(['b/1.m4s', 'b/2.m4s']);
    expect(await openFolderStore(join(dir, 'nowhere')).list()).toEqual([]);
  });

  it('deletes, and deleting what is not there is no error', async () => {
    await store.put('x.m4s', Buffer.from('x'));
    await store.delete('x.m4s');
    await store.delete('x.m4s');
    expect(await store.head('x.m4s')).toBeUndefined();
  });

  it('prunes the folders a delete empties, while writes into them and listings go on', async () => {
    await store.put('keep/x.m4s', Buffer.from('k'));
    let churning = true;
    // Writes and deletes in folders of their own, so each delete prunes a folder another write may be making again.
    const churn = (async function churnFolders() {
      for (let i = 0; churning && i < 2000; i++) {
        await store.put(`churn/${i % 5}/a.m4s`, Buffer.from('c'));
        await store.delete(`churn/${i % 5}/a.m4s`);
      }
    })();
    const seen: string[][] = [];
    for (let i = 0; i < 100; i++) seen.push((await store.list()).map((o) => o.key).filter((k) => !k.startsWith('churn/')));
    churning = false;
    await churn;
    expect(seen.every((keys) => keys.length === 1 && keys[0] === 'keep/x.m4s')).toBe(true);
    expect(readdirSync(join(dir, 'root', 'p'))).toEqual(['keep']);
  });

  it('says which object is missing, in which folder', async () => {
    const error = await failure(store.get('live/none.m4s'));
    expect(error.code).toBe('object_not_found');
    expect(error.message).toBe(`folder ${join(dir, 'root', 'p')}: no object \`live/none.m4s\``);
  });

  it('refuses a range outside the object', async () => {
    await store.put('r.m4s', Buffer.from('abc'));
    expect((await failure(store.get('r.m4s', { range: { start: 3 } }))).code).toBe('bad_object_range');
  });

  it('never reaches outside its folder', async () => {
    for (const key of ['../escape', '/abs', 'a/../../b']) {
      const error = await failure(store.put(key, Buffer.from('x')));
      expect(error.code).toBe('bad_object_key');
      expect(error.cure).toBe('settings');
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('is what openObjectStore gives for a folder or file: URL, relative to a base', async () => {
    const relative = openObjectStore('file:root', { base: dir, prefix: 'q' });
    await relative.put('k.m4s', Buffer.from('k'));
    expect(relative.where).toBe(`folder ${join(dir, 'root', 'q')}`);
    expect((await readBody(await openObjectStore(join(dir, 'root', 'q')).get('k.m4s'))).toString()).toBe('k');
  });

  it('turns a bad store URL into a settings error', () => {
    expect(() => openObjectStore('ftp://host/x')).toThrow(ObjectStoreError);
    expect(() => openObjectStore('s3://key:secret@media/x')).toThrow(/store `s3:\/\/key:\*\*\*@media\/x`: an `s3:\/\/` store URL takes no credentials/);
  });
});
