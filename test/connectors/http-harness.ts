/**
 * What the web connector tests share: a pipeline run through the real
 * engine, a source the test feeds by hand, a sink that collects (and may
 * delay its acknowledgements), a logger that keeps what it is told, and
 * free loopback ports.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Observable } from 'rxjs';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import type { Graph } from '../../graph/model.ts';
import { registry } from '../../nodes/all.ts';
import { defineOperator, sinkBatches, z, type Batch, type Logger, type OperatorDefinition } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';
import type { Clock } from '../../runtime/clock.ts';
export { freePort } from '../helpers/net.ts';


/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface LogEntry {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps every entry, for assertions on what an operator said. */
export function recordingLogger(): Logger & { entries: LogEntry[]; child(bindings: object): Logger } {
  const entries: LogEntry[] = [];
  const make = (bindings: object): Logger & { entries: LogEntry[]; child(b: object): Logger } => {
    const at = (level: string) => (fields: object, message: string) => entries.push({ level, fields: { ...bindings, ...fields }, message });
    return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more: object) => make({ ...bindings, ...more }) };
  };
  return make({});
}

/** A source the test pushes records into; it ends on `end()` or when the engine drains. */
export function feed(name = 'test.feed') {
  let current: { emit(items: unknown[]): void; complete(): void } | undefined;
  const waiting: unknown[][] = [];
  const op = defineOperator({
    name,
    summary: 'Records pushed by the test.',
    doc: 'Emits what the test pushes.',
    inputs: {},
    outputs: { out: { type: 'Any', doc: 'The pushed records.' } },
    settings: z.object({}),
    create(ctx) {
      return () =>
        new Observable<Batch>((subscriber) => {
          current = { emit: (items) => subscriber.next({ items, ack: ctx.newAck() }), complete: () => subscriber.complete() };
          for (const items of waiting.splice(0)) current.emit(items);
          const onAbort = () => subscriber.complete();
          ctx.signal.addEventListener('abort', onAbort, { once: true });
          return () => ctx.signal.removeEventListener('abort', onAbort);
        });
    },
  });
  return {
    op,
    push(...items: unknown[]): void {
      if (current) current.emit(items);
      else waiting.push(items);
    },
    end(): void {
      current?.complete();
    },
  };
}

/** A sink that keeps what reaches it; `delayMs` holds each batch's acknowledgement that long. */
export function collector(name = 'test.collect', options: { delayMs?: number } = {}) {
  const records: unknown[] = [];
  const op: OperatorDefinition = defineOperator({
    name,
    summary: 'Keeps records for the test.',
    doc: 'Collects what reaches it.',
    inputs: { in: { type: 'Any', doc: 'Anything.' } },
    outputs: {},
    settings: z.object({}),
    create() {
      return sinkBatches<unknown>(async (items) => {
        if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
        records.push(...items);
      });
    },
  });
  return {
    op,
    records,
    waitFor(count: number, timeoutMs = 10_000): Promise<void> {
      return until(() => records.length >= count, `${count} records at \`${name}\` (have ${records.length})`, timeoutMs);
    },
  };
}

/** Checks `yaml` against the shipped operators plus `extra`; throws the errors, if any. */
export function checkWith(yaml: string, extra: OperatorDefinition[]): { graph: Graph; registry: Map<string, OperatorDefinition> } {
  const operators = new Map<string, OperatorDefinition>([...registry, ...extra.map((op) => [op.name, op] as const)]);
  const result = checkPipeline({ file: 'test.yaml', text: yaml, registry: operators, env: process.env });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !result.graph) throw new Error(errors.map(formatDiagnostic).join('\n'));
  return { graph: result.graph, registry: operators };
}

/** Checks `yaml` against the shipped operators plus `extra`, and starts it. */
export function startPipeline(yaml: string, extra: OperatorDefinition[], options: { log?: Logger; clock?: Clock } = {}): Engine {
  const { graph, registry: operators } = checkWith(yaml, extra);
  const engine = new Engine(graph, { registry: operators, log: options.log, clock: options.clock });
  engine.start();
  return engine;
}

/** Drops counted by a node, by reason. */
export function dropsOf(engine: Engine, node: string): Map<string, number> {
  return engine.runners.get(node)!.stats.dropped;
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Bytes still reachable (heap and buffers): garbage is collected first, so
 * only what is held counts. V8 frees the memory of dead buffers on a
 * background thread after a collection, which lags on a loaded machine: the
 * collection runs twice with a pause between, so freed buffers are not
 * counted as held.
 */
export async function retainedMemory(): Promise<number> {
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 100));
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
