/**
 * One running node: its context, its input, its routes to the channels of
 * its consumers, its counters, and its lifecycle (start, restart with
 * backoff after a failure, stop with a reason and a deadline).
 */
import { Observable, type Subscription } from 'rxjs';
import { Ack } from './ack.ts';
import { carriesState, reasonOf, type Batch, type Logger, type NodeContext, type NodeFunction, type OperatorDefinition, type StopReason } from './api.ts';
import { NodeInput, type Blockable, type Channel } from './channel.ts';
import type { Clock } from './clock.ts';
import { NodeStats } from './stats.ts';
import type { GraphNode } from '../graph/model.ts';

/** A source's gate: closed while any channel downstream of it is full. */
export class SourceGate implements Blockable {
  #blockers = new Set<Channel>();
  #waiting: Promise<void> | undefined;
  #open: (() => void) | undefined;

  block(channel: Channel): void {
    this.#blockers.add(channel);
  }

  unblock(channel: Channel): void {
    this.#blockers.delete(channel);
    if (this.#blockers.size === 0) this.release();
  }

  /** Opens the gate whatever blocks it (on stop, so the source sees its abort). */
  release(): void {
    const open = this.#open;
    this.#waiting = undefined;
    this.#open = undefined;
    open?.();
  }

  ready(): Promise<void> | undefined {
    if (this.#blockers.size === 0) return undefined;
    return (this.#waiting ??= new Promise<void>((resolve) => (this.#open = resolve)));
  }
}

export interface NodeRunnerOptions {
  node: GraphNode;
  definition: OperatorDefinition;
  file: string;
  clock: Clock;
  log: Logger;
  restored?: unknown;
  /** Called when the node fails beyond recovery (`on_error: stop`). */
  onFatal(error: Error): void;
}

const maxBackoffMs = 30_000;

export class NodeRunner {
  readonly name: string;
  node: GraphNode;
  definition: OperatorDefinition;
  readonly input = new NodeInput();
  /** Output port to the channels of its consumers. */
  readonly routes = new Map<string, Channel[]>();
  /** Counters; a successor after a reload takes its predecessor's, so totals run on. */
  stats = new NodeStats();
  readonly gate = new SourceGate();
  /** The consumer fused into this node (window -> aggregate), whose outputs this node emits. */
  absorbed: NodeRunner | undefined;
  /** Set on a consumer that runs inside another node. */
  fusedInto: NodeRunner | undefined;
  restored: unknown;
  lastSnapshot: unknown;
  #options: NodeRunnerOptions;
  #controller = new AbortController();
  #subscription: Subscription | undefined;
  #save: (() => unknown) | undefined;
  #stopReason: StopReason = 'end';
  #stopping = false;
  #failures = 0;
  #cancelRestart: (() => void) | undefined;
  #finished: Promise<void>;
  #finish!: () => void;
  #deadLetterWarnings = 0;
  #create: ((ctx: NodeContext<any>) => NodeFunction) | undefined;
  #unroutedWarned = new Set<string>();
  /** Processing-time bookkeeping: time spent in downstream nodes during this node's delivery. */
  static #frames: number[] = [];

  constructor(options: NodeRunnerOptions) {
    this.#options = options;
    this.name = options.node.name;
    this.node = options.node;
    this.definition = options.definition;
    this.restored = options.restored;
    this.#finished = new Promise((resolve) => (this.#finish = resolve));
  }

  /**
   * A node with no input, or whose inputs are all left unconnected: it ends
   * when told to, not when its input does. A consumer fused into another
   * node is neither: it runs inside that node.
   */
  get isSource(): boolean {
    if (this.fusedInto) return false;
    return Object.keys(this.definition.inputs).length === 0 || this.input.channels.length === 0;
  }

  get isSink(): boolean {
    return Object.keys(this.definition.outputs).length === 0;
  }

  get defaultPort(): string {
    return Object.keys(this.definition.outputs)[0] ?? 'out';
  }

  /** Resolves when the node's output has completed (after a stop or the end of its input). */
  get finished(): Promise<void> {
    return this.#finished;
  }

  get label(): string {
    return `node \`${this.name}\` (${this.#options.file}:${this.node.at.line})`;
  }

  context(): NodeContext<any> {
    const runner = this;
    const stats = this.stats;
    const { clock } = this.#options;
    const log = (this.#options.log as Logger & { child?(b: object): Logger }).child?.({ node: this.name }) ?? this.#options.log;
    return {
      node: this.name,
      label: this.label,
      settings: this.node.settings,
      onError: this.node.onError,
      log,
      metrics: {
        dropped: (count, reason) => stats.drop(count, reason),
        bytes: (count, direction = Object.keys(this.node.spec.inputs).length === 0 ? 'read' : 'written') => {
          if (direction === 'read') stats.bytesRead += count;
          else stats.bytesWritten += count;
        },
      },
      signal: this.#controller.signal,
      restored: this.restored,
      snapshot(save) {
        runner.#save = save;
      },
      fail: (item, error, ack) => runner.fail(item, error, ack),
      emit: (port, batch) => runner.route(port, batch),
      ready: () => (runner.#controller.signal.aborted ? undefined : runner.gate.ready()),
      newAck: (onDone, onSettle) => new Ack(onDone, onSettle),
      fatal: (error) => runner.#options.onFatal(error instanceof Error ? error : new Error(String(error))),
      batchDone: () => runner.input.batchDone(),
      stopReason: () => runner.#stopReason,
      now: () => clock.now(),
      schedule: (ms, fn) => clock.schedule(ms, fn),
    };
  }

  /** Hands a batch to the consumers of a port; fan-out holds the ack once per extra consumer. */
  route(port: string, batch: Batch): void {
    const owner = this.absorbed && port === this.absorbed.defaultPort ? this.absorbed : this;
    owner.stats.recordsOut += batch.items.length;
    const channels = owner.routes.get(port);
    if (!channels || channels.length === 0) {
      if (!this.#unroutedWarned.has(port) && port !== 'dlq') {
        this.#unroutedWarned.add(port);
        this.#options.log.debug({ node: this.name, port }, 'output port has no consumer; its records are acknowledged and dropped');
      }
      batch.ack.release();
      return;
    }
    if (channels.length > 1) batch.ack.retain(channels.length - 1);
    const frames = NodeRunner.#frames;
    const started = performance.now();
    for (const channel of channels) channel.push(batch);
    if (frames.length > 0) frames[frames.length - 1] += performance.now() - started;
  }

  /** Routes a record that failed, per the node's `on_error`. */
  fail(item: unknown, error: unknown, ack?: Ack): void {
    this.stats.errors += 1;
    const reason = reasonOf(error);
    switch (this.node.onError) {
      case 'drop':
        this.stats.drop(1, 'error');
        return;
      case 'stop':
        this.#options.onFatal(new Error(`${this.label}: ${reason}`));
        return;
      case 'dlq': {
        this.stats.deadLetters += 1;
        const channels = this.routes.get('dlq');
        if (channels && channels.length > 0) {
          ack?.retain();
          this.route('dlq', { items: [{ error: reason, node: this.name, record: item }], ack: ack ?? Ack.none() });
          return;
        }
        // No dead-letter consumer: say so, but not once per record.
        this.#deadLetterWarnings += 1;
        if (this.#deadLetterWarnings <= 10 || this.#deadLetterWarnings % 1000 === 0) {
          this.#options.log.warn({ node: this.name, error: reason, count: this.#deadLetterWarnings }, 'record failed (connect the `dlq` port to keep these)');
        }
      }
    }
  }

  /** Starts (or restarts) the node's function on its input. */
  /**
   * Starts the node's function on its input. `create` makes the function
   * (the operator's own, or a fused pair's); a restart after a failure calls
   * it again with a fresh context.
   */
  start(create?: (ctx: NodeContext<any>) => NodeFunction): void {
    if (create) this.#create = create;
    let nodeFunction: NodeFunction;
    try {
      nodeFunction = (this.#create ?? ((ctx) => this.definition.create(ctx)))(this.context());
    } catch (error) {
      this.#failed(error);
      return;
    }
    this.stats.starts += 1;
    this.stats.state = 'running';
    const input = this.#timedInput();
    const stats = this.stats;
    const runner = this;
    this.#subscription = nodeFunction(input).subscribe({
      next(batch) {
        runner.route(batch.port ?? (runner.absorbed ?? runner).defaultPort, batch);
      },
      error(error: unknown) {
        runner.#failed(error);
      },
      complete() {
        runner.lastSnapshot = runner.#save?.();
        stats.state = 'stopped';
        runner.#finish();
      },
    });
  }

  /** The input, counting records in and timing each batch net of downstream work. */
  #timedInput() {
    const observable = this.input.observable();
    const stats = this.stats;
    const frames = NodeRunner.#frames;
    return new Observable<Batch>((subscriber) =>
      observable.subscribe({
        next(batch) {
          stats.recordsIn += batch.items.length;
          frames.push(0);
          const started = performance.now();
          subscriber.next(batch);
          const total = performance.now() - started;
          stats.timing((total - frames.pop()!) / 1000);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
  }

  #failed(error: unknown): void {
    this.stats.errors += 1;
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    // A sink's unwritten batch goes back to its channel for the restarted
    // sink; a transform's batch is lost to this run (its ack stays unreleased,
    // so its source does not commit past it).
    this.input.abandonInFlight();
    if (this.#stopping) {
      this.stats.state = 'stopped';
      this.#finish();
      return;
    }
    this.#failures += 1;
    const delay = Math.min(maxBackoffMs, 100 * 2 ** (this.#failures - 1));
    this.stats.state = 'backoff';
    this.#options.log.error({ node: this.name, error: reasonOf(error), restartInMs: delay, failures: this.#failures }, `${this.label} failed; restarting`);
    this.#cancelRestart = this.#options.clock.schedule(delay, () => {
      this.#cancelRestart = undefined;
      this.stats.restarts += 1;
      this.#controller = new AbortController();
      this.start();
    });
  }

  /**
   * Stops the node: sources stop reading; other nodes see their input end.
   * Resolves when the node has finished, or when the deadline passes (then it
   * is forced, and that is logged).
   */
  async stop(reason: StopReason, deadlineMs: number): Promise<void> {
    if (this.stats.state === 'stopped') return;
    this.markStopping(reason);
    if (this.#cancelRestart) {
      this.#cancelRestart();
      this.#cancelRestart = undefined;
      this.stats.state = 'stopped';
      this.#finish();
    }
    if (this.isSource) {
      this.#controller.abort();
      this.gate.release();
    } else if (reason === 'replaced' || reason === 'removed') {
      this.input.close();
    }
    const timedOut = await Promise.race([
      this.#finished.then(() => false),
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), deadlineMs);
        timer.unref();
      }),
    ]);
    if (timedOut) {
      this.#options.log.warn({ node: this.name, deadlineMs }, `${this.label} did not stop within its deadline; forcing it`);
      this.force();
    }
  }

  /**
   * Says why the node will stop, before its input ends: a drain marks every
   * node first, so a window whose input then ends knows whether to flush or
   * to keep its state for a snapshot.
   */
  markStopping(reason: StopReason): void {
    if (this.stats.state === 'stopped') return;
    this.#stopReason = reason;
    this.#stopping = true;
    this.stats.state = 'draining';
  }

  /** Ends the node at once, keeping what it had saved. */
  force(): void {
    this.#controller.abort();
    this.gate.release();
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.stats.state = 'stopped';
    this.#finish();
  }

  /** Whether the last stop keeps state for a successor. */
  get keepsState(): boolean {
    return carriesState(this.#stopReason);
  }
}
