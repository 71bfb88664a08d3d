/**
 * A `NodeContext` for driving an operator's `NodeFunction` directly, without
 * the runtime: it records dead letters, secondary-port emissions, drops and
 * logs, keeps the registered snapshot, and runs on a clock the test owns.
 *
 * Clocks: `schedulerClock()` (the default) follows RxJS's `asyncScheduler`,
 * which inside `TestScheduler.run` is virtual marble time; `VirtualClock`
 * is a manual clock advanced by the test.
 *
 * @example
 * const ctx = fakeContext(filter, { where: 'value > 1' });
 * const run = drive(filter.create(ctx), [batchOf([{ value: 2 }])]);
 * expect(run.items()).toEqual([{ value: 2 }]);
 */
import { resolve } from 'node:path';
import { asyncScheduler, Observable, type SchedulerLike } from 'rxjs';
import { Ack, reasonOf, type Batch, type Logger, type NodeContext, type NodeFunction, type NodeMetricFamily, type OperatorDefinition, type StopReason } from '../../runtime/api.ts';
import type { OnError } from '../../graph/model.ts';
import { tracingOff } from '../../runtime/tracing/context.ts';

/** The runtime's clock interface: now, and a cancellable timer. */
export interface TestClock {
  now(): number;
  schedule(ms: number, fn: () => void): () => void;
}

/** A clock on an RxJS scheduler: virtual time inside `TestScheduler.run`, real time outside. */
export function schedulerClock(scheduler: SchedulerLike = asyncScheduler): TestClock {
  return {
    now: () => scheduler.now(),
    schedule(ms, fn) {
      const subscription = scheduler.schedule(fn, ms);
      return () => subscription.unsubscribe();
    },
  };
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A manual clock: time moves only when the test calls `advance`, running due timers in order. */
export class VirtualClock implements TestClock {
  #now: number;
  #timers: Timer[] = [];
  #seq = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  schedule(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      const index = this.#timers.indexOf(timer);
      if (index >= 0) this.#timers.splice(index, 1);
    };
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, running every timer due on the way at its own time. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.#timers) {
        if (timer.at <= until && (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = timer;
      }
      if (next === undefined) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = until;
  }
}

/** A record handed to `ctx.fail`. */
export interface FailedRecord {
  item: unknown;
  reason: string;
  error: unknown;
  /** The ack passed with it, if any (the fake does not retain it). */
  ack: Ack | undefined;
}

/** How to build a fake context; every field has a default. */
export interface FakeContextOptions {
  node?: string;
  restored?: unknown;
  onError?: OnError;
  clock?: TestClock;
  /** What `stopReason()` answers (default `end`: the input ended). */
  stopReason?: StopReason;
  /** What `ctx.shared` keeps: pass one map to several contexts to make them nodes of one engine. */
  shared?: Map<string, unknown>;
}

/** A NodeContext that records what the node did. */
export interface FakeContext<Settings> extends NodeContext<Settings> {
  readonly clock: TestClock;
  /** Records given to `ctx.fail`, in order. */
  readonly failures: FailedRecord[];
  /** Errors given to `ctx.fatal`, in order. */
  readonly fatals: unknown[];
  /** Batches emitted on secondary ports (`late`, ...), by port. */
  readonly ports: Map<string, Batch[]>;
  /** Dropped record counts by reason. */
  readonly drops: Record<string, number>;
  readonly logs: { level: string; fields: object; message: string }[];
  /** How many times `batchDone` was called. */
  readonly batchesDone: number;
  /** Bytes counted through `metrics.bytes`. */
  readonly bytes: number;
  /** What the node exposes through `metrics.expose`, read now (empty when it exposes nothing). */
  exposedMetrics(): readonly NodeMetricFamily[];
  /** Items emitted on a secondary port, flattened. */
  portItems(port: string): unknown[];
  /** Calls the save function the node registered (undefined when none). */
  takeSnapshot(): unknown;
  /** Changes what `stopReason()` answers. */
  setStopReason(reason: StopReason): void;
  /** Aborts `signal`, as the runtime does when a node must drain. */
  abort(): void;
}

/** Parses raw settings (as a `with:` block gives them) through the operator's schema. */
export function parseSettings<Settings>(definition: OperatorDefinition<Settings>, raw: unknown): Settings {
  return definition.settings.parse(raw ?? {});
}

/** A context for `definition` with `raw` settings parsed through its schema. */
export function fakeContext<Settings>(definition: OperatorDefinition<Settings>, raw: unknown, options: FakeContextOptions = {}): FakeContext<Settings> {
  return contextWithSettings(parseSettings(definition, raw), { node: definition.name.replace(/\W/g, '-'), ...options });
}

