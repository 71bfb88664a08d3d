/**
 * Running pipelines in tests: check YAML text against the registry (plus
 * test-only operators), run it on the engine, and collect what reaches the
 * test sinks.
 */
import { Observable } from 'rxjs';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import type { Graph } from '../../graph/model.ts';
import { registry } from '../../nodes/all.ts';
import { defineOperator, sinkBatches, z, type Batch, type OperatorDefinition } from '../../runtime/api.ts';
import { Engine, type EngineOptions } from '../../runtime/engine.ts';

/** What a `test.collect` node with `summary: true` keeps instead of the records. */
export interface Summary {
  count: number;
  rising: boolean;
  first: number | undefined;
  last: number | undefined;
}

/** Records collected by `test.collect` nodes, by their `into` setting. */
export const collected = new Map<string, unknown[]>();

/** A sink for tests: keeps what it receives under `into`; `delay_ms` makes it slow. */
export const collectOperator = defineOperator({
  name: 'test.collect',
  summary: 'Test sink: keep records in memory.',
  doc: 'Keeps every record it receives in the test process, under `into`.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({ into: z.string(), delay_ms: z.number().default(0), summary: z.boolean().default(false) }),
  create(ctx) {
    const list = collected.get(ctx.settings.into) ?? [];
    collected.set(ctx.settings.into, list);
    // With `summary`, keep only a count and whether `n` kept rising, so the test holds no records.
    const summary: Summary = (list[0] as Summary | undefined) ?? { count: 0, rising: true, first: undefined, last: undefined };
    if (ctx.settings.summary) list[0] = summary;
    return sinkBatches(async (items: unknown[]) => {
      if (ctx.settings.delay_ms > 0) await new Promise((resolve) => setTimeout(resolve, ctx.settings.delay_ms));
      if (!ctx.settings.summary) {
        for (const item of items) list.push(item);
        return;
      }
      for (const item of items as { n: number }[]) {
        if (summary.last !== undefined && item.n <= summary.last) summary.rising = false;
        summary.first ??= item.n;
        summary.last = item.n;
        summary.count++;
      }
    });
  },
});

/**
 * A cheap numbered source for tests: batches of consecutive integers
 * `{n}`. With `live: true` it ignores backpressure, as a live feed must.
 */
export const countOperator = defineOperator({
  name: 'test.count',
  summary: 'Test source: numbered records.',
  doc: 'Emits `{n}` for n from 0 to `count` - 1 in batches of `batch`.',
  inputs: {},
  outputs: { out: { type: 'Event<{n: number}>', doc: 'Numbered records.' } },
  settings: z.object({
    count: z.number().int(),
    batch: z.number().int().default(1024),
    live: z.boolean().default(false),
    every_ms: z.number().default(0),
  }),
  create(ctx) {
    const { count, batch, live, every_ms: everyMs } = ctx.settings;
    return () =>
      new Observable<Batch>((subscriber) => {
        let n = 0;
        let stopped = false;
        const step = async (): Promise<void> => {
          while (!stopped && n < count && !ctx.signal.aborted) {
            const wait = live ? undefined : ctx.ready();
            if (wait) await wait;
            const size = Math.min(batch, count - n);
            const items = new Array(size);
            for (let i = 0; i < size; i++) items[i] = { n: n++ };
            subscriber.next({ items, ack: ctx.newAck() });
            await new Promise((resolve) => (everyMs > 0 ? setTimeout(resolve, everyMs) : setImmediate(resolve)));
          }
          subscriber.complete();
        };
        void step();
        return () => {
          stopped = true;
        };
      });
  },
});

export const testOperators: OperatorDefinition[] = [collectOperator, countOperator];

export function testRegistry(extra: OperatorDefinition[] = []): Map<string, OperatorDefinition> {
  return new Map([...registry, ...[...testOperators, ...extra].map((op) => [op.name, op] as const)]);
}

/** Checks YAML text; throws with the diagnostics when it is invalid. */
export function checkYaml(text: string, extra: OperatorDefinition[] = [], file = 'test.yaml'): Graph {
  const result = checkPipeline({ file, text, registry: testRegistry(extra), env: process.env });
  if (!result.graph) throw new Error(`pipeline invalid:\n${result.diagnostics.map(formatDiagnostic).join('\n')}`);
  return result.graph;
}

/** Starts a pipeline on the engine. */
export function startYaml(text: string, options: { extra?: OperatorDefinition[] } & Partial<EngineOptions> = {}): Engine {
  const engine = new Engine(checkYaml(text, options.extra), { registry: testRegistry(options.extra), ...options });
  engine.start();
  return engine;
}

/** Runs a finite pipeline to its end. */
export async function runYaml(text: string, options: { extra?: OperatorDefinition[] } & Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = startYaml(text, options);
  await engine.done;
  return engine;
}

/** Takes (and forgets) what a `test.collect` node kept. */
export function take(into: string): unknown[] {
  const list = collected.get(into) ?? [];
  collected.delete(into);
  return list;
}
