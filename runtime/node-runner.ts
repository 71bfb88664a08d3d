/**
 * One running node: its context, its input, its routes to the channels of
 * its consumers, its counters, and its lifecycle (start, restart with
 * backoff after a failure, stop with a reason and a deadline).
 */
import { resolve } from 'node:path';
import { Observable, type Subscription } from 'rxjs';
import { Ack } from './ack.ts';
import { defaultPortOf, type Batch, type Logger, type NodeContext, type NodeFunction, type OperatorDefinition, type StopReason } from './types.ts';
import { failureKind, reasonOf } from './failure.ts';
import { NodeInput, type Channel } from './channel.ts';
import { SourceGate } from './source-gate.ts';
import type { Clock } from './clock.ts';
import { backoffDelay } from './retry.ts';
import { NodeStats, type EdgeStats } from './stats.ts';
import type { GraphNode } from '../graph/model.ts';
import { tracingOff, type TraceContext } from './tracing/context.ts';
import type { Tracing } from './tracing/provider.ts';
import { keyedNode, type PartitionStateOptions } from './state/keyed-node.ts';

export interface NodeRunnerOptions {
  node: GraphNode;
  definition: OperatorDefinition;
  file: string;
  clock: Clock;
  log: Logger;
  restored?: unknown;
  /** The folder relative paths in settings are read against (the pipeline file's). */
  baseDir: string;
  /**
   * Processing-time bookkeeping shared by the nodes of one engine: time
   * spent in downstream nodes during a delivery, so each node is timed net.
   */
  frames: number[];
  /** What the engine's nodes share (`ctx.shared`), by key. */
  shared: Map<string, unknown>;
  /** Traces; undefined when tracing is off (then the hot path makes no span). */
  tracing?: Tracing;
  /** Where keyed nodes with `parallelism` keep their state per partition; without it they keep one state. */
  partitionState?: PartitionStateOptions;
  /** Called when the graph must stop at once (`on_error: stop`, `ctx.fatal`). */
  onFatal(error: Error): void;
  /** Called when the node failed permanently (its state is now `failed`). */
  onFailed(runner: NodeRunner, error: Error): void;
}