/** A context with settings given as they are after parsing (durations in ms). */
export function contextWithSettings<Settings>(settings: Settings, options: FakeContextOptions = {}): FakeContext<Settings> {
  const node = options.node ?? 'node';
  const clock = options.clock ?? schedulerClock();
  const controller = new AbortController();
  const failures: FailedRecord[] = [];
  const fatals: unknown[] = [];
  const ports = new Map<string, Batch[]>();
  const drops: Record<string, number> = {};
  const logs: { level: string; fields: object; message: string }[] = [];
  let save: (() => unknown) | undefined;
  let stopReason: StopReason = options.stopReason ?? 'end';
  let batchesDone = 0;
  let bytes = 0;
  let exposed: (() => readonly NodeMetricFamily[]) | undefined;
  const logAt = (level: string) =>
    function log(fields: object, message: string): void {
      logs.push({ level, fields, message });
    };
  const log: Logger = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') };
  const onError = options.onError ?? 'dlq';
  const shared = options.shared ?? new Map<string, unknown>();
  return {
    node,
    label: `node \`${node}\` (test)`,
    settings,
    resolvePath: (path: string) => resolve(path),
    tracing: tracingOff,
    onError,
    log,
    metrics: {
      dropped(count, reason) {
        drops[reason] = (drops[reason] ?? 0) + count;
      },
      bytes(count) {
        bytes += count;
      },
      expose(collect) {
        exposed = collect;
      },
    },
    signal: controller.signal,
    restored: options.restored,
    snapshot(fn) {
      save = fn;
    },
    fatals,
    fatal(error) {
      fatals.push(error);
    },
    fail(item, error, ack) {
      if (onError === 'stop') throw new Error(`node \`${node}\`: ${reasonOf(error)}`);
      failures.push({ item, reason: reasonOf(error), error, ack });
    },
    emit(port, batch) {
      const list = ports.get(port) ?? [];
      list.push(batch);
      ports.set(port, list);
    },
    ready: () => undefined,
    batchDone() {
      batchesDone += 1;
    },
    newAck: (onDone, onSettle) => new Ack(onDone, onSettle),
    stopReason: () => stopReason,
    now: () => clock.now(),
    schedule: (ms, fn) => clock.schedule(ms, fn),
    // A fake context collects every port's batches, so every port counts as read.
    connected: () => true,
    shared: <T>(key: string, create: () => T): T => {
      if (!shared.has(key)) shared.set(key, create());
      return shared.get(key) as T;
    },
    clock,
    failures,
    ports,
    drops,
    logs,
    get batchesDone() {
      return batchesDone;
    },
    get bytes() {
      return bytes;
    },
    exposedMetrics() {
      return exposed?.() ?? [];
    },
    portItems(port) {
      return (ports.get(port) ?? []).flatMap((batch) => batch.items);
    },
    takeSnapshot() {
      return save?.();
    },
    setStopReason(reason) {
      stopReason = reason;
    },
    abort() {
      controller.abort();
    },
  };
}

/** An ack that counts how often its source was told it is done, and settled. */
export interface AckProbe {
  readonly ack: Ack;
  /** Times `onDone` ran: 1 once every holder released it. */
  readonly done: number;
  readonly settled: number;
}

/** Makes an ack whose completion the test can watch. */
export function probeAck(): AckProbe {
  let done = 0;
  let settled = 0;
  const ack = new Ack(
    () => {
      done += 1;
    },
    () => {
      settled += 1;
    },
  );
  return {
    ack,
    get done() {
      return done;
    },
    get settled() {
      return settled;
    },
  };
}

/** A batch of `items` with a fresh ack (or the one given). */
export function batchOf<T>(items: T[], ack: Ack = new Ack()): Batch<T> {
  return { items, ack };
}

/** What a node did when driven with `drive`. */
export interface DriveResult {
  /** Output batches, in order; their acks are not released (call `releaseAll`). */
  readonly batches: Batch[];
  readonly completed: boolean;
  readonly error: unknown;
  /** Output items, flattened. */
  items(): unknown[];
  /** Releases every output batch's ack, as a sink downstream would. */
  releaseAll(): void;
  unsubscribe(): void;
}

/**
 * Subscribes `fn` to `input` (an array of batches delivered synchronously,
 * or any Observable) and records what comes out. Input that does not
 * complete leaves the node running until `unsubscribe`.
 */
export function drive(fn: NodeFunction, input: readonly Batch[] | Observable<Batch>): DriveResult {
  const batches: Batch[] = [];
  let completed = false;
  let error: unknown;
  const source = Array.isArray(input)
    ? new Observable<Batch>((subscriber) => {
        for (const batch of input as readonly Batch[]) subscriber.next(batch);
        subscriber.complete();
      })
    : (input as Observable<Batch>);
  const subscription = fn(source).subscribe({
    next: (batch) => batches.push(batch),
    error: (e: unknown) => {
      error = e;
    },
    complete: () => {
      completed = true;
    },
  });
  let released = 0;
  return {
    batches,
    get completed() {
      return completed;
    },
    get error() {
      return error;
    },
    items: () => batches.flatMap((batch) => batch.items),
    releaseAll() {
      for (; released < batches.length; released++) batches[released].ack.release();
    },
    unsubscribe: () => subscription.unsubscribe(),
  };
}
