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

/**
 * Watches `count` (records received so far) and, once it has not moved for
 * `idleMs`, prints `{received, seconds, cpuSeconds, ...}` as one JSON line
 * (from the first record to the last, with `finish`'s fields) and exits.
 */
export function whenIdle(count: () => number, idleMs: number, finish: () => Promise<Record<string, unknown>>): void {
  let first = 0;
  let last = 0;
  let seen = 0;
  let cpuAtFirst = process.cpuUsage();
  let cpuAtLast = cpuAtFirst;
  const timer = setInterval(() => {
    const now = performance.now();
    const current = count();
    if (current !== seen) {
      if (seen === 0) {
        first = now;
        cpuAtFirst = process.cpuUsage();
      }
      seen = current;
      last = now;
      cpuAtLast = process.cpuUsage();
    } else if (seen > 0 && now - last > idleMs) {
      clearInterval(timer);
      const cpuSeconds = (cpuAtLast.user - cpuAtFirst.user + cpuAtLast.system - cpuAtFirst.system) / 1e6;
      void finish().then((fields) => {
        process.stdout.write(JSON.stringify({ received: seen, seconds: (last - first) / 1000, cpuSeconds, ...fields }) + '\n');
        process.exit(0);
      });
    }
  }, 5);
}
