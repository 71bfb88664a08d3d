/**
 * Retention for object storage: a periodic sweep that deletes the objects
 * below a prefix that are older than the retention, by the modification
 * time the store's listing gives. A live stream writes segments for as long
 * as it runs; without this the bucket grows for ever.
 *
 * Why a sweep of our own and not the store's lifecycle rules: versitygw
 * (the S3-compatible server the project tests with) answers
 * `PutBucketLifecycleConfiguration` with `NotImplemented`, a folder store
 * has no such rules, and a sweep gives the same behaviour and metrics on
 * every store. The first sweep runs at start, so what a previous run left
 * behind is swept too.
 *
 * An init segment is written once when a track starts, and every later
 * part and segment of the track needs it: a 24/7 stream's init is older
 * than any retention. So an init (`isInit`) is kept as long as the objects
 * written after it in its folder, up to the next init there, are kept; it
 * goes with the last of them (or on its own age when none follows it).
 * A retention shorter than the time between two segments would let a sweep
 * between two writes take the init of a live track with the last segment:
 * so a folder's newest init also stays until nothing has been written there
 * for the retention plus `liveTrackGraceMs`.
 */
import type { NodeMetricFamily } from '../../runtime/api.ts';
import type { ObjectInfo, ObjectStore } from '../../native/s3/object-store.ts';
import { inParallel, type Outcome } from './transfer.ts';

/** What one sweep did. */
export interface SweepResult {
  /** Objects listed below the prefix. */
  listed: number;
  /** Objects deleted because they were older than the retention. */
  expired: number;
  /** Their bytes. */
  bytes: number;
  /** Deletes that failed (tried again at the next sweep). */
  failed: number;
}

/** How an `ObjectExpiry` runs. */
export interface ObjectExpiryOptions {
  /** The store, opened on first use (see `storeNode`); every object in it is swept, so open it at the prefix to sweep. */
  store: () => ObjectStore;
  /** Objects older than this many ms are deleted. */
  retain: number;
  /** The time now and a timer: the node's, so tests run it on a virtual clock. */
  now: () => number;
  schedule: (ms: number, fn: () => void) => () => void;
  /** Told of a sweep that could not list the store, or of deletes that failed; the sweep runs again later. */
  onError?: (error: unknown) => void;
  /** Deletes at once (8). */
  concurrency?: number;
  /** Which keys are init segments, kept while the objects after them are (see above); absent: none. */
  isInit?: (key: string) => boolean;
}

/**
 * How often a retention of `retain` ms is swept: a quarter of it, from 1 s
 * to a minute, so an object outlives its retention by at most that much and
 * a long retention does not list the store more than once a minute.
 */
export function sweepInterval(retain: number): number {
  return Math.min(60_000, Math.max(1_000, Math.round(retain / 4)));
}

/**
 * How long past the retention a folder's newest init outlives the newest
 * object there (ms): longer than the time between two writes of a live
 * track (a part or a segment, usually 1 to 6 s), so a track still written
 * is not left without its init whatever the retention; a track cut in
 * longer segments needs a retention of at least one segment.
 */
export const liveTrackGraceMs = 10_000;

type Dated = ObjectInfo & { modified: number };

/** The outcome of a delete not tried because the expiry stopped. */
const skipped = Symbol('skipped');

/** The folder part of a key: `cam/v/1.m4s` is in `cam/v`. */
function folderOf(key: string): string {
  return key.slice(0, Math.max(0, key.lastIndexOf('/')));
}

/**
 * The objects written at or before `cutoff`, except the inits that a younger
 * object written after them in their folder (before the next init) needs,
 * and a folder's newest init while something was written there after
 * `cutoff - graceMs` (the track may still be live).
 * Objects with no modification time cannot be aged and are kept.
 */
export function expiredOf(objects: readonly ObjectInfo[], cutoff: number, isInit: (key: string) => boolean = () => false, graceMs = 0): Dated[] {
  const dated = objects.filter((object): object is Dated => object.modified !== undefined);
  const needed = new Set<Dated>();
  const byFolder = new Map<string, Dated[]>();
  for (const object of dated) {
    const folder = folderOf(object.key);
    const list = byFolder.get(folder);
    if (list) list.push(object);
    else byFolder.set(folder, [object]);
  }
  for (const list of byFolder.values()) {
    const inits = new Set(list.filter((object) => isInit(object.key)));
    if (inits.size === 0) continue;
    // In writing order; at the same time (S3 gives whole seconds) an init comes first, as it was written before its media.
    list.sort((a, b) => a.modified - b.modified || Number(inits.has(b)) - Number(inits.has(a)));
    let init: Dated | undefined;
    for (const object of list) {
      if (inits.has(object)) init = object;
      else if (init !== undefined && object.modified > cutoff) needed.add(init);
    }
    if (init !== undefined && list[list.length - 1].modified > cutoff - graceMs) needed.add(init);
  }
  return dated.filter((object) => object.modified <= cutoff && !needed.has(object));
}