/** Restarts wait at most this long. */
const maxBackoffMs = 30_000;
/** A node that ran this long without failing starts its backoff afresh. */
export const healthyRunMs = 30_000;

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
  /** The counters of the edge to `absorbed`, which has no channel: records cross it as the fused node emits. */
  fusedEdge: EdgeStats | undefined;
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
  #runningSince = 0;
  /**
   * With tracing on: the span of this node's latest input batch (`null` when
   * that batch is not sampled), the parent of what the node emits from it.
   * Undefined for a source, which samples its batches instead.
   */
  #traceParent: TraceContext | null | undefined = undefined;
  /** Whether the node's function was ever started (a node whose `create` threw never ran). */
  hasRun = false;

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
    return defaultPortOf(this.definition);
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
    // Bytes a node counts without saying which way: a source reads them, any other node writes them.
    const byteDirection = Object.keys(this.node.spec.inputs).length === 0 ? 'read' : 'written';
    return {
      node: this.name,
      label: this.label,
      settings: this.node.settings,
      onError: this.node.onError,
      log,
      metrics: {
        dropped: (count, reason) => stats.drop(count, reason),
        bytes: (count, direction = byteDirection) => {
          if (direction === 'read') stats.bytesRead += count;
          else stats.bytesWritten += count;
        },
        expose: (collect) => {
          stats.exposed = collect;
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
      resolvePath: (path) => resolve(this.#options.baseDir, path),
      fatal: (error) => runner.#options.onFatal(error instanceof Error ? error : new Error(String(error))),
      batchDone: () => runner.input.batchDone(),
      stopReason: () => runner.#stopReason,
      now: () => clock.now(),
      schedule: (ms, fn, options) => clock.schedule(ms, fn, options),
      connected: (port) => (runner.routes.get(port)?.length ?? 0) > 0,
      shared: <T>(key: string, create: () => T): T => {
        const shared = this.#options.shared;
        if (!shared.has(key)) shared.set(key, create());
        return shared.get(key) as T;
      },
      tracing: this.#options.tracing?.forNode(this.name, this.node.op) ?? tracingOff,
    };
  }

  /** Hands a batch to the consumers of a port; fan-out holds the ack once per extra consumer. */
  route(port: string, batch: Batch): void {
    if (this.#options.tracing !== undefined) batch = this.#traced(batch);
    const owner = this.absorbed && port === this.absorbed.defaultPort ? this.absorbed : this;
    owner.stats.recordsOut += batch.items.length;
    if (owner !== this) this.#crossFusedEdge(batch.items.length);
    const channels = owner.routes.get(port);
    if (!channels || channels.length === 0) {
      // A dead letter with no consumer was counted by `fail`; an optional output (`stats`) is
      // meant to be left unread, unless its records are lost data (a window's `late`);
      // anything else is a silent drop unless counted here.
      const spec = owner.definition.outputs[port];
      if (port !== 'dlq' && !(spec?.optional && !spec.droppedWhenUnread)) {
        owner.stats.drop(batch.items.length, `unconnected_${port}`);
        if (!this.#unroutedWarned.has(port)) {
          this.#unroutedWarned.add(port);
          this.#options.log.warn({ node: owner.name, port }, `${owner.label}: records on its unconnected \`${port}\` port are dropped (counted in streams_node_dropped_total); connect \`${owner.name}.${port}\` to keep them`);
        }
      }
      batch.ack.release();
      return;
    }
    if (channels.length > 1) batch.ack.retain(channels.length - 1);
    const frames = this.#options.frames;
    const started = performance.now();
    for (const channel of channels) channel.push(batch);
    if (frames.length > 0) frames[frames.length - 1] += performance.now() - started;
  }

  /**
   * Counts `count` records across the edge fused away, as if its channel
   * had carried them: a fusion emits one consumer output per record that
   * would have crossed (an aggregate's one result per window pane), so the
   * edge, this node's output and the consumer's input all read what an
   * unfused pair would show, at a few additions per batch.
   */
  #crossFusedEdge(count: number): void {
    this.stats.recordsOut += count;
    this.absorbed!.stats.recordsIn += count;
    const edge = this.fusedEdge;
    if (edge) {
      edge.records += count;
      edge.delivered += count;
    }
  }

  /**
   * The batch as it leaves this node, carrying its parent span: this node's
   * span of the input it came from; or, from a source, the span the source
   * set (a trace continued from another host) or a new sampled one.
   */
  #traced(batch: Batch): Batch {
    let trace = this.#traceParent;
    if (trace === undefined) {
      if (batch.trace !== undefined) return batch;
      const tracing = this.#options.tracing!;
      trace = null;
      if (tracing.sample()) {
        const span = tracing.span(undefined, this.name, 'internal', this.#spanAttributes(batch));
        span.end();
        trace = span.context;
      }
    }
    // Not sampled: the batch goes on as it is (no copy for the 99% a small ratio leaves out).
    if (trace === null) return batch.trace ? { ...batch, trace: null } : batch;
    return trace === batch.trace ? batch : { ...batch, trace };
  }

  /** What a span of this node says of the batch it covers. */
  #spanAttributes(batch: Batch): Record<string, string | number> {
    return { 'streams.node': this.name, 'streams.operator': this.node.op, 'streams.records': batch.items.length };
  }

  /** Routes a record that failed, per the node's `on_error`. */
  fail(item: unknown, error: unknown, ack?: Ack): void {
    // Fused into its producer, the record it failed still crossed the edge fused away.
    if (this.fusedInto) this.fusedInto.#crossFusedEdge(1);
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
        // No dead-letter consumer: count it (the run reports these at exit) and say so, but not once per record.
        this.stats.deadLettersLost += 1;
        this.#deadLetterWarnings += 1;
        if (this.#deadLetterWarnings <= 10 || this.#deadLetterWarnings % 1000 === 0) {
          this.#options.log.warn({ node: this.name, error: reason, count: this.#deadLetterWarnings }, 'record failed (connect the `dlq` port to keep these)');
        }
      }
    }
  }

  /**
   * Starts the node's function on its input. `create` makes the function
   * (the operator's own, or a fused pair's); a restart after a failure calls
   * it again with a fresh context. A `create` that throws is a failure of
   * the node (restarted with backoff, or failed when permanent).
   */
  start(create?: (ctx: NodeContext<any>) => NodeFunction): void {
    const error = this.tryStart(create);
    if (error !== undefined) this.#failed(error);
  }

  /**
   * Starts like `start`, but returns the error of a `create` that throws
   * instead of handling it, leaving the node unstarted: a reload puts the
   * old nodes back when a new one cannot start.
   */
  tryStart(create?: (ctx: NodeContext<any>) => NodeFunction): unknown {
    if (create) this.#create = create;
    let nodeFunction: NodeFunction;
    const make = this.#create ?? ((ctx: NodeContext<any>) => this.definition.create(ctx));
    try {
      const ctx = this.context();
      this.#save = undefined;
      nodeFunction = make(ctx);
      // A stateful node spread over hosts keeps a state per input partition, which moves with the partition.
      const partitionState = this.#options.partitionState;
      if (partitionState && this.#save && this.node.parallelism > 1) nodeFunction = keyedNode({ ctx, plain: nodeFunction, create: make, state: partitionState });
    } catch (error) {
      return error ?? new Error('create failed');
    }
    this.hasRun = true;
    this.stats.starts += 1;
    this.stats.state = 'running';
    this.#runningSince = this.#options.clock.now();
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
    return undefined;
  }

  /** The input, counting records in and timing each batch net of downstream work. */
  #timedInput() {
    const observable = this.input.observable();
    const stats = this.stats;
    const frames = this.#options.frames;
    const tracing = this.#options.tracing;
    const runner = this;
    return new Observable<Batch>((subscriber) =>
      observable.subscribe({
        next(batch) {
          stats.recordsIn += batch.items.length;
          // A sampled batch gets this node's span, around its synchronous work;
          // the node's own asynchronous work (a write, a request) has spans of its own.
          const span = tracing !== undefined && batch.trace ? tracing.span(batch.trace, runner.name, 'internal', runner.#spanAttributes(batch)) : undefined;
          if (tracing !== undefined) runner.#traceParent = span ? span.context : null;
          frames.push(0);
          const started = performance.now();
          subscriber.next(span ? { ...batch, trace: span.context } : batch);
          span?.end();
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
    this.stats.lastError = reasonOf(error);
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    if (this.#stopping) {
      this.input.abandonInFlight();
      this.stats.state = 'stopped';
      this.#finish();
      return;
    }
    if (failureKind(error) === 'permanent') {
      this.#failPermanently(error);
      return;
    }
    // A sink's unwritten batch goes back to its channel for the restarted
    // sink; a transform's batch is lost to this run (its ack stays unreleased,
    // so its source does not commit past it).
    this.input.abandonInFlight();
    // A node that ran well for a while before this failure is not in a crash loop.
    if (this.#options.clock.now() - this.#runningSince >= healthyRunMs) this.#failures = 0;
    this.#failures += 1;
    const delay = backoffDelay(this.#failures - 1, 100, maxBackoffMs);
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
   * Retrying cannot help (a missing input file, a read-only output folder):
   * the node is marked failed, what waits for it is dropped and counted, and
   * its consumers see its output end. The engine decides whether the graph
   * stops (`--on-node-failure`).
   */
  #failPermanently(error: unknown): void {
    const reason = reasonOf(error);
    const message = reason.startsWith(this.label) ? reason : `${this.label}: ${reason}`;
    const failure = new Error(message, { cause: error });
    this.stats.state = 'failed';
    this.#controller.abort();
    this.gate.release();
    const dropped = this.input.failConsumer();
    if (dropped > 0) this.stats.drop(dropped, 'node_failed');
    this.#options.log.error({ node: this.name, error: reason, dropped }, `${message} (the node failed; restarting cannot help)`);
    this.#options.onFailed(this, failure);
    this.#finish();
  }

  /**
   * Stops the node: sources stop reading; other nodes see their input end.
   * Resolves when the node has finished, or when the deadline passes (then it
   * is forced, and that is logged).
   */
  async stop(reason: StopReason, deadlineMs: number): Promise<void> {
    if (this.stats.state === 'stopped' || this.stats.state === 'failed') return;
    this.markStopping(reason);
    if (!this.#subscription && !this.#cancelRestart) {
      // Never started (a reload rolling back a node whose `create` threw): nothing to wait for.
      this.stats.state = 'stopped';
      this.#finish();
      return;
    }
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
    let cancelDeadline: (() => void) | undefined;
    const timedOut = await Promise.race([
      this.#finished.then(() => false),
      new Promise<boolean>((resolve) => (cancelDeadline = this.#options.clock.schedule(deadlineMs, () => resolve(true)))),
    ]);
    cancelDeadline?.();
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
    if (this.stats.state === 'stopped' || this.stats.state === 'failed') return;
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
    if (this.stats.state !== 'failed') this.stats.state = 'stopped';
    this.#finish();
  }
}
