/**
 * Executing a checked graph on one host: a `NodeRunner` per node, a bounded
 * `Channel` per edge, sources gated by the channels below them, and
 * completion flowing from sources to sinks. `reload` applies a diff
 * (runtime/reload.ts).
 */
import type { Graph, GraphNode } from '../graph/model.ts';
import { nodeOfPort, portNameOf, type OperatorDefinition, type Logger, type StopReason } from './types.ts';
import { Channel, type ChannelOptions } from './channel.ts';
import { realClock, type Clock } from './clock.ts';
import { NodeRunner } from './node-runner.ts';
import { handOnWaiting } from './reload-edges.ts';
import { fusedPairs } from './fusion.ts';
import { silentLogger } from './log.ts';
import { reloadGraph, type ReloadResult } from './reload.ts';
import { EdgeStats, type NodeStats } from './stats.ts';
import { tuneHeapFor } from './heap-tuning.ts';
import type { Tracing } from './tracing/provider.ts';
import type { PartitionStateOptions } from './state/keyed-node.ts';

export interface EngineOptions {
  registry: ReadonlyMap<string, OperatorDefinition>;
  log?: Logger;
  clock?: Clock;
  /** State saved by an earlier run, by node name. */
  restored?: ReadonlyMap<string, unknown>;
  /** Where keyed nodes with `parallelism` keep their state per partition (docs/keyed-state.md). */
  partitionState?: PartitionStateOptions;
  /** Defaults for channels a node does not size itself. */
  channelDefaults?: Partial<ChannelOptions>;
  /** The folder relative paths in settings are read against: the pipeline file's. Default: the current directory. */
  baseDir?: string;
  /**
   * When a node fails permanently: `stop` drains the rest of the graph and
   * `done` rejects with the failure; `continue` keeps the rest running (the
   * failed node's input is dropped and counted). Default `stop`.
   */
  onNodeFailure?: 'stop' | 'continue';
  /** Traces exported over OTLP; undefined (the default) turns tracing off at no cost. */
  tracing?: Tracing;
  /**
   * The graph will never be reloaded (`streams run` without `--watch` or
   * `--ui`). A source may then run its only consumer inside itself, as
   * `file.read` parses the lines of a `decode.json` reading it: a reload
   * could not replace that consumer without restarting the source (reading
   * its input again), so `reload` refuses. Default false.
   */
  fixed?: boolean;
}

/** A node that failed permanently, as the run reports it. */
export interface NodeFailure {
  node: string;
  /** `node \`x\` (file:line): cause`. */
  message: string;
  /** The failure itself: `stopError` when it is the one that stopped the run. */
  error: Error;
}

export const defaultChannel: ChannelOptions = { capacity: 16_384, capacityBytes: 64 * 1024 * 1024, whenFull: 'block', pacing: 'free' };

/** How a node takes batches from its input channels (see `ChannelOptions.pacing`). */
function channelPacing(node: NodeRunner): ChannelOptions['pacing'] {
  if (node.isSink) return node.definition.paced ? 'taken' : 'ack';
  return node.definition.paced ? 'explicit' : 'free';
}

/** A graph running on this host. */
export class Engine {
  graph: Graph;
  readonly runners = new Map<string, NodeRunner>();
  readonly channels: Channel[] = [];
  /** Edges fused away (no channel), by `node.port->node`: their ends and counters. */
  readonly #fusedEdges = new Map<string, { edge: { from: string; to: string }; stats: EdgeStats }>();
  readonly options: EngineOptions;
  readonly log: Logger;
  readonly clock: Clock;
  #fatal: Error | undefined;
  /** The first permanent node failure that stops the graph (`onNodeFailure: stop`). */
  #stopError: Error | undefined;
  /** Processing-time frames shared by this engine's nodes (see `NodeRunnerOptions.frames`). */
  readonly #frames: number[] = [];
  /** Nodes that failed permanently, in order. */
  readonly failures: NodeFailure[] = [];
  #done: Promise<void>;
  #resolveDone!: () => void;
  #rejectDone!: (error: Error) => void;
  /** What `done` rejected with, once it has. */
  #stoppedBy: Error | undefined;
  #started = false;
  #reloading = false;
  /** Nodes stopping for a replacement: their end is not their consumers' end. */
  #retiring = new Set<NodeRunner>();
  /** Snapshots kept from nodes that stopped, by name. */
  readonly snapshots = new Map<string, unknown>();
  /** What the nodes share through `ctx.shared`, for the engine's life. */
  readonly #shared = new Map<string, unknown>();

