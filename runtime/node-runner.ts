/**
 * One running node: its input, its routes to the channels of its consumers,
 * its counters, and its lifecycle (start, restart after a failure, stop
 * with a reason and a deadline). Beside it: the context its operator is
 * given (`node-context.ts`), when it restarts (`restart-backoff.ts`), and
 * the spans of its batches with tracing on (`tracing/node-spans.ts`).
 */
import { Observable, type Subscription } from 'rxjs';
import { Ack } from './ack.ts';
import { defaultPortOf, type Batch, type Logger, type NodeContext, type NodeFunction, type OperatorDefinition, type StopReason } from './types.ts';
import { failureKind, reasonOf } from './failure.ts';
import type { Channel } from './channel.ts';
import { NodeInput } from './node-input.ts';
import { SourceGate } from './source-gate.ts';
import type { Clock } from './clock.ts';
import { RestartBackoff } from './restart-backoff.ts';
import { NodeStats, type EdgeStats } from './stats.ts';
import type { GraphNode } from '../graph/model.ts';
import { NodeSpans } from './tracing/node-spans.ts';
import { nodeContext } from './node-context.ts';
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
  /** When it restarts after a transient failure. */
  readonly #restarts: RestartBackoff;
  #finished: Promise<void>;
  #finish!: () => void;
  #deadLetterWarnings = 0;
  #create: ((ctx: NodeContext<any>) => NodeFunction) | undefined;
  #unroutedWarned = new Set<string>();
  /** The runtime's spans of this node's batches; undefined when tracing is off. */
  readonly #spans: NodeSpans | undefined;
  /** Whether the node's function was ever started (a node whose `create` threw never ran). */
  hasRun = false;

  constructor(options: NodeRunnerOptions) {
    this.#options = options;
    this.name = options.node.name;
    this.node = options.node;
    this.definition = options.definition;
    this.restored = options.restored;
    this.#restarts = new RestartBackoff(options.clock);
    this.#spans = options.tracing && new NodeSpans(options.tracing, this.name, options.node.op);
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

  /** The context its operator is given, made afresh at each start (see `nodeContext`). */
  context(): NodeContext<any> {
    return nodeContext(this, {
      options: this.#options,
      signal: () => this.#controller.signal,
      snapshot: (save) => {
        this.#save = save;
      },
      stopReason: () => this.#stopReason,
    });
  }

  /** Hands a batch to the consumers of a port; fan-out holds the ack once per extra consumer. */
  route(port: string, batch: Batch): void {
    if (this.#spans !== undefined) batch = this.#spans.outgoing(batch);
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
    this.#restarts.started();
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
    const spans = this.#spans;
    return new Observable<Batch>((subscriber) =>
      observable.subscribe({
        next(batch) {
          stats.recordsIn += batch.items.length;
          // A sampled batch gets this node's span, around its synchronous work;
          // the node's own asynchronous work (a write, a request) has spans of its own.
          const span = spans?.enter(batch);
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
    this.stats.state = 'backoff';
    const { delayMs, failures } = this.#restarts.schedule(() => {
      this.stats.restarts += 1;
      this.#controller = new AbortController();
      this.start();
    });
    this.#options.log.error({ node: this.name, error: reasonOf(error), restartInMs: delayMs, failures }, `${this.label} failed; restarting`);
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
    if (!this.#subscription && !this.#restarts.waiting) {
      // Never started (a reload rolling back a node whose `create` threw): nothing to wait for.
      this.stats.state = 'stopped';
      this.#finish();
      return;
    }
    if (this.#restarts.cancel()) {
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
