/**
 * The core types of the runtime: records, batches, logging, stop reasons,
 * and the contract between the runtime and a running operator. The runtime
 * imports these from here; operators get them through `runtime/api`.
 */
import type { Observable } from 'rxjs';
import type { OperatorSpec } from '../graph/operator-spec.ts';
import type { OnError } from '../graph/model.ts';
import type { Ack } from './ack.ts';
import type { PathProblem } from './paths.ts';
import type { NodeTracing, TraceContext } from './tracing/context.ts';
import type { TimerOptions } from './clock.ts';

/** An event: a record of named fields. */
export type EventRecord = Record<string, unknown>;

/**
 * Opaque bytes with metadata (a line of a file, a message payload). Text
 * sources may carry `text` instead of `data`, sparing a copy; read either
 * through `bytesText` / `bytesBuffer`.
 */
export interface BytesItem {
  data?: Buffer;
  text?: string;
  meta?: Record<string, unknown>;
}

/** The text of a Bytes item (decoded as UTF-8 when it carries a buffer). */
export function bytesText(item: BytesItem): string {
  return item.text ?? item.data?.toString('utf8') ?? '';
}

/** The bytes of a Bytes item (encoded as UTF-8 when it carries text). */
export function bytesBuffer(item: BytesItem): Buffer {
  return item.data ?? Buffer.from(item.text ?? '', 'utf8');
}

/** The size in bytes of a Bytes item. */
export function bytesLength(item: BytesItem): number {
  return item.data ? item.data.length : item.text ? Buffer.byteLength(item.text) : 0;
}

/** A few records travelling together, with the acknowledgement they owe their source. */
export interface Batch<T = unknown> {
  items: T[];
  ack: Ack;
  /** The input port it arrived on, for operators with several. */
  port?: string;
  /**
   * Set only while tracing is on: the span this batch continues (its
   * parent), or `null` when it was decided not to trace it. Set by the
   * runtime; a source that continues a trace from elsewhere sets it from
   * `ctx.tracing.receive` (see `docs/tracing.md`).
   */
  trace?: TraceContext | null;
  /**
   * Where the records were read, when a source reads a partitioned log (a
   * Kafka partition): a keyed node with `parallelism` keeps its state per
   * partition with it (docs/keyed-state.md). Nodes that make new batches
   * do not carry it on.
   */
  origin?: BatchOrigin;
}

/** The partition a batch was read from, and each record's place in it. */
export interface BatchOrigin {
  /** The partition, as `TOPIC/pN`. */
  partition: string;
  /** Each item's offset in the partition, in order (as many as `items`). */
  offsets: readonly number[];
}

/** What a stateful node may say of its snapshot besides how to take it. */
export interface SnapshotOptions {
  /**
   * Takes from the state the acknowledgements it holds (the records folded
   * into open windows), at the moment of a checkpoint: the runtime releases
   * them once the snapshot taken with them is stored, the stored state
   * owning those records from then on, so their source may commit them.
   */
  holds?(): Ack[];
}

/** Which way bytes crossed a node's boundary: into the engine, or out of it. */
export type ByteDirection = 'read' | 'written';

/** Counters a node may bump itself; records in and out are counted by the runtime. */
export interface NodeMetrics {
  /** Records dropped on purpose (a full live buffer, a throttle). */
  dropped(count: number, reason: string): void;
  /**
   * Bytes read or written at a boundary. Without `direction`, a source (a
   * node without inputs) counts bytes read and any other node bytes written;
   * a node that does both passes it.
   */
  bytes(count: number, direction?: ByteDirection): void;
  /**
   * Metrics of the node's own (an edge cache's hits by kind, its time to
   * first byte), read by `collect` at each Prometheus scrape, so the hot
   * path only updates the node's own numbers. Each family is exported as
   * `streams_{name}` with the `pipeline` and `node` labels added. A second
   * call replaces the first.
   */
  expose(collect: () => readonly NodeMetricFamily[]): void;
}