  constructor(graph: Graph, options: EngineOptions) {
    tuneHeapFor(graph);
    this.graph = graph;
    this.options = options;
    this.log = options.log ?? silentLogger;
    this.clock = options.clock ?? realClock;
    this.#done = new Promise((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = (error) => {
        this.#stoppedBy ??= error;
        reject(error);
      };
    });
    // Nobody may be awaiting `done` yet; a fatal error is still reported through it.
    this.#done.catch(() => undefined);
    for (const node of graph.nodes.values()) this.#addRunner(node);
    this.#rewire();
  }

  /** Resolves when every node has finished (the sources ran out, or a drain completed); rejects on a fatal error. */
  get done(): Promise<void> {
    return this.#done;
  }

  /**
   * The error that stopped the run: what `done` rejected with (a fatal
   * error, or the first permanent node failure under `onNodeFailure: stop`);
   * undefined while the run goes on or when it ended well.
   */
  get stopError(): Error | undefined {
    return this.#stoppedBy;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // Consumers first, so nothing a source emits finds a node not yet listening.
    const order = [...this.runners.values()].reverse();
    for (const runner of order) if (!runner.fusedInto) this.#startRunner(runner);
  }

  /** Stops every source and lets everything in flight reach the sinks. */
  async drain(options: { deadlineMs?: number; reason?: StopReason } = {}): Promise<void> {
    const deadline = options.deadlineMs ?? 30_000;
    const reason = options.reason ?? 'shutdown';
    for (const runner of this.runners.values()) runner.markStopping(reason);
    const sources = [...this.runners.values()].filter((r) => r.isSource);
    await Promise.all(sources.map((r) => r.stop(reason, deadline)));
    for (const runner of this.runners.values()) if (!runner.isSource && !runner.fusedInto) void runner.stop(reason, deadline);
    const cancel = this.clock.schedule(deadline, () => {
      for (const runner of this.runners.values()) runner.force();
    });
    try {
      await this.#done;
    } finally {
      cancel();
    }
  }

  /** Dead letters that had no `dlq` consumer, by node (only nodes with some). */
  lostDeadLetters(): Map<string, number> {
    const lost = new Map<string, number>();
    for (const [name, runner] of this.runners) if (runner.stats.deadLettersLost > 0) lost.set(name, runner.stats.deadLettersLost);
    return lost;
  }

  nodeStats(): Iterable<[string, NodeStats]> {
    return [...this.runners].map(([name, runner]) => [name, runner.stats] as [string, NodeStats]);
  }

  /** The counters of every edge: each channel's, then each fused edge's (`EdgeStats.fused`), which has none. */
  edgeStats(): Iterable<[{ from: string; to: string }, EdgeStats]> {
    const edges = this.channels.map((c) => [{ from: c.from, to: c.to }, c.stats] as [{ from: string; to: string }, EdgeStats]);
    for (const { edge, stats } of this.#fusedEdges.values()) edges.push([edge, stats]);
    return edges;
  }

  #addRunner(node: GraphNode): NodeRunner {
    const definition = this.options.registry.get(node.op);
    if (!definition) throw new Error(`operator \`${node.op}\` of node \`${node.name}\` is not in the registry`);
    const runner = new NodeRunner({
      node,
      definition,
      file: this.graph.file,
      clock: this.clock,
      log: this.log,
      restored: this.options.restored?.get(node.name),
      baseDir: this.options.baseDir ?? process.cwd(),
      frames: this.#frames,
      shared: this.#shared,
      tracing: this.options.tracing,
      ...(this.options.partitionState && { partitionState: this.options.partitionState }),
      onFatal: (error) => this.#fail(error),
      onFailed: (failed, error) => this.#nodeFailed(failed, error),
    });
    this.runners.set(node.name, runner);
    return runner;
  }

  #fail(error: Error): void {
    if (this.#fatal) return;
    this.#fatal = error;
    this.log.error({ error: error.message }, 'stopping the graph');
    for (const runner of this.runners.values()) runner.force();
    this.#rejectDone(error);
  }

  #nodeFailed(runner: NodeRunner, error: Error): void {
    this.failures.push({ node: runner.name, message: error.message, error });
    if ((this.options.onNodeFailure ?? 'stop') === 'continue' || this.#stopError || this.#fatal) return;
    this.#stopError = error;
    this.log.error({ node: runner.name }, 'a node failed permanently: draining the graph (--on-node-failure stop)');
    // `done` rejects with the failure once the drain completes; this caller does not wait for it.
    this.drain({ reason: 'shutdown' }).catch(() => undefined);
  }

  /** Channel options for the edges into a node, from its fields and the defaults. */
  channelOptions(node: GraphNode, pacing: ChannelOptions['pacing']): ChannelOptions {
    const base = { ...defaultChannel, ...this.options.channelDefaults };
    return {
      capacity: node.channel.capacity ?? base.capacity,
      capacityBytes: node.channel.capacityBytes ?? base.capacityBytes,
      whenFull: node.channel.whenFull ?? base.whenFull,
      pacing,
    };
  }

  /**
   * Builds channels for every edge (keeping existing ones, with what waits
   * in them), fuses what can fuse, and tells each channel its upstream sources.
   */
  #rewire(): void {
    for (const runner of this.runners.values()) {
      runner.routes.clear();
      runner.absorbed = undefined;
      runner.fusedInto = undefined;
      runner.fusedEdge = undefined;
    }
    const previous = new Map(this.channels.map((c) => [`${c.from}->${c.to}`, c]));
    this.channels.length = 0;
    const previousFused = new Map(this.#fusedEdges);
    this.#fusedEdges.clear();
    for (const [producer, consumer] of fusedPairs(this.graph, this.options.registry, this.options.fixed ?? false)) {
      const runner = this.runners.get(producer)!;
      runner.absorbed = this.runners.get(consumer)!;
      runner.absorbed.fusedInto = runner;
    }
    for (const edge of this.graph.edges) {
      const from = this.runners.get(edge.from)!;
      const to = this.runners.get(edge.to)!;
      const key = `${edge.from}.${edge.fromPort}->${edge.to}`;
      if (to.fusedInto === from) {
        // Kept across reloads like a channel, so its totals run on; so do a channel's when the pair now fuses.
        let stats = previousFused.get(key)?.stats;
        if (!stats) {
          stats = new EdgeStats(0, true);
          const unfused = previous.get(key);
          if (unfused) stats.continueFrom(unfused.stats);
        }
        this.#fusedEdges.set(key, { edge: { from: `${edge.from}.${edge.fromPort}`, to: edge.to }, stats });
        from.fusedEdge = stats;
        continue;
      }
      let channel = previous.get(key);
      const options = this.channelOptions(to.node, channelPacing(to));
      if (channel) {
        channel.options = options;
        channel.stats.capacity = options.capacity;
      } else {
        channel = new Channel(`${edge.from}.${edge.fromPort}`, edge.to, options);
        // A pair that no longer runs fused: the edge's totals run on in its channel.
        const fused = previousFused.get(key);
        if (fused) channel.stats.continueFrom(fused.stats);
      }
      this.channels.push(channel);
      const list = from.routes.get(edge.fromPort) ?? [];
      list.push(channel);
      from.routes.set(edge.fromPort, list);
      if (!to.input.channels.includes(channel)) to.input.add(channel);
    }
    // Channels whose edge is gone leave their consumer's input; what waits in them is handed on.
    const stale: Channel[] = [];
    for (const runner of this.runners.values()) {
      for (const channel of [...runner.input.channels]) {
        if (this.channels.includes(channel)) continue;
        // A removed producer's last records still reach the node they were sent to.
        if (!this.runners.has(nodeOfPort(channel.from)) && !channel.idle) continue;
        runner.input.remove(channel);
        stale.push(channel);
      }
    }
    const kept = new Set(previous.values());
    handOnWaiting(stale, new Set(this.channels.filter((c) => !kept.has(c))), (from) => {
      return this.runners.get(nodeOfPort(from))?.routes.get(portNameOf(from)) ?? [];
    }, this.log);
    for (const channel of this.channels) {
      channel.upstream = this.#nodesAbove(nodeOfPort(channel.from)).map((r) => r.gate);
    }
  }

  /**
   * The nodes whose gates a channel closes when full: every node above it,
   * since sources and nodes that also receive from outside (a WebSocket
   * server) both ask `ctx.ready()` before taking more in; transforms never ask.
   */
  #nodesAbove(name: string): NodeRunner[] {
    const found = new Set<NodeRunner>();
    const seen = new Set<string>();
    const visit = (current: string): void => {
      if (seen.has(current)) return;
      seen.add(current);
      const runner = this.runners.get(current);
      if (!runner) return;
      found.add(runner);
      for (const edge of this.graph.edges) if (edge.to === current) visit(edge.from);
    };
    visit(name);
    return [...found];
  }

  /** Starts a node (with its fused consumer); with `tryOnly`, a `create` that throws is returned instead of handled. */
  #startRunner(runner: NodeRunner, tryOnly = false): unknown {
    const consumer = runner.absorbed;
    let create: Parameters<NodeRunner['start']>[0];
    if (consumer) {
      const fused = runner.definition.fuse![consumer.node.op];
      consumer.stats.starts += 1;
      consumer.stats.state = 'running';
      create = (ctx) => fused(ctx, consumer.context());
    }
    this.#onFinished(runner);
    if (tryOnly) return runner.tryStart(create);
    runner.start(create);
    return undefined;
  }

  /** The state of every running node that saves one, for a later run. */
  collectSnapshots(): Map<string, unknown> {
    return new Map(this.snapshots);
  }

  /** When a node finishes, its consumers' channels learn their producer is done. */
  #onFinished(runner: NodeRunner): void {
    runner.finished.then(() => {
      const owners = runner.absorbed ? [runner, runner.absorbed] : [runner];
      if (runner.lastSnapshot !== undefined) this.snapshots.set(runner.name, runner.lastSnapshot);
      // A node being replaced hands its channels to its successor: its consumers go on.
      if (this.#retiring.has(runner)) return;
      for (const owner of owners) {
        if (owner !== runner) owner.stats.state = 'stopped';
        for (const channels of owner.routes.values()) {
          for (const channel of channels) {
            const target = this.runners.get(channel.to);
            if (target) void target.input.producerFinished(channel);
          }
        }
      }
      this.#checkDone();
    });
  }

  #checkDone(): void {
    if (this.#fatal || this.#reloading) return;
    if (![...this.runners.values()].every((r) => r.fusedInto || r.stats.state === 'stopped' || r.stats.state === 'failed')) return;
    if (this.#stopError) this.#rejectDone(this.#stopError);
    else this.#resolveDone();
  }

  /** Applies a new checked graph as a transaction (see `reloadGraph`): `applied`, `rejected` or `rolled_back`. */
  reload(next: Graph, options: { deadlineMs?: number } = {}): Promise<ReloadResult> {
    tuneHeapFor(next);
    return reloadGraph(
      {
        engine: this,
        retiring: this.#retiring,
        setReloading: (reloading) => {
          this.#reloading = reloading;
        },
        addRunner: (node) => this.#addRunner(node),
        rewire: () => this.#rewire(),
        tryStart: (runner) => this.#startRunner(runner, true),
      },
      next,
      options,
    );
  }
}
