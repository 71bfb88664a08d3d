/**
 * The live feed of a running graph: samples the engine's counters once a
 * second (never on the records' path), turns them into protocol events,
 * keeps the last of each for late joiners, and keeps the reload history.
 */
import type { Diagnostic } from '../../graph/diagnostics.ts';
import type { Graph } from '../../graph/model.ts';
import type { Engine } from '../engine.ts';
import type { NodeStats } from '../stats.ts';
import { nodeOfPort } from '../types.ts';
import { encodedSize } from './record-size.ts';
import { planOf, protocolVersion, type PlanOfOptions, type EventBase, type LiveEvent, type NodeState, type ReloadRecord } from './protocol.ts';

type Of<T extends LiveEvent['type']> = Extract<LiveEvent, { type: T }>;

/** Counters read at the previous sample, to turn totals into rates. */
type NodeTotals = {
  recordsIn: number;
  recordsOut: number;
  bytesRead: number;
  bytesWritten: number;
};

/** An edge's counters at the previous sample. */
type EdgeTotals = {
  records: number;
  delivered: number;
  bytesIn: number;
  bytesOut: number;
};

/**
 * The totals a rate counts from: those read at the last sample, or zeros
 * when one went back, as the counters are then new ones: a worker runs each
 * version of its share in a new engine. A reload never looks like this: it
 * keeps a node's counters, and an edge's even when the edge changes between
 * a channel and a fused one (the engine carries them).
 */
function baseline<T extends Record<string, number>>(now: T, last: T | undefined): T {
  if (last === undefined) return now;
  for (const key in now) if (now[key] < last[key]) return Object.fromEntries(Object.keys(now).map((k) => [k, 0])) as T;
  return last;
}

/** The bytes a second of a node's edges on one side (in or out), summed over a sample. */
interface EdgeSide {
  perSecond: number;
  /** Some of it is an estimate (an edge of events). */
  estimated: boolean;
  /** One of the edges is fused away: its bytes are not measured, and not in `perSecond`. */
  fused: boolean;
}

/** Adds an edge's bytes a second (`perSecond`, the edge's end on this side) to a node's side. */
function addEdge(side: EdgeSide, perSecond: number, edge: { bytes_estimated: boolean; fused?: true }): void {
  side.perSecond += perSecond;
  side.estimated ||= edge.bytes_estimated;
  side.fused ||= edge.fused === true;
}

/** Records of a sampled batch whose size is measured: a few, spread over it. */
const sampledRecords = 4;

/** The mean encoded size of up to `sampledRecords` items spread over a batch. */
function meanEncodedSize(items: readonly unknown[]): number {
  const step = Math.max(1, Math.floor(items.length / sampledRecords));
  let total = 0;
  let counted = 0;
  for (let i = 0; i < items.length && counted < sampledRecords; i += step) {
    total += encodedSize(items[i]);
    counted += 1;
  }
  return counted === 0 ? 0 : total / counted;
}

export interface LiveFeedOptions {
  /** Milliseconds between samples. Default 1000. */
  intervalMs?: number;
  /** The time, in ms since the epoch. */
  now?: () => number;
  /**
   * Whether the feed may empty the nodes' pending processing times after
   * reading them: true when no Prometheus endpoint folds them instead.
   */
  ownsTimings?: boolean;
  /** Reloads kept in the history. Default 50. */
  historySize?: number;
  /**
   * What the plan is made with beyond the engine's graph: a worker shows
   * the whole deployed graph (`graph`) with its plan and its own host
   * (`here`); `streams plan --ui` shows a plan with nothing running.
   */
  plan?: () => PlanOfOptions & { graph?: Graph };
}

/** What the feed reads of an engine: its graph and its counters. A worker's engine changes with its share; `streams plan --ui` has none. */
export type FeedEngine = Pick<Engine, 'graph' | 'nodeStats' | 'edgeStats'>;

