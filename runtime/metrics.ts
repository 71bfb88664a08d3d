/**
 * Prometheus metrics for every node and edge, under fixed names, read from
 * the live counters at scrape time so the hot path only adds numbers, and
 * the standard `process_*` and `nodejs_*` metrics of the Node process.
 * Every series exists from the first scrape, at 0, so that `rate()` and
 * alerts see a counter's first increment.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { renderNodeMetrics } from './node-metrics.ts';
import type { EdgeStats, NodeStats } from './stats.ts';

/** What the metrics read: the current nodes and edges of the running graph. */
export interface StatsSource {
  pipeline: string;
  nodes(): Iterable<[string, NodeStats]>;
  edges(): Iterable<[{ from: string; to: string }, EdgeStats]>;
}

export const metricNames = {
  recordsIn: 'streams_node_records_in_total',
  recordsOut: 'streams_node_records_out_total',
  bytes: 'streams_node_bytes_total',
  errors: 'streams_node_errors_total',
  deadLetters: 'streams_node_dlq_total',
  deadLettersLost: 'streams_node_dead_letters_lost_total',
  dropped: 'streams_node_dropped_total',
  starts: 'streams_node_starts_total',
  restarts: 'streams_node_restarts_total',
  processing: 'streams_node_processing_seconds',
  queueDepth: 'streams_edge_queue_depth',
  queueCapacity: 'streams_edge_queue_capacity',
  edgeDrops: 'streams_edge_dropped_total',
} as const;

/** Builds a registry whose metrics are filled from `source` on each scrape. */
export function createMetricsRegistry(source: StatsSource): Registry {
  const registry = new Registry();
  const nodeCounter = (name: string, help: string, read: (s: NodeStats) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['pipeline', 'node'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [node, stats] of source.nodes()) this.inc({ pipeline: source.pipeline, node }, read(stats));
      },
    });
  };
  /** A counter per node and value of `label`: `read` gives each value's count. */
  const labelledNodeCounter = (name: string, help: string, label: string, read: (s: NodeStats) => Iterable<[string, number]>): void => {
    new Counter({
      name,
      help,
      labelNames: ['pipeline', 'node', label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [node, stats] of source.nodes()) {
          for (const [value, count] of read(stats)) this.inc({ pipeline: source.pipeline, node, [label]: value }, count);
        }
      },
    });
  };
  nodeCounter(metricNames.recordsIn, 'Records received by the node.', (s) => s.recordsIn);
  nodeCounter(metricNames.recordsOut, 'Records emitted by the node.', (s) => s.recordsOut);
  labelledNodeCounter(metricNames.bytes, 'Bytes the node read (direction="read") or wrote (direction="written") at its boundary.', 'direction', (s) => [
    ['read', s.bytesRead],
    ['written', s.bytesWritten],
  ]);
  nodeCounter(metricNames.errors, 'Records that failed in the node, and node failures.', (s) => s.errors);
  nodeCounter(metricNames.deadLetters, 'Records sent to the node\'s dead-letter port.', (s) => s.deadLetters);
  nodeCounter(metricNames.deadLettersLost, 'Records that failed with nothing connected to the node\'s `dlq` port: lost, and reported at exit.', (s) => s.deadLettersLost);
  nodeCounter(metricNames.starts, 'Times the node was started (first start, restarts and reloads).', (s) => s.starts);
  nodeCounter(metricNames.restarts, 'Times the node was restarted after a failure.', (s) => s.restarts);
  // `error` (a failed record under `on_error: drop`) can happen in any node;
  // the other reasons are the operator's own and appear on first use.
  labelledNodeCounter(metricNames.dropped, 'Records the node dropped on purpose, by reason.', 'reason', (s) => (s.dropped.has('error') ? s.dropped : [['error', 0], ...s.dropped]));
  const timed = new Set<string>();
  new Histogram({
    name: metricNames.processing,
    help: 'Time the node spent on one batch, in seconds.',
    labelNames: ['pipeline', 'node'],
    buckets: [0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
    collect() {
      for (const [node, stats] of source.nodes()) {
        const labels = { pipeline: source.pipeline, node };
        // `zero` would reset a series that exists, so only for new nodes.
        if (!timed.has(node)) {
          timed.add(node);
          this.zero(labels);
        }
        const child = this.labels(labels);
        for (const seconds of stats.pendingTimings) child.observe(seconds);
        stats.pendingTimings.length = 0;
      }
    },
  });
  // A fused edge has no channel: no queue to show, no capacity to fill (a capacity of 0 would read as a full queue).
  const queues = () => [...source.edges()].filter(([, stats]) => !stats.fused);
  const edgeGauge = (name: string, help: string, read: (s: EdgeStats) => number, counter = false): void => {
    const config = {
      name,
      help,
      labelNames: ['pipeline', 'from', 'to'],
      registers: [registry],
    };
    if (counter) {
      new Counter({
        ...config,
        collect() {
          this.reset();
          for (const [edge, stats] of queues()) this.inc({ pipeline: source.pipeline, from: edge.from, to: edge.to }, read(stats));
        },
      });
    } else {
      new Gauge({
        ...config,
        collect() {
          this.reset();
          for (const [edge, stats] of queues()) this.set({ pipeline: source.pipeline, from: edge.from, to: edge.to }, read(stats));
        },
      });
    }
  };
  edgeGauge(metricNames.queueDepth, 'Records waiting in the channel.', (s) => s.depth);
  edgeGauge(metricNames.queueCapacity, 'Capacity of the channel, in records.', (s) => s.capacity);
  edgeGauge(metricNames.edgeDrops, 'Records the channel dropped because it was full.', (s) => s.drops, true);
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** What `/metrics` serves: a text in the Prometheus format and its content type. */
export interface Scrape {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** The runtime's fixed metrics, then the metrics nodes expose of their own (`NodeMetrics.expose`). */
export function metricsScrape(source: StatsSource): Scrape {
  const registry = createMetricsRegistry(source);
  return {
    contentType: registry.contentType,
    async metrics() {
      return (await registry.metrics()) + renderNodeMetrics(source.pipeline, source.nodes());
    },
  };
}
