/**
 * Hot reload of a running engine as a transaction: diff the running graph
 * against the new one, refuse what can be refused before touching anything,
 * replace what changed (carrying state and waiting records), start what is
 * new, and put the old nodes back when a new one cannot start. The engine
 * calls `reloadGraph` from `Engine.reload`, handing it a `ReloadHost`.
 */
import type { Graph, GraphNode } from '../graph/model.ts';
import type { Logger, OperatorDefinition, StopReason } from './types.ts';
import type { Channel } from './channel.ts';
import type { Clock } from './clock.ts';
import type { NodeRunner } from './node-runner.ts';
import { fusedPairs } from './fusion.ts';
import { reasonOf } from './failure.ts';
import { diffGraphs, isEmptyDiff, type GraphDiff } from '../graph/diff.ts';

/**
 * What a reload did: `applied`; `rejected` (nothing changed, with why); or
 * `rolled_back` (a new node could not start and the old ones run again, with
 * the cause). The diff is the one that was attempted.
 */
export type ReloadResult =
  | {
      status: 'applied';
      diff: GraphDiff;
      /**
       * What the user should know of how it was applied: a pair whose fusion
       * changed had its open windows emitted early; a replaced node's own
       * note (`OperatorDefinition.reloadNote`: a window under new settings).
       */
      warnings?: string[];
    }
  | { status: 'rejected'; cause: string; diff: GraphDiff }
  | { status: 'rolled_back'; cause: string; diff: GraphDiff };

/**
 * What a reload needs of the engine it changes: its public side (`engine`,
 * whose `graph` the reload moves to the new one) and the few private parts
 * the engine lends for the reload's length. Internal to the runtime: operators
 * never see it.
 */
export interface ReloadHost {
  readonly engine: {
    graph: Graph;
    readonly runners: Map<string, NodeRunner>;
    readonly channels: readonly Channel[];
    readonly options: { readonly registry: ReadonlyMap<string, OperatorDefinition>; readonly fixed?: boolean };
    readonly log: Logger;
    readonly clock: Clock;
  };
  /** Nodes stopping for a replacement: their end is not their consumers' end. */
  readonly retiring: Set<NodeRunner>;
  /** While a reload runs, the engine does not take its stopped nodes for the end of the graph. */
  setReloading(reloading: boolean): void;
  /** Makes a runner for `node` and registers it under its name. */
  addRunner(node: GraphNode): NodeRunner;
  /** Builds the channels and fusions of the engine's current graph, keeping what waits in existing channels. */
  rewire(): void;
  /** Starts a node (with its fused consumer); returns what its `create` threw, if it did. */
  tryStart(runner: NodeRunner): unknown;
}

/**
 * Applies a new checked graph as a transaction: unchanged nodes keep
 * running with their state and connections; changed nodes drain (keeping
 * what waits in their channels) and are replaced, carrying their state when
 * the operator is the same; removed nodes drain and stop; new nodes start.
 * When a new node cannot start (its operator is unknown, or its `create`
 * throws), the old nodes are put back with their state: `rolled_back`.
 */
export async function reloadGraph(host: ReloadHost, next: Graph, options: { deadlineMs?: number } = {}): Promise<ReloadResult> {
  const { engine } = host;
  const diff = diffGraphs(engine.graph, next);
  if (isEmptyDiff(diff)) {
    engine.graph = next;
    return { status: 'applied', diff };
  }
  if (engine.options.fixed) return { status: 'rejected', cause: 'this engine runs a fixed graph (started without reloads); it cannot be changed', diff };
  // What can be refused before touching the running graph is refused: nothing changes.
  for (const name of [...diff.replaced, ...diff.added]) {
    const op = next.nodes.get(name)!.op;
    if (!engine.options.registry.has(op)) return { status: 'rejected', cause: `operator \`${op}\` of node \`${name}\` is not in the registry`, diff };
  }
  const deadline = options.deadlineMs ?? 30_000;
  const previous = engine.graph;
  const { failed, warnings } = await apply(host, next, diff, deadline);
  if (failed.length === 0) return warnings.length > 0 ? { status: 'applied', diff, warnings } : { status: 'applied', diff };
  engine.log.error({ failed }, 'reload: a new node could not start; putting the old nodes back');
  const { failed: back } = await apply(host, previous, diffGraphs(next, previous), deadline);
  const cause = failed.join('; ') + (back.length > 0 ? `; putting the old nodes back failed too: ${back.join('; ')}` : '');
  return { status: 'rolled_back', cause, diff };
}