/**
 * Deletes the objects of a store older than a retention, at start and then
 * every `sweepInterval(retain)`. Sweeps never overlap: the next is
 * scheduled when one ends. Deleting an object another sweeper (a second
 * host with the same settings) deleted first is not an error.
 *
 * @example
 * const expiry = new ObjectExpiry({ store: () => store, retain: 600_000, now: () => ctx.now(), schedule: (ms, fn) => ctx.schedule(ms, fn) });
 * expiry.start(); // ... expiry.stop();
 */
export class ObjectExpiry {
  readonly #options: ObjectExpiryOptions;
  #cancel: (() => void) | undefined;
  #running = false;
  #stopped = false;
  #totals = { sweeps: 0, expired: 0, bytes: 0, errors: 0, kept: 0, keptBytes: 0 };
  /** The sweep in progress, with its rescheduling, for `stop` and tests to wait on. */
  #sweeping: Promise<SweepResult | undefined> | undefined;

  constructor(options: ObjectExpiryOptions) {
    this.#options = options;
  }

  /** Sweeps now, then every interval until `stop`. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#sweeping = this.#sweepThenWait();
  }

  /** No more sweeps; resolves when the one in progress, if any, has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
    await this.#sweeping;
  }

  /**
   * The sweep in progress, or undefined between sweeps. It resolves once
   * the next sweep is scheduled, to what the sweep did (undefined when it
   * failed and was reported).
   */
  get sweeping(): Promise<SweepResult | undefined> | undefined {
    return this.#sweeping;
  }

  async #sweepThenWait(): Promise<SweepResult | undefined> {
    try {
      return await this.sweep();
    } catch (error) {
      this.#totals.errors++;
      if (!this.#stopped) this.#options.onError?.(error);
      return undefined;
    } finally {
      this.#sweeping = undefined;
      if (!this.#stopped) {
        this.#cancel = this.#options.schedule(sweepInterval(this.#options.retain), () => {
          this.#sweeping = this.#sweepThenWait();
        });
      }
    }
  }

  /** One sweep: lists the store and deletes what is older than the retention. Throws when the listing fails. */
  async sweep(): Promise<SweepResult> {
    const { retain, now, concurrency = 8 } = this.#options;
    const store = this.#options.store();
    const objects = await store.list();
    // Read after the listing: every object listed was written before it.
    const cutoff = now() - retain;
    const old = expiredOf(objects, cutoff, this.#options.isInit, liveTrackGraceMs);
    const outcomes = await inParallel(
      old.map((object) => async (): Promise<Outcome<void>> => {
        // Stopped mid-sweep (the node ends): the rest waits for the next run's first sweep.
        if (this.#stopped) return { ok: false, error: skipped };
        try {
          return { ok: true, value: await store.delete(object.key) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
      concurrency,
    );
    const result: SweepResult = { listed: objects.length, expired: 0, bytes: 0, failed: 0 };
    outcomes.forEach((outcome, index) => {
      if (outcome.ok) {
        result.expired++;
        result.bytes += old[index].size;
      } else if (outcome.error !== skipped) result.failed++;
    });
    const totals = this.#totals;
    totals.sweeps++;
    totals.expired += result.expired;
    totals.bytes += result.bytes;
    totals.errors += result.failed;
    totals.kept = objects.length - result.expired;
    totals.keptBytes = objects.reduce((sum, object) => sum + object.size, 0) - result.bytes;
    const firstFailure = outcomes.find((outcome): outcome is { ok: false; error: unknown } => !outcome.ok && outcome.error !== skipped);
    if (firstFailure !== undefined && !this.#stopped) this.#options.onError?.(new Error(`${result.failed} of ${old.length} expired objects could not be deleted (tried again at the next sweep): ${(firstFailure.error as Error).message}`, { cause: firstFailure.error }));
    return result;
  }

  /** The sweeps' counters, as a node exposes them (`streams_objects_expired_total`, ...). */
  metrics(): NodeMetricFamily[] {
    const t = this.#totals;
    return [
      { name: 'objects_expired_total', help: 'Objects deleted because they were older than `retain`.', type: 'counter', samples: [{ value: t.expired }] },
      { name: 'objects_expired_bytes_total', help: 'Bytes of the objects deleted because they were older than `retain`.', type: 'counter', samples: [{ value: t.bytes }] },
      { name: 'objects_expiry_sweeps_total', help: 'Sweeps of the store for objects older than `retain`.', type: 'counter', samples: [{ value: t.sweeps }] },
      { name: 'objects_expiry_errors_total', help: 'Sweeps that could not list the store, and expired objects that could not be deleted.', type: 'counter', samples: [{ value: t.errors }] },
      { name: 'objects_retained', help: 'Objects the last sweep found younger than `retain` (kept).', type: 'gauge', samples: [{ value: t.kept }] },
      { name: 'objects_retained_bytes', help: 'Bytes of the objects the last sweep kept.', type: 'gauge', samples: [{ value: t.keptBytes }] },
    ];
  }
}
