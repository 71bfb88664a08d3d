/**
 * Taps: the last records through a node's port, for the admin API and the
 * page. A tap costs nothing until asked for: it hooks the port's channels
 * (`Channel.tap`) on the first request and unhooks itself when nobody has
 * asked for a while. What it keeps is sampled (a bounded number of records
 * a second), redacted (fields named like secrets) and truncated.
 */
import type { Channel } from '../channel.ts';
import type { Engine } from '../engine.ts';
import { redactValue } from './redaction.ts';

/** One record seen by a tap. */
export interface TappedRecord {
  time: number;
  record: unknown;
}

export interface TapOptions {
  /** Records kept per tap. Default 200. */
  keep?: number;
  /** Records taken per second at most; the rest pass unseen. Default 50. */
  perSecond?: number;
  /** Strings longer than this are cut. Default 1024. */
  maxString?: number;
  /** A tap nobody read for this long is removed. Default 30 s. */
  idleMs?: number;
  now?: () => number;
}

/** Why a tap cannot be made: the node or port does not exist. */
export class TapError extends Error {
  readonly code = 'unknown_tap';
}

class Tap {
  readonly records: TappedRecord[] = [];
  readonly followers = new Set<(record: TappedRecord) => void>();
  channels = new Set<Channel>();
  lastRead: number;
  #second = 0;
  #taken = 0;
  readonly #options: Required<TapOptions>;

  constructor(options: Required<TapOptions>) {
    this.#options = options;
    this.lastRead = options.now();
  }

  see(items: readonly unknown[]): void {
    const now = this.#options.now();
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#taken = 0;
    }
    for (const item of items) {
      if (this.#taken >= this.#options.perSecond) return;
      this.#taken += 1;
      const tapped = { time: now, record: redactValue(item, { maxString: this.#options.maxString, maxDepth: 8 }) };
      this.records.push(tapped);
      if (this.records.length > this.#options.keep) this.records.shift();
      for (const follower of this.followers) follower(tapped);
    }
  }
}

/** What taps read of an engine; a worker's engine changes with its share. */
export type TapEngine = Pick<Engine, 'runners' | 'channels'>;

/** The taps of one engine. */
export class Taps {
  readonly #engine: TapEngine;
  readonly #options: Required<TapOptions>;
  readonly #taps = new Map<string, Tap>();
  /** Which taps see each hooked channel (a channel may be the output of one tap and the input of another). */
  readonly #hooked = new Map<Channel, Set<Tap>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(engine: TapEngine, options: TapOptions = {}) {
    this.#engine = engine;
    this.#options = { keep: 200, perSecond: 50, maxString: 1024, idleMs: 30_000, now: Date.now, ...options };
  }

  /**
   * The channels a tap of `node` (at `port`) reads: those fed by that output
   * port; for a node without outputs read (a sink), those into it.
   * Throws a `TapError` naming what exists when the node or port does not.
   */
  #resolve(node: string, port: string | undefined): { key: string; channels: Channel[] } {
    const runner = this.#engine.runners.get(node);
    if (!runner) throw new TapError(`no node \`${node}\` in the running graph`);
    const ports = [...Object.keys(runner.definition.outputs), 'dlq'];
    if (port !== undefined && !ports.includes(port)) throw new TapError(`node \`${node}\` has no output port \`${port}\` (ports: ${ports.join(', ')})`);
    const chosen = port ?? runner.defaultPort;
    const out = this.#engine.channels.filter((c) => c.from === `${node}.${chosen}`);
    if (out.length > 0 || port !== undefined) return { key: `${node}.${chosen}`, channels: out };
    return { key: `${node}<-`, channels: this.#engine.channels.filter((c) => c.to === node) };
  }

  #tap(node: string, port: string | undefined): Tap {
    const { key, channels } = this.#resolve(node, port);
    let tap = this.#taps.get(key);
    if (!tap) {
      tap = new Tap(this.#options);
      this.#taps.set(key, tap);
      this.#startSweeping();
    }
    tap.lastRead = this.#options.now();
    this.#hook(tap, channels);
    return tap;
  }

  /** Points the tap at `channels` (they change on reload). */
  #hook(tap: Tap, channels: Channel[]): void {
    for (const channel of tap.channels) if (!channels.includes(channel)) this.#unhook(tap, channel);
    for (const channel of channels) {
      if (tap.channels.has(channel)) continue;
      tap.channels.add(channel);
      let taps = this.#hooked.get(channel);
      if (!taps) {
        const set = new Set<Tap>();
        taps = set;
        this.#hooked.set(channel, set);
        channel.tap = function tapChannel(items) {
          for (const each of set) each.see(items);
        };
      }
      taps.add(tap);
    }
  }

  #unhook(tap: Tap, channel: Channel): void {
    tap.channels.delete(channel);
    const taps = this.#hooked.get(channel);
    taps?.delete(tap);
    if (taps && taps.size === 0) {
      this.#hooked.delete(channel);
      channel.tap = undefined;
    }
  }

  /**
   * The last `n` records through `node`'s `port` (its first output unless
   * named). A tap made by this call has seen nothing yet: it waits up to
   * `waitMs` for the first records.
   */
  async read(node: string, port: string | undefined, n: number, waitMs = 1000): Promise<TappedRecord[]> {
    const fresh = !this.#taps.has(this.#resolve(node, port).key);
    const tap = this.#tap(node, port);
    if (fresh && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done(): void {
          clearTimeout(timer);
          tap.followers.delete(onRecord);
          resolve();
        }
        function onRecord(): void {
          if (tap.records.length >= n) done();
        }
        tap.followers.add(onRecord);
      });
    }
    return tap.records.slice(-n);
  }

  /** Calls `listener` with each record sampled through the port until the returned function is called. */
  follow(node: string, port: string | undefined, listener: (record: TappedRecord) => void): () => void {
    const tap = this.#tap(node, port);
    tap.followers.add(listener);
    return () => {
      tap.followers.delete(listener);
      tap.lastRead = this.#options.now();
    };
  }

  /** How many channels are hooked now (0 when no tap is in use). */
  get hookedChannels(): number {
    return this.#hooked.size;
  }

  #startSweeping(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sweep(), 1000);
    this.#timer.unref();
  }

  /** Re-points live taps after a reload, and removes taps nobody reads. */
  sweep(): void {
    const now = this.#options.now();
    for (const [key, tap] of this.#taps) {
      const idle = tap.followers.size === 0 && now - tap.lastRead >= this.#options.idleMs;
      const dot = key.endsWith('<-') ? -1 : key.lastIndexOf('.');
      const node = dot < 0 ? key.slice(0, -2) : key.slice(0, dot);
      let channels: Channel[] = [];
      if (!idle && this.#engine.runners.has(node)) channels = this.#resolve(node, dot < 0 ? undefined : key.slice(dot + 1)).channels;
      this.#hook(tap, channels);
      if (idle || !this.#engine.runners.has(node)) this.#taps.delete(key);
    }
    if (this.#taps.size === 0) this.stop();
  }

  /** Removes every tap. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const tap of this.#taps.values()) for (const channel of [...tap.channels]) this.#unhook(tap, channel);
    this.#taps.clear();
  }
}