/** Maps the engine's node states to the protocol's. */
function stateOf(stats: NodeStats): NodeState {
  return stats.state === 'backoff' ? 'restarting' : stats.state;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The feed of one engine; `start` begins sampling, `stop` ends it. */
export class LiveFeed {
  readonly engine: FeedEngine;
  readonly reloads: ReloadRecord[] = [];
  #plan: Of<'graph.plan'>;
  readonly #states = new Map<string, Of<'node.state'>>();
  readonly #nodeStats = new Map<string, Of<'node.stats'>>();
  readonly #edgeStats = new Map<string, Of<'edge.stats'>>();
  readonly #totals = new Map<string, NodeTotals>();
  readonly #edgeTotals = new Map<string, EdgeTotals>();
  /** The mean JSON size of an event edge's records, from its last sample. */
  readonly #recordBytes = new Map<string, number>();
  readonly #diagnostics: Of<'diagnostic'>[] = [];
  readonly #listeners = new Set<(event: LiveEvent) => void>();
  readonly #options: Required<Omit<LiveFeedOptions, 'plan'>>;
  readonly #planWith: LiveFeedOptions['plan'];
  #lastSample: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(engine: FeedEngine, options: LiveFeedOptions = {}) {
    this.engine = engine;
    const { plan, ...rest } = options;
    this.#options = { intervalMs: 1000, now: Date.now, ownsTimings: false, historySize: 50, ...rest };
    this.#planWith = plan;
    this.#lastSample = this.#options.now();
    this.#plan = this.#makePlan(this.#lastSample);
  }

  #makePlan(time: number): Of<'graph.plan'> {
    const { graph, ...rest } = this.#planWith?.() ?? {};
    return planOf(graph ?? this.engine.graph, time, rest);
  }

  #base(): EventBase {
    return { v: protocolVersion, graph: this.#plan?.graph ?? this.engine.graph.name, time: this.#options.now() };
  }

  /** Makes the plan again and sends it: a worker calls it when it runs a new version. */
  refreshPlan(): void {
    this.#plan = this.#makePlan(this.#options.now());
    this.#emit(this.#plan);
  }

  /** The last plan sent. */
  get plan(): Of<'graph.plan'> {
    return this.#plan;
  }

  /** The last numbers of every node and edge: what `GET /api/stats` answers. */
  stats(): { time: number; nodes: Of<'node.stats'>[]; edges: Of<'edge.stats'>[]; states: Of<'node.state'>[] } {
    return { time: this.#lastSample, nodes: [...this.#nodeStats.values()], edges: [...this.#edgeStats.values()], states: [...this.#states.values()] };
  }

  /** What a client that joins now is sent first: the plan and the last state of everything. */
  snapshot(): LiveEvent[] {
    const events: LiveEvent[] = [{ ...this.#base(), type: 'hello', protocol: protocolVersion }, this.#plan];
    events.push(...this.#states.values(), ...this.#nodeStats.values(), ...this.#edgeStats.values(), ...this.#diagnostics);
    const last = this.reloads.at(-1);
    if (last) events.push(this.#reloadEvent(last));
    return events;
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe. */
  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: LiveEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sample(), this.#options.intervalMs);
    // Sampling never keeps a finished run alive.
    this.#timer.unref();
    this.sample();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    // No sampler any more: the channels stop keeping a batch for it, and the one kept is let go.
    for (const [, stats] of this.engine.edgeStats()) {
      stats.wantSample = false;
      stats.sampled = undefined;
    }
  }

  /** Reads every counter once and sends what changed: states when they change, numbers every time. */
  sample(): void {
    const now = this.#options.now();
    const seconds = Math.max((now - this.#lastSample) / 1000, 0.001);
    this.#lastSample = now;
    const base = this.#base();
    // Edges first: a node's bytes, when it counts none of its own, are those of its edges.
    const edgeEvents = this.#sampleEdges(base, seconds);
    const edgeBytes = new Map<string, { in: EdgeSide; out: EdgeSide }>();
    const side = (): EdgeSide => ({ perSecond: 0, estimated: false, fused: false });
    const bytesOf = (node: string) => edgeBytes.get(node) ?? edgeBytes.set(node, { in: side(), out: side() }).get(node)!;
    for (const edge of edgeEvents) {
      addEdge(bytesOf(edge.to).in, edge.bytes_out_per_s, edge);
      addEdge(bytesOf(edge.from).out, edge.bytes_in_per_s, edge);
    }
    const seen = new Set<string>();
    for (const [node, stats] of this.engine.nodeStats()) {
      seen.add(node);
      const state = stateOf(stats);
      const previous = this.#states.get(node);
      const error = state === 'restarting' || state === 'failed' ? stats.lastError : undefined;
      if (!previous || previous.state !== state || previous.error !== error) {
        const event: Of<'node.state'> = { ...base, type: 'node.state', node, state, ...(error ? { error } : {}) };
        this.#states.set(node, event);
        this.#emit(event);
      }
      const totals = { recordsIn: stats.recordsIn, recordsOut: stats.recordsOut, bytesRead: stats.bytesRead, bytesWritten: stats.bytesWritten };
      const before = baseline(totals, this.#totals.get(node));
      this.#totals.set(node, totals);
      // A node that counts its own bytes (a source's reads, a sink's writes) reports those; else the bytes of its edges.
      const ownIn = stats.bytesRead > 0;
      const ownOut = stats.bytesWritten > 0;
      const edgesIn = ownIn ? undefined : edgeBytes.get(node)?.in;
      const edgesOut = ownOut ? undefined : edgeBytes.get(node)?.out;
      const event: Of<'node.stats'> = {
        ...base,
        type: 'node.stats',
        node,
        records_in_per_s: (stats.recordsIn - before.recordsIn) / seconds,
        records_out_per_s: (stats.recordsOut - before.recordsOut) / seconds,
        bytes_in_per_s: ownIn ? (stats.bytesRead - before.bytesRead) / seconds : (edgesIn?.perSecond ?? 0),
        bytes_out_per_s: ownOut ? (stats.bytesWritten - before.bytesWritten) / seconds : (edgesOut?.perSecond ?? 0),
        bytes_estimated: (edgesIn?.estimated ?? false) || (edgesOut?.estimated ?? false),
        // A side across an edge fused away has bytes nobody measured: the page shows `fused`, not 0 B/s.
        ...(edgesIn?.fused && { bytes_in_fused: true as const }),
        ...(edgesOut?.fused && { bytes_out_fused: true as const }),
        records_in: stats.recordsIn,
        records_out: stats.recordsOut,
        errors: stats.errors,
        dead_letters: stats.deadLetters,
        drops: Object.fromEntries(stats.dropped),
        restarts: stats.restarts,
        ...this.#timings(stats),
      };
      this.#nodeStats.set(node, event);
      this.#emit(event);
    }
    for (const gone of [...this.#states.keys()]) {
      if (seen.has(gone)) continue;
      this.#states.delete(gone);
      this.#nodeStats.delete(gone);
      this.#totals.delete(gone);
    }
    for (const event of edgeEvents) this.#emit(event);
  }

  /**
   * The numbers of every edge over the last `seconds`. Bytes of Bytes and
   * Media items are counted by the channel; an edge of events has its bytes
   * estimated: its record rate times the mean JSON size of a few records of
   * one batch, which the channel keeps when asked, once a sample. An edge
   * fused away has its records counted as the fused node emits, and no bytes.
   */
  #sampleEdges(base: EventBase, seconds: number): Of<'edge.stats'>[] {
    const events: Of<'edge.stats'>[] = [];
    const edges = new Set<string>();
    for (const [{ from, to }, stats] of this.engine.edgeStats()) {
      // `from` is `node.port`.
      const id = `${from}->${to}`;
      edges.add(id);
      const now = { records: stats.records, delivered: stats.delivered, bytesIn: stats.bytesIn, bytesOut: stats.bytesOut };
      const before = baseline(now, this.#edgeTotals.get(id));
      this.#edgeTotals.set(id, now);
      const recordsIn = (stats.records - before.records) / seconds;
      const recordsOut = (stats.delivered - before.delivered) / seconds;
      // Counted bytes, once seen on an edge, are what it reports: its items are Bytes or Media.
      // A fused edge has no items to size: it reports no bytes, and says why (`fused`).
      const estimated = !stats.fused && stats.bytesIn === 0;
      if (estimated && stats.sampled) this.#recordBytes.set(id, meanEncodedSize(stats.sampled));
      stats.sampled = undefined;
      stats.wantSample = estimated;
      const perRecord = this.#recordBytes.get(id) ?? 0;
      events.push({
        ...base,
        type: 'edge.stats',
        edge: id,
        from: nodeOfPort(from),
        to,
        records_per_s: recordsIn,
        records_in_per_s: recordsIn,
        records_out_per_s: recordsOut,
        bytes_in_per_s: estimated ? recordsIn * perRecord : (stats.bytesIn - before.bytesIn) / seconds,
        bytes_out_per_s: estimated ? recordsOut * perRecord : (stats.bytesOut - before.bytesOut) / seconds,
        bytes_estimated: estimated,
        records: stats.records,
        depth: stats.depth,
        capacity: stats.capacity,
        queued_bytes: stats.bytes,
        drops: stats.drops,
        ...(stats.fused && { fused: true as const }),
      });
    }
    for (const gone of [...this.#edgeStats.keys()]) {
      if (edges.has(gone)) continue;
      this.#edgeStats.delete(gone);
      this.#edgeTotals.delete(gone);
      this.#recordBytes.delete(gone);
    }
    for (const event of events) this.#edgeStats.set(event.edge, event);
    return events;
  }

  /** p50/p99 of the batches timed since the last sample, when the feed may take them. */
  #timings(stats: NodeStats): { p50_ms?: number; p99_ms?: number } {
    if (!this.#options.ownsTimings || stats.pendingTimings.length === 0) return {};
    const sorted = stats.pendingTimings.slice().sort((a, b) => a - b);
    stats.pendingTimings.length = 0;
    return { p50_ms: quantile(sorted, 0.5) * 1000, p99_ms: quantile(sorted, 0.99) * 1000 };
  }

  #reloadEvent(record: ReloadRecord): LiveEvent {
    return record.status === 'applied' ? { ...this.#base(), type: 'reload.applied', reload: record } : { ...this.#base(), type: 'reload.rejected', reload: record };
  }

  /** Records a reload (applied or not), sends it, and after an applied one sends the new plan and samples at once. */
  recordReload(record: ReloadRecord): void {
    this.reloads.push(record);
    if (this.reloads.length > this.#options.historySize) this.reloads.shift();
    // Even an empty diff may move nodes' source lines: the plan is sent again.
    if (record.status === 'applied') this.refreshPlan();
    this.#emit(this.#reloadEvent(record));
    if (record.status !== 'applied') for (const diagnostic of record.diagnostics) this.diagnostic(diagnostic);
    this.sample();
  }

  /** Sends a diagnostic and keeps the last few for late joiners. */
  diagnostic(diagnostic: Diagnostic): void {
    const event: Of<'diagnostic'> = { ...this.#base(), type: 'diagnostic', diagnostic };
    this.#diagnostics.push(event);
    if (this.#diagnostics.length > 20) this.#diagnostics.shift();
    this.#emit(event);
  }
}
