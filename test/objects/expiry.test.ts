/**
 * Retention of object storage: `ObjectExpiry` over a folder store on a
 * virtual clock (files get their real modification time; the clock starts
 * at the real time and the test moves it), and `retain` on `objects.put`.
 */
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Batch } from '../../runtime/api.ts';
import { openFolderStore } from '../../native/s3/folder-store.ts';
import type { ObjectInfo, ObjectStore } from '../../native/s3/object-store.ts';
import { expiredOf, liveTrackGraceMs, ObjectExpiry, sweepInterval } from '../../nodes/objects/expiry.ts';
import { isInitKey } from '../../nodes/objects/reference.ts';
import objectsGet from '../../nodes/objects/get.ts';
import objectsPut from '../../nodes/objects/put.ts';
import { init, segmentWithParts, videoInfo } from '../helpers/cmaf-items.ts';
import { batchOf, drive, fakeContext, VirtualClock } from '../helpers/fake-context.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'objects-expiry-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Sets a stored object's modification time `ageMs` before `now`. */
function age(store: string, key: string, ageMs: number, now: number): void {
  const at = new Date(now - ageMs);
  utimesSync(join(store, ...key.split('/')), at, at);
}

/** Every file and folder below `path`, relative, sorted. */
function tree(path: string): string[] {
  return (readdirSync(path, { recursive: true }) as string[]).map((p) => p.split('\\').join('/')).sort();
}

function expiryOver(store: ObjectStore, clock: VirtualClock, retain: number, errors: unknown[] = []): ObjectExpiry {
  return new ObjectExpiry({ store: () => store, retain, now: () => clock.now(), schedule: (ms, fn) => clock.schedule(ms, fn), onError: (e) => errors.push(e) });
}

function metric(expiry: ObjectExpiry, name: string): number {
  const family = expiry.metrics().find((f) => f.name === name);
  if (family === undefined || family.type === 'histogram') throw new Error(`no counter or gauge \`${name}\``);
  return family.samples[0].value;
}

