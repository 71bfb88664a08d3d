/**
 * The edge cache's store: objects bounded by bytes, evicted by W-TinyLFU
 * (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache
 * Admission Policy", ACM ToS 2017, section 5): a small LRU window (1 % of
 * the bytes) takes every new object, so a burst of new keys is absorbed
 * there; an object leaving the window enters the main region (segmented
 * LRU: probation, and protected for objects hit again) only if the
 * frequency sketch (`admission.ts`) says it is asked for more often than
 * the objects it would push out. One-hit wonders (a crawler, a flood of
 * distinct keys) therefore pass through the window without flushing the
 * hot set, which plain LRU cannot do. Purge by URL, prefix or tag.
 */
import { FrequencySketch, hashKey } from './admission.ts';
import type { PurgeSelector } from '../purge/command.ts';

/** What the store needs to know of a value. */
export interface StoredValue {
  /** The URL path and query the value was fetched for (without the `Vary` part of its key). */
  readonly url: string;
  /** The origin's `Surrogate-Key` / `Cache-Tag` tags. */
  readonly tags: readonly string[];
  /** Bytes it holds (body and headers). */
  readonly size: number;
  /** Set by a soft purge: the next request revalidates it with the origin. */
  stale: boolean;
}

/** Counters of what the store did. */
export interface StoreCounters {
  evictions: number;
  /** Objects the admission policy refused, to keep more frequently asked ones. */
  rejected: number;
}

/**
 * How many of the least recently used objects compete to be the victim of
 * an admission. On the C2 Zipf trace 64 gains 0.1 point over 16 on three
 * seeds (61.7 % against 61.6 %); the window share (0.5-2 %), the protected
 * share (20-95 %), sketch width (2-16 per object), counter cap (15-255),
 * the aging period, the doorkeeper and conservative counting each moved it
 * by at most 0.1 point. Perfect LFU (exact counts, unbounded) is at 61.8 %:
 * the rest of the gap to a pre-loaded top-K (63.2 %) is starting empty and
 * learning popularity from counts, which no online policy avoids
 * (docs/cdn-edge.md, "What it keeps").
 */
const victimSample = 64;

type Region = 'window' | 'probation' | 'protected';

interface Entry<V> {
  key: string;
  hash: number;
  value: V;
  region: Region;
}

/** Options of a store. */
export interface StoreOptions {
  /** Bytes the store may hold. */
  maxBytes: number;
  /** About how many objects fit: sizes the frequency sketch. */
  expectedObjects: number;
  /**
   * The window's share of the bytes, 0 to below 1; 0.01 when not given
   * (Caffeine's default). A larger window keeps more of a burst of new
   * objects (a live segment every player asks for at once); 0 leaves no
   * window (a new object meets admission at once), which on a trace of
   * independent requests is where hill climbing of the window would end
   * (`bench/cdn-hit-ratio.ts`).
   */
  windowShare?: number;
  /** Called when an object leaves the store (evicted, purged, replaced). */
  onRemove?(key: string): void;
}

/** The key a stored variant has: its URL, then the values of the headers its `Vary` names. */
export function variantKey(url: string, vary: string | undefined): string {
  return vary === undefined || vary === '' ? url : `${url}\u0000${vary}`;
}

/** A W-TinyLFU store bounded by bytes; see the module comment. */
export class EdgeStore<V extends StoredValue> {
  readonly counters: StoreCounters = { evictions: 0, rejected: 0 };
  readonly #sketch: FrequencySketch;
  readonly #options: StoreOptions;
  // Each region is a Map in LRU order: the first entry is the least recently used.
  readonly #window = new Map<string, Entry<V>>();
  readonly #probation = new Map<string, Entry<V>>();
  readonly #protected = new Map<string, Entry<V>>();
  readonly #windowMax: number;
  readonly #protectedMax: number;
  #windowBytes = 0;
  #probationBytes = 0;
  #protectedBytes = 0;
  readonly #byTag = new Map<string, Set<string>>();
  readonly #byUrl = new Map<string, Set<string>>();