/** Moves the running graph to `next` along `diff`; returns why the nodes that could not start did not, and what it warns of. */
async function apply(host: ReloadHost, next: Graph, diff: GraphDiff, deadline: number): Promise<{ failed: string[]; warnings: string[] }> {
  const { engine } = host;
  host.setReloading(true);
  const leaving = new Set([...diff.replaced, ...diff.removed]);
  const edited = new Set(leaving);
  const replace = (name: string): void => {
    if (leaving.has(name)) return;
    leaving.add(name);
    diff.kept.splice(diff.kept.indexOf(name), 1);
    diff.replaced.push(name);
  };
  // A fused pair is one running node: replacing either replaces both.
  for (const name of [...leaving]) {
    const runner = engine.runners.get(name)!;
    const partner = runner.fusedInto ?? runner.absorbed;
    if (partner) replace(partner.name);
  }
  const reshape = fusionChanges(host, next, edited);
  for (const runner of reshape.nodes) replace(runner.name);
  const warnings = reshape.pairs.map(([producer, consumer]) => {
    const what = reshape.edited.includes(consumer)
      ? `\`${consumer}\` changed while fused into \`${producer}\``
      : `\`${producer}\` and \`${consumer}\` ${engine.runners.get(producer)?.absorbed ? 'no longer run fused' : 'now run fused'}`;
    return `${what}: both were replaced, and the open windows of \`${producer}\` were emitted early (their results split at this reload)`;
  });
  for (const warning of warnings) engine.log.warn({ reload: 'fusion' }, `reload: ${warning}`);
  // A window whose fusion changes flushes its open panes first: the new shape cannot take the old
  // one's state (records cannot be recovered from running aggregates). Its panes reach the old
  // consumer, which takes all of them in before it stops, since the edge between them goes.
  await Promise.all(reshape.producers.map((runner) => flushAndRetire(host, runner, deadline)));
  await Promise.all(reshape.leftChannels.map((channel) => within(engine.clock, channel.finish(), deadline)));
  const stopping: Promise<void>[] = [];
  for (const name of leaving) {
    const runner = engine.runners.get(name)!;
    if (reshape.producers.includes(runner)) continue;
    const reason: StopReason = diff.removed.includes(name) ? 'removed' : 'replaced';
    if (reason === 'replaced') host.retiring.add(runner);
    if (!runner.fusedInto) stopping.push(runner.stop(reason, deadline));
  }
  await Promise.all(stopping);
  engine.graph = next;
  const successors = new Map<string, NodeRunner>();
  for (const name of leaving) {
    const old = engine.runners.get(name)!;
    host.retiring.delete(old);
    engine.runners.delete(name);
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
      const runner = host.addRunner(node);
      // State carries over when its shape is the same: the same operator.
      runner.restored = node.op === old.node.op ? carried : undefined;
      // Only a node that ran saved its state under its own settings.
      const note = runner.restored !== undefined && old.hasRun ? engine.options.registry.get(node.op)?.reloadNote?.(old.node.settings, node.settings, { fused: old.absorbed !== undefined }) : undefined;
      if (note !== undefined) warnings.push(`\`${name}\` ${note}`);
      for (const channel of old.input.channels) runner.input.add(channel);
      runner.stats = old.stats;
      successors.set(name, runner);
    } else {
      for (const channel of old.input.channels) {
        const lost = channel.discard();
        if (lost > 0) engine.log.warn({ node: name, records: lost }, 'removed node had records waiting; they were dropped');
      }
    }
  }
  for (const name of diff.added) successors.set(name, host.addRunner(next.nodes.get(name)!));
  // Nodes kept: refresh their view of the graph (positions may have moved).
  for (const name of diff.kept) engine.runners.get(name)!.node = next.nodes.get(name)!;
  host.rewire();
  const failed: string[] = [];
  for (const runner of [...successors.values()].reverse()) {
    if (runner.fusedInto) continue;
    const error = host.tryStart(runner);
    if (error !== undefined) failed.push(`${runner.label}: ${reasonOf(error)}`);
  }
  for (const channel of engine.channels) channel.resume();
  host.setReloading(false);
  return { failed, warnings };
}

/**
 * What a move to `next` changes in fusion: the pairs fused before and not
 * after, or the reverse (producer and consumer names); the running nodes of
 * those pairs (`nodes`), the windows among them that flush (`producers`),
 * and the channels from a lone window to a consumer that will absorb it,
 * which the old consumer must empty before it stops (`leftChannels`).
 */
function fusionChanges(host: ReloadHost, next: Graph, edited: ReadonlySet<string>): { pairs: [string, string][]; edited: string[]; nodes: NodeRunner[]; producers: NodeRunner[]; leftChannels: Channel[] } {
  const { runners, options } = host.engine;
  const after = fusedPairs(next, options.registry, options.fixed ?? false);
  const pairs: [string, string][] = [];
  // A fused window's state is its consumer's running results: an edited consumer cannot take them.
  const editedConsumers: string[] = [];
  for (const runner of runners.values()) {
    if (runner.absorbed && after.get(runner.name) !== runner.absorbed.name) pairs.push([runner.name, runner.absorbed.name]);
    else if (runner.absorbed && edited.has(runner.absorbed.name)) {
      pairs.push([runner.name, runner.absorbed.name]);
      editedConsumers.push(runner.absorbed.name);
    }
  }
  for (const [producer, consumer] of after) {
    const from = runners.get(producer);
    const to = runners.get(consumer);
    if ((from && from.absorbed?.name !== consumer) || (to && to.fusedInto?.name !== producer)) pairs.push([producer, consumer]);
  }
  const nodes = new Set<NodeRunner>();
  const producers = new Set<NodeRunner>();
  const leftChannels: Channel[] = [];
  for (const [producer, consumer] of pairs) {
    const from = runners.get(producer);
    const to = runners.get(consumer);
    if (from) nodes.add(from);
    if (to) nodes.add(to);
    if (from && !from.fusedInto) producers.add(from);
    if (from && to && !from.absorbed) leftChannels.push(...to.input.channels.filter((c) => c.from === `${producer}.${from.defaultPort}`));
  }
  return { pairs, edited: editedConsumers, nodes: [...nodes], producers: [...producers], leftChannels };
}

/** Stops a node being replaced so that it emits what it holds (a window flushes its open panes), and its consumers go on. */
async function flushAndRetire(host: ReloadHost, runner: NodeRunner, deadline: number): Promise<void> {
  host.retiring.add(runner);
  // `removed` is the stop that flushes; the engine still hands the node's channels to its successor.
  await runner.stop('removed', deadline);
}

/** Waits for `promise`, or for `deadline` milliseconds on `clock`, whichever comes first. */
async function within(clock: Clock, promise: Promise<void>, deadline: number): Promise<void> {
  let cancel: (() => void) | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (cancel = clock.schedule(deadline, resolve)))]);
  cancel?.();
}