/** A metric family a node exposes (see `NodeMetrics.expose`). */
export type NodeMetricFamily =
  | {
      /** Lower-case letters, digits and `_`, without the `streams_` prefix: `cdn_requests_total`. */
      name: string;
      help: string;
      type: 'counter' | 'gauge';
      samples: ReadonlyArray<{ labels?: Readonly<Record<string, string>>; value: number }>;
    }
  | {
      name: string;
      help: string;
      type: 'histogram';
      /** Upper bounds of the buckets, ascending (the `+Inf` bucket is implied). */
      bounds: readonly number[];
      /** Observations per bucket, not cumulative: one more than `bounds` (the last is above every bound). */
      counts: readonly number[];
      sum: number;
    };

/** Structured logging: one JSON event a line; `fields` are its keys. */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Why a node stops; see `NodeContext.stopReason`. */
export type StopReason = 'end' | 'shutdown' | 'removed' | 'replaced' | 'suspend';

/** Whether a stop keeps open state for the next incarnation instead of flushing it. */
export function carriesState(reason: StopReason): boolean {
  return reason === 'replaced' || reason === 'suspend';
}

/** What the runtime gives one running node. */
export interface NodeContext<Settings = unknown> {
  /** The node's name in the pipeline. */
  readonly node: string;
  /** `node \`name\` (file:line)`, for error messages. */
  readonly label: string;
  readonly settings: Settings;
  readonly onError: OnError;
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  /** Aborted when the node must drain: sources stop reading and complete. */
  readonly signal: AbortSignal;
  /** State saved by this node's previous incarnation (restart, reload, or a checkpoint on disk), if any. */
  readonly restored: unknown;
  /**
   * Registers what to save when the node drains, so a later run or reload
   * resumes from it; a keyed node with `parallelism` also saves it per
   * partition at checkpoints (docs/keyed-state.md), with `options.holds`.
   */
  snapshot(save: () => unknown, options?: SnapshotOptions): void;
  /**
   * Hands over a record this node could not process: to the `dlq` port with
   * the reason, or dropped, or stopping the node, per the node's `on_error`.
   * The caller keeps its hold on `ack`; when given, the dead letter holds it
   * too, so the source commits only once the dead letter is written.
   */
  fail(item: unknown, error: unknown, ack?: Ack): void;
  /** Emits on a secondary output port (`late`, ...); the batch's ack is passed on. */
  emit(port: string, batch: Batch): void;
  /**
   * For sources: a promise to await before reading more when downstream is
   * full, or undefined when there is room (the fast path allocates nothing).
   */
  ready(): Promise<void> | undefined;
  /**
   * For `paced` operators: this node has finished with its oldest input
   * batch (emitted what it made of it, or dropped it); the next may come.
   * A paced sink says it has taken its oldest batch in (its ack is released
   * later, once the batch is written), once per batch, in order.
   */
  batchDone(): void;
  /**
   * Stops the whole graph with this error (the process exits non-zero), for
   * a node that cannot go on safely and must not be restarted in place (a
   * transactional producer fenced mid-transaction, say).
   */
  fatal(error: unknown): void;
  /**
   * For sources: an ack for a new batch; `onDone` runs once every sink
   * downstream has finished with it. `onSettle` runs as soon as the records
   * no longer need the source to hold them in memory or in flight: when
   * they are done, or when a stateful node (a window) has folded them into
   * its state. A source whose server limits unacknowledged messages (MQTT's
   * in-flight window) acknowledges on settle, or a window longer than that
   * limit would wait forever for records the server will not send.
   */
  newAck(onDone?: () => void, onSettle?: () => void): Ack;
  /**
   * Why the node's input completed, read when it completes: `end` (the
   * sources ran out) and `shutdown` and `removed` flush open state (windows
   * emit); `replaced` (a reload) and `suspend` (a shutdown that keeps state
   * for the next run) keep it for `snapshot` instead.
   */
  stopReason(): StopReason;
  /**
   * A path from the node's settings made absolute: a relative one is read
   * against the pipeline file's folder, not the current directory.
   */
  resolvePath(path: string): string;
  /** Milliseconds since the epoch, from the runtime's clock (virtual in tests). */
  now(): number;
  /** Runs `fn` after `ms` on the runtime's clock; returns a cancel function. */
  schedule(ms: number, fn: () => void, options?: TimerOptions): () => void;
  /**
   * Whether anything reads this output port now. A node may skip work whose
   * only use is an optional port left unconnected (per-second `stats`).
   */
  connected(port: string): boolean;
  /**
   * The object the nodes of this engine share under `key`, made by `create`
   * on first use and kept across reloads: how nodes of one pipeline meet (a
   * Kafka consumer and its transactional producer), with no process-global
   * state. Prefix keys with the operator family (`kafka.offsets`).
   */
  shared<T>(key: string, create: () => T): T;
  /**
   * OpenTelemetry spans for the node's own work on a sampled batch (a Kafka
   * write, an HTTP request), and the trace context to put in what it sends
   * to or reads from other hosts. Returns nothing, at no cost, when tracing
   * is off or the batch is not sampled.
   */
  readonly tracing: NodeTracing;
}