  constructor(options: StoreOptions) {
    const windowShare = options.windowShare ?? 0.01;
    if (!(windowShare >= 0 && windowShare < 1)) throw new RangeError(`edge store: window share ${windowShare} is not in [0, 1)`);
    this.#options = options;
    this.#sketch = new FrequencySketch(options.expectedObjects);
    this.#windowMax = Math.max(1, Math.floor(options.maxBytes * windowShare));
    this.#protectedMax = Math.floor((options.maxBytes - this.#windowMax) * 0.8);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#windowBytes + this.#probationBytes + this.#protectedBytes;
  }

  /** Objects held. */
  get count(): number {
    return this.#window.size + this.#probation.size + this.#protected.size;
  }

  /** Counts a request for `key` in the frequency sketch; call once per request, hit or miss. */
  touch(key: string): void {
    this.#sketch.increment(hashKey(key));
  }

  /**
   * A request for `key`: counted (as `touch` counts it) and, when stored,
   * the object marked as recently used and returned. A stored key's hash
   * is not computed again.
   */
  lookup(key: string): V | undefined {
    const entry = this.#find(key);
    this.#sketch.increment(entry === undefined ? hashKey(key) : entry.hash);
    return entry && this.#use(entry);
  }

  /** The object under `key`, marked as recently used (call `touch` for the request too). */
  get(key: string): V | undefined {
    const entry = this.#find(key);
    return entry && this.#use(entry);
  }

