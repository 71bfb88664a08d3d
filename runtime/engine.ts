/**
 * Executing a checked graph on one host: a `NodeRunner` per node, a bounded
 * `Channel` per edge, sources gated by the channels below them, and
 * completion flowing from sources to sinks. `reload` applies a diff.
 */
import type { Graph, GraphNode } from '../graph/model.ts';
import type { OperatorDefinition, Logger, StopReason } from './types.ts';
import { Channel, type ChannelOptions } from './channel.ts';
import { realClock, type Clock } from './clock.ts';
import { NodeRunner } from './node-runner.ts';
import { handOnWaiting } from './reload-edges.ts';
import { fusedPairs } from './fusion.ts';
import { silentLogger } from './log.ts';
import { reasonOf } from './failure.ts';
import { diffGraphs, isEmptyDiff, type GraphDiff } from '../graph/diff.ts';
import { EdgeStats, type NodeStats } from './stats.ts';
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
  /** The counters of edges fused away (no channel), by `from.port->to`. */
  readonly #fusedEdges = new Map<string, EdgeStats>();
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
    for (const [key, stats] of this.#fusedEdges) {
      const arrow = key.indexOf('->');
      edges.push([{ from: key.slice(0, arrow), to: key.slice(arrow + 2) }, stats]);
    }
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
        // Kept across reloads like a channel, so its totals run on.
        const stats = previousFused.get(key) ?? new EdgeStats(0, true);
        this.#fusedEdges.set(key, stats);
        from.fusedEdge = stats;
        continue;
      }
      let channel = previous.get(key);
      const options = this.channelOptions(to.node, channelPacing(to));
      if (channel) {
        channel.options = options;
        channel.stats.capacity = options.capacity;
      } else channel = new Channel(`${edge.from}.${edge.fromPort}`, edge.to, options);
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
        if (!this.runners.has(channel.from.slice(0, channel.from.lastIndexOf('.'))) && !channel.idle) continue;
        runner.input.remove(channel);
        stale.push(channel);
      }
    }
    const kept = new Set(previous.values());
    handOnWaiting(stale, new Set(this.channels.filter((c) => !kept.has(c))), (from) => {
      const dot = from.lastIndexOf('.');
      return this.runners.get(from.slice(0, dot))?.routes.get(from.slice(dot + 1)) ?? [];
    }, this.log);
    for (const channel of this.channels) {
      const fromNode = channel.from.slice(0, channel.from.lastIndexOf('.'));
      channel.upstream = this.#nodesAbove(fromNode).map((r) => r.gate);
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

  /**
   * Applies a new checked graph as a transaction: unchanged nodes keep
   * running with their state and connections; changed nodes drain (keeping
   * what waits in their channels) and are replaced, carrying their state when
   * the operator is the same; removed nodes drain and stop; new nodes start.
   * When a new node cannot start (its operator is unknown, or its `create`
   * throws), the old nodes are put back with their state: `rolled_back`.
   */
  async reload(next: Graph, options: { deadlineMs?: number } = {}): Promise<ReloadResult> {
    const diff = diffGraphs(this.graph, next);
    if (isEmptyDiff(diff)) {
      this.graph = next;
      return { status: 'applied', diff };
    }
    if (this.options.fixed) return { status: 'rejected', cause: 'this engine runs a fixed graph (started without reloads); it cannot be changed', diff };
    // What can be refused before touching the running graph is refused: nothing changes.
    for (const name of [...diff.replaced, ...diff.added]) {
      const op = next.nodes.get(name)!.op;
      if (!this.options.registry.has(op)) return { status: 'rejected', cause: `operator \`${op}\` of node \`${name}\` is not in the registry`, diff };
    }
    const deadline = options.deadlineMs ?? 30_000;
    const previous = this.graph;
    const { failed, warnings } = await this.#apply(next, diff, deadline);
    if (failed.length === 0) return warnings.length > 0 ? { status: 'applied', diff, warnings } : { status: 'applied', diff };
    this.log.error({ failed }, 'reload: a new node could not start; putting the old nodes back');
    const { failed: back } = await this.#apply(previous, diffGraphs(next, previous), deadline);
    const cause = failed.join('; ') + (back.length > 0 ? `; putting the old nodes back failed too: ${back.join('; ')}` : '');
    return { status: 'rolled_back', cause, diff };
  }

  /** Moves the running graph to `next` along `diff`; returns why the nodes that could not start did not, and what it warns of. */
  async #apply(next: Graph, diff: GraphDiff, deadline: number): Promise<{ failed: string[]; warnings: string[] }> {
    this.#reloading = true;
    const leaving = new Set([...diff.replaced, ...diff.removed]);
    const replace = (name: string): void => {
      if (leaving.has(name)) return;
      leaving.add(name);
      diff.kept.splice(diff.kept.indexOf(name), 1);
      diff.replaced.push(name);
    };
    // A fused pair is one running node: replacing either replaces both.
    for (const name of [...leaving]) {
      const runner = this.runners.get(name)!;
      const partner = runner.fusedInto ?? runner.absorbed;
      if (partner) replace(partner.name);
    }
    const reshape = this.#fusionChanges(next);
    for (const runner of reshape.nodes) replace(runner.name);
    const warnings = reshape.pairs.map(
      ([producer, consumer]) =>
        `\`${producer}\` and \`${consumer}\` ${this.runners.get(producer)?.absorbed ? 'no longer run fused' : 'now run fused'}: both were replaced, and the open windows of \`${producer}\` were emitted early (their results split at this reload)`,
    );
    for (const warning of warnings) this.log.warn({ reload: 'fusion' }, `reload: ${warning}`);
    // A window whose fusion changes flushes its open panes first: the new shape cannot take the old
    // one's state (records cannot be recovered from running aggregates). Its panes reach the old
    // consumer, which takes all of them in before it stops, since the edge between them goes.
    await Promise.all(reshape.producers.map((runner) => this.#flushAndRetire(runner, deadline)));
    await Promise.all(reshape.leftChannels.map((channel) => this.#within(channel.finish(), deadline)));
    const stopping: Promise<void>[] = [];
    for (const name of leaving) {
      const runner = this.runners.get(name)!;
      if (reshape.producers.includes(runner)) continue;
      const reason: StopReason = diff.removed.includes(name) ? 'removed' : 'replaced';
      if (reason === 'replaced') this.#retiring.add(runner);
      if (!runner.fusedInto) stopping.push(runner.stop(reason, deadline));
    }
    await Promise.all(stopping);
    this.graph = next;
    const successors = new Map<string, NodeRunner>();
    for (const name of leaving) {
      const old = this.runners.get(name)!;
      this.#retiring.delete(old);
      this.runners.delete(name);
      // A sink forced at the deadline may hold batches unacknowledged (a Kafka producer
      // gathers several): back to the head of their channels, as after a sink failure, for
      // the successor to write (at least once: the forced sink may still write them, and
      // its late acknowledgement is then ignored) or for a removed node's drop to count.
      old.input.abandonInFlight();
      // A fused pair saves its state through the window, the node that ran it;
      // a node that never ran (rolled back) hands on the state it was given.
      // A node whose fusion changed starts empty: its windows were flushed, and the shape differs.
      const carried = old.fusedInto || reshape.nodes.includes(old) ? undefined : old.hasRun ? old.lastSnapshot : old.restored;
      if (next.nodes.has(name)) {
        const node = next.nodes.get(name)!;
        const runner = this.#addRunner(node);
        // State carries over when its shape is the same: the same operator.
        runner.restored = node.op === old.node.op ? carried : undefined;
        for (const channel of old.input.channels) runner.input.add(channel);
        runner.stats = old.stats;
        successors.set(name, runner);
      } else {
        for (const channel of old.input.channels) {
          const lost = channel.discard();
          if (lost > 0) this.log.warn({ node: name, records: lost }, 'removed node had records waiting; they were dropped');
        }
      }
    }
    for (const name of diff.added) successors.set(name, this.#addRunner(next.nodes.get(name)!));
    // Nodes kept: refresh their view of the graph (positions may have moved).
    for (const name of diff.kept) this.runners.get(name)!.node = next.nodes.get(name)!;
    this.#rewire();
    const failed: string[] = [];
    for (const runner of [...successors.values()].reverse()) {
      if (runner.fusedInto) continue;
      const error = this.#startRunner(runner, true);
      if (error !== undefined) failed.push(`${runner.label}: ${reasonOf(error)}`);
    }
    for (const channel of this.channels) channel.resume();
    this.#reloading = false;
    return { failed, warnings };
  }

  /**
   * What a move to `next` changes in fusion: the pairs fused before and not
   * after, or the reverse (producer and consumer names); the running nodes of
   * those pairs (`nodes`), the windows among them that flush (`producers`),
   * and the channels from a lone window to a consumer that will absorb it,
   * which the old consumer must empty before it stops (`leftChannels`).
   */
  #fusionChanges(next: Graph): { pairs: [string, string][]; nodes: NodeRunner[]; producers: NodeRunner[]; leftChannels: Channel[] } {
    const after = fusedPairs(next, this.options.registry, this.options.fixed ?? false);
    const pairs: [string, string][] = [];
    for (const runner of this.runners.values()) {
      if (runner.absorbed && after.get(runner.name) !== runner.absorbed.name) pairs.push([runner.name, runner.absorbed.name]);
    }
    for (const [producer, consumer] of after) {
      const from = this.runners.get(producer);
      const to = this.runners.get(consumer);
      if ((from && from.absorbed?.name !== consumer) || (to && to.fusedInto?.name !== producer)) pairs.push([producer, consumer]);
    }
    const nodes = new Set<NodeRunner>();
    const producers = new Set<NodeRunner>();
    const leftChannels: Channel[] = [];
    for (const [producer, consumer] of pairs) {
      const from = this.runners.get(producer);
      const to = this.runners.get(consumer);
      if (from) nodes.add(from);
      if (to) nodes.add(to);
      if (from && !from.fusedInto) producers.add(from);
      if (from && to && !from.absorbed) leftChannels.push(...to.input.channels.filter((c) => c.from === `${producer}.${from.defaultPort}`));
    }
    return { pairs, nodes: [...nodes], producers: [...producers], leftChannels };
  }

  /** Stops a node being replaced so that it emits what it holds (a window flushes its open panes), and its consumers go on. */
  async #flushAndRetire(runner: NodeRunner, deadline: number): Promise<void> {
    this.#retiring.add(runner);
    // `removed` is the stop that flushes; the engine still hands the node's channels to its successor.
    await runner.stop('removed', deadline);
  }

  /** Waits for `promise`, or for `deadline` milliseconds, whichever comes first. */
  async #within(promise: Promise<void>, deadline: number): Promise<void> {
    let cancel: (() => void) | undefined;
    await Promise.race([promise, new Promise<void>((resolve) => (cancel = this.clock.schedule(deadline, resolve)))]);
    cancel?.();
  }
}

/**
 * What a reload did: `applied`; `rejected` (nothing changed, with why); or
 * `rolled_back` (a new node could not start and the old ones run again, with
 * the cause). The diff is the one that was attempted.
 */
export type ReloadResult =
  | {
      status: 'applied';
      diff: GraphDiff;
      /** What the user should know of how it was applied: a pair whose fusion changed had its open windows emitted early. */
      warnings?: string[];
    }
  | { status: 'rejected'; cause: string; diff: GraphDiff }
  | { status: 'rolled_back'; cause: string; diff: GraphDiff };
