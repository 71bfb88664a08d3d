/**
 * Running a pipeline inside a benchmark's own process: a sink that drops
 * what it gets, and an engine started from a node map that resolves once
 * its log says the source is ready.
 */
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { defineOperator, sinkBatches, z, type Logger, type OperatorDefinition } from '../runtime/api.ts';
import { Engine } from '../runtime/engine.ts';

/** Where a discarded stream ends: acknowledged and forgotten. */
export const discard = defineOperator({
  name: 'bench.discard',
  summary: 'Drop everything.',
  doc: 'Acknowledges and drops its input.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({}),
  create: () => sinkBatches(() => undefined),
});

/** Starts `nodes` as pipeline `name`; resolves once a log line matches `readyWhen`. Warnings and errors go to stderr. */
export async function startBenchEngine(name: string, nodes: Record<string, unknown>, operators: ReadonlyMap<string, OperatorDefinition>, readyWhen: RegExp): Promise<Engine> {
  const result = checkPipeline({ file: `${name}.yaml`, text: JSON.stringify({ streams: 1, name, nodes }), registry: operators });
  if (!result.graph) throw new Error(result.diagnostics.map(formatDiagnostic).join('\n'));
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  const at = (level: string) => (_fields: object, message: string) => {
    if (readyWhen.test(message)) ready();
    if (level === 'error' || level === 'warn') process.stderr.write(`${message}\n`);
  };
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const engine = new Engine(result.graph, { registry: operators, log });
  engine.start();
  await started;
  return engine;
}