  /** A stored entry's value, the entry marked as recently used. */
  #use(entry: Entry<V>): V {
    this.#promote(entry);
    return entry.value;
  }

  /** The object under `key`, without changing its recency. */
  peek(key: string): V | undefined {
    return this.#find(key)?.value;
  }

  /** The keys of every variant stored for `url`. */
  variants(url: string): string[] {
    return [...(this.#byUrl.get(url) ?? [])];
  }

  /**
   * Stores `value` under `key` (replacing what was there). It enters the
   * window; what the window pushes out competes for the main region.
   * Returns false when the object cannot fit at all.
   */
  set(key: string, value: V): boolean {
    if (value.size > this.#options.maxBytes - this.#windowMax) return false;
    const old = this.#find(key);
    if (old) this.#remove(old);
    const entry: Entry<V> = { key, hash: hashKey(key), value, region: 'window' };
    this.#window.set(key, entry);
    this.#windowBytes += value.size;
    this.#index(entry);
    this.#evict();
    return this.#find(key) !== undefined;
  }

  /** Removes `key`; true when it was there. */
  delete(key: string): boolean {
    const entry = this.#find(key);
    if (!entry) return false;
    this.#remove(entry);
    return true;
  }

  /**
   * Applies a purge: removes the selected objects (or marks them stale when
   * `soft`, so the next request revalidates them). Returns how many.
   */
  purge(selector: PurgeSelector): number {
    const keys: string[] = [];
    if (selector.kind === 'url') {
      keys.push(...(this.#byUrl.get(selector.value) ?? []));
    } else if (selector.kind === 'tag') {
      keys.push(...(this.#byTag.get(selector.value) ?? []));
    } else {
      for (const [url, variants] of this.#byUrl) if (url.startsWith(selector.value)) keys.push(...variants);
    }
    let count = 0;
    for (const key of keys) {
      const entry = this.#find(key);
      if (!entry) continue;
      count += 1;
      if (selector.soft) entry.value.stale = true;
      else this.#remove(entry);
    }
    return count;
  }

  /** Removes everything. */
  clear(): void {
    for (const region of [this.#window, this.#probation, this.#protected]) for (const entry of [...region.values()]) this.#remove(entry);
  }

  #find(key: string): Entry<V> | undefined {
    // A key is in one region; the protected one, where objects asked for again live, is looked in first.
    return this.#protected.get(key) ?? this.#probation.get(key) ?? this.#window.get(key);
  }

  /** A hit: most recent in its region; a probation hit moves to protected, whose overflow goes back to probation. */
  #promote(entry: Entry<V>): void {
    if (entry.region !== 'probation') {
      const region = entry.region === 'window' ? this.#window : this.#protected;
      region.delete(entry.key);
      region.set(entry.key, entry);
    } else {
      this.#probation.delete(entry.key);
      this.#probationBytes -= entry.value.size;
      entry.region = 'protected';
      this.#protected.set(entry.key, entry);
      this.#protectedBytes += entry.value.size;
      while (this.#protectedBytes > this.#protectedMax) {
        const demoted = this.#protected.values().next().value as Entry<V>;
        this.#protected.delete(demoted.key);
        this.#protectedBytes -= demoted.value.size;
        demoted.region = 'probation';
        this.#probation.set(demoted.key, demoted);
        this.#probationBytes += demoted.value.size;
      }
    }
  }

  /** Moves the window's overflow into the main region, through the admission filter. */
  #evict(): void {
    const mainMax = this.#options.maxBytes - this.#windowMax;
    while (this.#windowBytes > this.#windowMax) {
      const candidate = this.#window.values().next().value as Entry<V>;
      this.#window.delete(candidate.key);
      this.#windowBytes -= candidate.value.size;
      const candidateFrequency = this.#sketch.estimate(candidate.hash);
      // Victims: the least frequently asked among the least recently used few (probation
      // first), an approximation of LFU among cold objects that costs a bounded scan.
      const victims: Entry<V>[] = [];
      let freed = mainMax - this.#probationBytes - this.#protectedBytes;
      let admitted = true;
      if (freed < candidate.value.size) {
        const sampled: { entry: Entry<V>; frequency: number }[] = [];
        for (const entry of leastRecentFirst(this.#probation, this.#protected)) {
          sampled.push({ entry, frequency: this.#sketch.estimate(entry.hash) });
          if (sampled.length >= victimSample) break;
        }
        sampled.sort((a, b) => a.frequency - b.frequency);
        for (const { entry, frequency } of sampled) {
          if (freed >= candidate.value.size) break;
          // Ties go to the victim: a newcomer must be asked for more often than what it displaces.
          if (frequency >= candidateFrequency) {
            admitted = false;
            break;
          }
          victims.push(entry);
          freed += entry.value.size;
        }
      }
      if (freed < candidate.value.size) admitted = false;
      if (!admitted) {
        this.counters.rejected += 1;
        this.#unindex(candidate);
        this.#options.onRemove?.(candidate.key);
        continue;
      }
      for (const victim of victims) {
        this.counters.evictions += 1;
        this.#remove(victim);
      }
      candidate.region = 'probation';
      this.#probation.set(candidate.key, candidate);
      this.#probationBytes += candidate.value.size;
    }
  }

  #remove(entry: Entry<V>): void {
    const size = entry.value.size;
    if (entry.region === 'window') {
      this.#window.delete(entry.key);
      this.#windowBytes -= size;
    } else if (entry.region === 'probation') {
      this.#probation.delete(entry.key);
      this.#probationBytes -= size;
    } else {
      this.#protected.delete(entry.key);
      this.#protectedBytes -= size;
    }
    this.#unindex(entry);
    this.#options.onRemove?.(entry.key);
  }

  #index(entry: Entry<V>): void {
    addTo(this.#byUrl, entry.value.url, entry.key);
    for (const tag of entry.value.tags) addTo(this.#byTag, tag, entry.key);
  }

  #unindex(entry: Entry<V>): void {
    removeFrom(this.#byUrl, entry.value.url, entry.key);
    for (const tag of entry.value.tags) removeFrom(this.#byTag, tag, entry.key);
  }
}

function* leastRecentFirst<T>(first: Map<string, T>, second: Map<string, T>): Generator<T> {
  yield* first.values();
  yield* second.values();
}

function addTo(index: Map<string, Set<string>>, name: string, key: string): void {
  let keys = index.get(name);
  if (!keys) index.set(name, (keys = new Set()));
  keys.add(key);
}

function removeFrom(index: Map<string, Set<string>>, name: string, key: string): void {
  const keys = index.get(name);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(name);
}