describe('ObjectExpiry', () => {
  it('deletes at start what an earlier run left older than the retention, and keeps the rest', async () => {
    const path = join(dir, 'store');
    const store = openFolderStore(path);
    const clock = new VirtualClock(Date.now());
    for (const key of ['cam/v/old-1.m4s', 'cam/v/old-2.m4s', 'cam/v/new-3.m4s', 'gone/a/old.m4s']) await store.put(key, new Uint8Array(10));
    age(path, 'cam/v/old-1.m4s', 2 * 3_600_000, clock.now());
    age(path, 'cam/v/old-2.m4s', 3_600_001, clock.now());
    age(path, 'gone/a/old.m4s', 5 * 3_600_000, clock.now());
    const expiry = expiryOver(store, clock, 3_600_000);
    expiry.start();
    expect(await expiry.sweeping).toEqual({ listed: 4, expired: 3, bytes: 30, failed: 0 });
    // The emptied folders of `gone` went with its last object; the store's own folder stays.
    expect(tree(path)).toEqual(['cam', 'cam/v', 'cam/v/new-3.m4s']);
    expect(metric(expiry, 'objects_expired_total')).toBe(3);
    expect(metric(expiry, 'objects_expired_bytes_total')).toBe(30);
    expect(metric(expiry, 'objects_retained')).toBe(1);
    await expiry.stop();
  });

  it('sweeps every quarter of the retention on its clock, so an object goes at most that long after its time', async () => {
    const path = join(dir, 'store');
    const store = openFolderStore(path);
    const clock = new VirtualClock(Date.now());
    const expiry = expiryOver(store, clock, 8_000);
    expiry.start();
    await expiry.sweeping;
    await store.put('s/t/1.m4s', new Uint8Array(4));
    const written = (await store.head('s/t/1.m4s'))!.modified!;
    expect(clock.pending).toBe(1);
    const swept: number[] = [];
    // Each advance runs the next sweep; the object is kept until its age reaches 8 s.
    for (let i = 0; i < 5; i++) {
      clock.advance(2_000);
      const result = await expiry.sweeping;
      swept.push(result!.expired);
      if (result!.expired > 0) expect(clock.now() - written).toBeGreaterThanOrEqual(8_000);
    }
    // Written just after the clock's start: 8 s old at the fourth sweep at the earliest, gone by the fifth.
    expect(swept.slice(0, 3)).toEqual([0, 0, 0]);
    expect(swept.reduce((a, b) => a + b)).toBe(1);
    expect(await store.list()).toEqual([]);
    expect(metric(expiry, 'objects_expiry_sweeps_total')).toBe(6);
    await expiry.stop();
    expect(clock.pending).toBe(0);
  });

  it('reports a listing that fails and sweeps again at the next interval', async () => {
    const path = join(dir, 'store');
    const real = openFolderStore(path);
    await real.put('k/1.m4s', new Uint8Array(1));
    const clock = new VirtualClock(Date.now() + 10_000);
    let refusals = 1;
    const flaky: ObjectStore = {
      ...real,
      list: async () => {
        if (refusals-- > 0) throw new Error('s3://media at http://127.0.0.1:7070: cannot list: the server cannot be reached (ECONNREFUSED)');
        return real.list();
      },
    };
    const errors: unknown[] = [];
    const expiry = expiryOver(flaky, clock, 5_000, errors);
    expiry.start();
    expect(await expiry.sweeping).toBeUndefined();
    expect(clock.pending).toBe(1);
    expect((errors as Error[]).map((e) => e.message)).toEqual([expect.stringMatching(/cannot be reached \(ECONNREFUSED\)$/)]);
    expect(metric(expiry, 'objects_expiry_errors_total')).toBe(1);
    expect(await real.list()).toHaveLength(1);
    clock.advance(sweepInterval(5_000));
    expect(await expiry.sweeping).toMatchObject({ expired: 1 });
    expect(await real.list()).toEqual([]);
    await expiry.stop();
  });

  it('stops between deletes when stopped mid-sweep, reporting nothing, so the node can end', async () => {
    const path = join(dir, 'store');
    const real = openFolderStore(path);
    for (let i = 0; i < 20; i++) await real.put(`s/v/${i}.m4s`, new Uint8Array(1));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    const slow: ObjectStore = {
      ...real,
      delete: async (key) => {
        started++;
        await held;
        return real.delete(key);
      },
    };
    const clock = new VirtualClock(Date.now() + 60_000);
    const errors: unknown[] = [];
    const expiry = expiryOver(slow, clock, 1_000, errors);
    expiry.start();
    const sweep = expiry.sweeping!;
    while (started < 8) await new Promise((resolve) => setTimeout(resolve, 1));
    const stopped = expiry.stop();
    release();
    await stopped;
    // The eight deletes under way finished; the twelve others were not started.
    expect(await sweep).toEqual({ listed: 20, expired: 8, bytes: 8, failed: 0 });
    expect(started).toBe(8);
    expect(await real.list()).toHaveLength(12);
    expect(errors).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('keeps a track\'s init while the objects written after it are kept', () => {
    const at = (key: string, modified?: number): ObjectInfo => ({ key, size: 1, etag: '', ...(modified !== undefined && { modified }) });
    const expired = (objects: ObjectInfo[], cutoff: number) => expiredOf(objects, cutoff, isInitKey).map((o) => o.key).sort();
    const cases: Array<[string, ObjectInfo[], number, string[]]> = [
      ['a 24/7 track: its init is older than any retention, and needed', [at('s/v/init-a-1.mp4', 0), at('s/v/a-0.m4s', 1), at('s/v/a-1.m4s', 50), at('s/v/a-2.m4s', 200)], 100, ['s/v/a-0.m4s', 's/v/a-1.m4s']],
      ['republished: the old epoch\'s init goes with its last segment', [at('s/v/init-a-1.mp4', 0), at('s/v/a-0.m4s', 10), at('s/v/init-b-2.mp4', 20), at('s/v/b-0.m4s', 200)], 100, ['s/v/a-0.m4s', 's/v/init-a-1.mp4']],
      ['an ended stream goes whole', [at('s/v/init-a-1.mp4', 0), at('s/v/a-0.m4s', 10), at('s/a/init-a-1.mp4', 0), at('s/a/a-0.m4s', 10)], 100, ['s/a/a-0.m4s', 's/a/init-a-1.mp4', 's/v/a-0.m4s', 's/v/init-a-1.mp4']],
      ['written in the same second, the init counts as first', [at('s/v/init-a-1.mp4', 90), at('s/v/a-0.m4s', 90), at('s/v/a-1.m4s', 150)], 100, ['s/v/a-0.m4s']],
      ['an init alone goes on its own age', [at('s/v/init-a-1.mp4', 90), at('t/v/init-a-1.mp4', 110)], 100, ['s/v/init-a-1.mp4']],
      ['a folder does not keep another\'s init', [at('s/v/init-a-1.mp4', 0), at('s/a/a-0.m4s', 200)], 100, ['s/v/init-a-1.mp4']],
      ['an object with no time is kept', [at('s/v/a-0.m4s'), at('s/v/a-1.m4s', 0)], 100, ['s/v/a-1.m4s']],
      ['the cutoff itself is old', [at('s/v/a-0.m4s', 100), at('s/v/a-1.m4s', 101)], 100, ['s/v/a-0.m4s']],
    ];
    for (const [what, objects, cutoff, keys] of cases) expect(expired(objects, cutoff), what).toEqual(keys);
  });

  it('keeps a live track\'s init when `retain` is shorter than its segments, and lets it go once the track is idle', async () => {
    const path = join(dir, 'store');
    const store = openFolderStore(path);
    const clock = new VirtualClock(Date.now());
    // retain 2 s, a segment every 6 s: a sweep between two segments finds the last one expired.
    for (const key of ['cam/v/init-a-1.mp4', 'cam/v/a-0.m4s']) await store.put(key, new Uint8Array(10));
    age(path, 'cam/v/init-a-1.mp4', 9_000, clock.now());
    age(path, 'cam/v/a-0.m4s', 3_000, clock.now());
    const expiry = new ObjectExpiry({ store: () => store, retain: 2_000, now: () => clock.now(), schedule: () => () => undefined, isInit: isInitKey });
    expect(await expiry.sweep()).toMatchObject({ expired: 1 });
    expect(tree(path)).toEqual(['cam', 'cam/v', 'cam/v/init-a-1.mp4']);
    // Nothing written there for retain plus the grace: the track ended, its init goes.
    age(path, 'cam/v/init-a-1.mp4', 2_000 + liveTrackGraceMs + 1, clock.now());
    expect(await expiry.sweep()).toMatchObject({ expired: 1 });
    expect(tree(path)).toEqual([]);
  });

  it('sweeps a quarter of the retention apart, from 1 s to a minute', () => {
    expect([1_000, 8_000, 60_000, 600_000, 86_400_000].map(sweepInterval)).toEqual([1_000, 2_000, 15_000, 60_000, 60_000]);
  });
});

describe('`retain` on objects.put and objects.get', () => {
  it('sweeps the node\'s prefix while it runs, exposes the counts, and leaves no timer when it ends', async () => {
    const path = join(dir, 'store');
    const clock = new VirtualClock(Date.now());
    // Another prefix of the same store: not this node's to sweep.
    const other = openFolderStore(path, { prefix: 'g/other' });
    await other.put('x/y/1.m4s', new Uint8Array(3));
    age(join(path, 'g', 'other'), 'x/y/1.m4s', 3_600_000, clock.now());
    const ctx = fakeContext(objectsPut, { store: path, prefix: 'g/hls', retain: '4s' }, { clock });
    const input = new Subject<Batch>();
    const run = drive(objectsPut.create(ctx), input);
    input.next(batchOf([init('cam', 'v', videoInfo), ...segmentWithParts('cam', 'v', 0, { parts: 1 })]));
    const mine = openFolderStore(path, { prefix: 'g/hls' });
    for (let i = 0; i < 200 && run.items().length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await mine.list()).toHaveLength(3);
    const sweepFor = async (ms: number, until: (left: number) => boolean) => {
      for (let i = 0; i < ms / 1_000 && !until((await mine.list()).length); i++) {
        clock.advance(1_000);
        for (let j = 0; j < 200 && clock.pending === 0; j++) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    // The segment and its part go after `retain`; the init stays until the track has been idle for `retain` plus the grace.
    await sweepFor(10_000, (left) => left <= 1);
    expect((await mine.list()).map((o) => o.key)).toEqual([expect.stringMatching(/^cam\/v\/init-/)]);
    await sweepFor(liveTrackGraceMs + 10_000, (left) => left === 0);
    expect(await mine.list()).toEqual([]);
    expect(await other.list()).toHaveLength(1);
    const expired = ctx.exposedMetrics().find((family) => family.name === 'objects_expired_total');
    expect(expired).toMatchObject({ type: 'counter', samples: [{ value: 3 }] });
    input.complete();
    for (let i = 0; i < 200 && !run.completed; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(run.completed).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('warns of a sweep that fails naming the store and the prefix, and no credential', async () => {
    // A file where the store's folder should be: the listing fails.
    const path = join(dir, 'not-a-folder');
    writeFileSync(path, 'x');
    const ctx = fakeContext(objectsPut, { store: path, prefix: 'g/hls', retain: '4s', access_key: 'AKIDSECRETID', secret_key: 'sup3r-secret' }, { clock: new VirtualClock(Date.now()) });
    const input = new Subject<Batch>();
    const run = drive(objectsPut.create(ctx), input);
    for (let i = 0; i < 200 && !ctx.logs.some((l) => l.level === 'warn'); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const warnings = ctx.logs.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(`objects in store \`${path}\` below prefix \`g/hls\` older than \`retain\` not all deleted: `);
    expect(warnings[0].fields).toMatchObject({ store: path, prefix: 'g/hls', retain_ms: 4_000 });
    expect(JSON.stringify(ctx.logs)).not.toMatch(/AKIDSECRETID|sup3r-secret/);
    input.complete();
    for (let i = 0; i < 200 && !run.completed; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(run.completed).toBe(true);
  });

  it('refuses a retention under a second, and reads one in the usual duration form', () => {
    expect(objectsPut.settings.safeParse({ retain: '500ms' }).error?.issues[0].message).toBe('must be at least `1s`');
    expect(objectsGet.settings.parse({ retain: '10m' }).retain).toBe(600_000);
    expect(objectsPut.settings.parse({}).retain).toBeUndefined();
  });
});