/** The running half of an operator: input batches to output batches. */
export type NodeFunction = (input: Observable<Batch>) => Observable<Batch>;

/** The node of a port written `node.port` (node names have no dots). */
export function nodeOfPort(port: string): string {
  return port.slice(0, port.lastIndexOf('.'));
}

/** The port name of a port written `node.port`. */
export function portNameOf(port: string): string {
  return port.slice(port.lastIndexOf('.') + 1);
}

/** The port a node's records leave by when none is named: its operator's first output (`out` for a sink). */
export function defaultPortOf(definition: Pick<OperatorDefinition, 'outputs'>): string {
  return Object.keys(definition.outputs)[0] ?? 'out';
}

/** One operator: its spec (for the checker, docs and editors) and `create`. */
export interface OperatorDefinition<Settings = any> extends OperatorSpec<Settings> {
  create(ctx: NodeContext<Settings>): NodeFunction;
  /**
   * An asynchronous transform (a lookup, an HTTP call): the runtime gives it
   * one batch at a time and the next after `ctx.batchDone()`, so its input
   * channel, not an unbounded buffer inside it, holds what waits.
   * `perBatchAsync` does this for you. A paced sink (no outputs) gets its
   * next batch once it calls `ctx.batchDone()` or acknowledges the last,
   * whichever comes first: it may hold several batches unacknowledged (a
   * bounded number, its own to choose), and if it fails they all go back to
   * its channel, in order.
   */
  paced?: boolean;
  /**
   * Fusion with the operator named by the key when that operator is this
   * node's only consumer (a window followed by an aggregate folds records as
   * they arrive instead of buffering them). The fused function replaces both
   * nodes; `next` is the consumer's context. It must emit one output on the
   * consumer's port per record that would have crossed the edge (an
   * aggregate's one result per pane): the runtime counts the edge fused
   * away, the producer's output and the consumer's input from them.
   */
  fuse?: Record<string, (ctx: NodeContext<Settings>, next: NodeContext<any>) => NodeFunction>;
  /**
   * What `streams validate` can check about the paths in the settings
   * before anything runs (an input that does not exist, an output under a
   * regular file). `resolvePath` reads a relative path against the
   * pipeline file's folder. The checker in `graph/` does no I/O; the CLI
   * calls this after it.
   */
  checkPaths?(settings: Settings, resolvePath: (path: string) => string): PathProblem[];
  /**
   * What the user should know when a reload replaces this node by one of
   * the same operator, its state carried over (a window whose size changed
   * folds what it held into the new windows); undefined when there is
   * nothing to say, as when the settings are equal (a node is also replaced
   * when only its inputs changed). It goes into the reload's result.
   * `fused`: the node ran fused with its consumer (see `fuse`).
   */
  reloadNote?(before: Settings, after: Settings, how: { fused: boolean }): string | undefined;
}

