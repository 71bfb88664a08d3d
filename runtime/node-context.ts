/**
 * The context a node's operator is given (`NodeContext`, what `runtime/api`
 * exposes): made by the node's runner at each start, it wires every call to
 * the runner's counters, routes, gate, input and lifecycle.
 */
import { resolve } from 'node:path';
import { Ack } from './ack.ts';
import type { Logger, NodeContext, StopReason } from './types.ts';
import { tracingOff } from './tracing/context.ts';
import type { NodeRunner, NodeRunnerOptions } from './node-runner.ts';

/** What a context reaches of its runner beyond the runner's public side: its options and the private parts of its lifecycle. */
export interface ContextWiring {
  options: Pick<NodeRunnerOptions, 'clock' | 'log' | 'baseDir' | 'shared' | 'tracing' | 'onFatal'>;
  /** The abort signal of the node's current run (a restart makes a new one). */
  signal(): AbortSignal;
  /** Keeps the function that saves the node's state (`ctx.snapshot`). */
  snapshot(save: () => unknown): void;
  /** Why the node stops, once it does (`ctx.stopReason`). */
  stopReason(): StopReason;
}

/** The operator context of `runner`'s node for one run. */
export function nodeContext(runner: NodeRunner, wiring: ContextWiring): NodeContext<any> {
  const { stats, node } = runner;
  const { options } = wiring;
  const { clock } = options;
  const log = (options.log as Logger & { child?(b: object): Logger }).child?.({ node: runner.name }) ?? options.log;
  // Bytes a node counts without saying which way: a source reads them, any other node writes them.
  const byteDirection = Object.keys(node.spec.inputs).length === 0 ? 'read' : 'written';
  return {
    node: runner.name,
    label: runner.label,
    settings: node.settings,
    onError: node.onError,
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
    signal: wiring.signal(),
    restored: runner.restored,
    snapshot: (save) => wiring.snapshot(save),
    fail: (item, error, ack) => runner.fail(item, error, ack),
    emit: (port, batch) => runner.route(port, batch),
    ready: () => (wiring.signal().aborted ? undefined : runner.gate.ready()),
    newAck: (onDone, onSettle) => new Ack(onDone, onSettle),
    resolvePath: (path) => resolve(options.baseDir, path),
    fatal: (error) => options.onFatal(error instanceof Error ? error : new Error(String(error))),
    batchDone: () => runner.input.batchDone(),
    stopReason: () => wiring.stopReason(),
    now: () => clock.now(),
    schedule: (ms, fn, timerOptions) => clock.schedule(ms, fn, timerOptions),
    connected: (port) => (runner.routes.get(port)?.length ?? 0) > 0,
    shared: <T>(key: string, create: () => T): T => {
      const shared = options.shared;
      if (!shared.has(key)) shared.set(key, create());
      return shared.get(key) as T;
    },
    tracing: options.tracing?.forNode(runner.name, node.op) ?? tracingOff,
  };
}
