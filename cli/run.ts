/**
 * `streams run`: check, then run a pipeline until its sources end or a
 * signal drains it; with `--watch`, reload it when the file changes.
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { openStateStore } from '../runtime/state/store.ts';
import { basename, dirname, resolve } from 'node:path';
import { Engine } from '../runtime/engine.ts';
import { createLogger, type LogLevel } from '../runtime/log.ts';
import { metricsAddress as parseListen, serveMetrics } from '../runtime/server/metrics.ts';
import { parseDuration } from '../graph/units.ts';
import { registry } from '../nodes/registry.ts';
import { UsageError, checkAndReport, parseParams, readPipeline } from './pipeline-file.ts';
import type { Reloader } from './run-ui.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { hostname } from 'node:os';
import { openTracing, traceFlags } from './trace-flags.ts';

const logLevels: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const nodeFailurePolicies = ['stop', 'continue'] as const;

export async function runCommand(values: Record<string, unknown>, files: string[]): Promise<number> {
  if (files.length !== 1) throw new UsageError('run takes one pipeline file');
  const level = values['log-level'] as LogLevel;
  if (!logLevels.includes(level)) throw new UsageError(`unknown log level \`${level}\` (use ${logLevels.join(', ')})`);
  const drainTimeout = parseDuration(String(values['drain-timeout']));
  if (!drainTimeout.ok) throw new UsageError(`--drain-timeout: ${drainTimeout.reason}`);
  const listen = values.metrics === undefined ? undefined : parseListen(String(values.metrics));
  if (values.metrics !== undefined && !listen) throw new UsageError(`--metrics takes HOST:PORT or PORT, got \`${String(values.metrics)}\``);
  const onNodeFailure = String(values['on-node-failure'] ?? 'stop') as (typeof nodeFailurePolicies)[number];
  if (!nodeFailurePolicies.includes(onNodeFailure)) throw new UsageError(`--on-node-failure takes stop or continue, got \`${onNodeFailure}\``);
  const params = parseParams(values.param as string[] | undefined);
  // The metrics (prom-client) and the visualiser's server are loaded only when asked for: a run without them
  // starts without evaluating either (tens of milliseconds of a short run's start-up).
  const wantsUi = values.ui !== undefined || values['ui-tls-cert'] !== undefined || values['ui-tls-key'] !== undefined;
  const runUi = wantsUi || values.watch ? await import('./run-ui.ts') : undefined;
  const ui = wantsUi ? runUi!.uiOptions(values, process.env) : undefined;
  const statePath = values.state as string | undefined;
  const traced = traceFlags(values);

  // A signal before the graph runs (while a big file is checked) stops here: nothing has run, nothing to drain.
  let interrupted: NodeJS.Signals | undefined;
  const onEarlySignal = (signal: NodeJS.Signals): void => {
    interrupted = signal;
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);
  const early = await prepare(files[0], params, statePath).finally(() => {
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
  });
  if (interrupted) {
    process.stderr.write(`streams: interrupted (${interrupted}) before the pipeline started; nothing ran\n`);
    await early?.store?.close();
    return 130;
  }
  if (!early) return 1;
  const { file, text, checked, store } = early;

  const log = createLogger(level);
  const pipeline = checked.graph.name;
  const restored = store ? await store.load(pipeline).catch((error: Error) => {
    throw new UsageError(`--state: ${error.message}`);
  }) : undefined;
  // Relative paths in settings are read from the pipeline file's folder, as a test file's `pipeline:` is.
  const tracing = await openTracing(traced, { host: hostname(), pipeline });
  // Without --watch or --ui nothing reloads the graph: sources may fuse with their consumers (a faster path).
  const fixed = runUi === undefined;
  const engine = new Engine(checked.graph, { registry, log, restored, baseDir: dirname(resolve(files[0])), onNodeFailure, tracing, fixed });
  const server = listen
    ? await serveMetrics(
        (await import('../runtime/metrics.ts')).metricsScrape({ pipeline: checked.graph.name, nodes: () => engine.nodeStats(), edges: () => engine.edgeStats() }),
        listen,
      ).catch((error: Error) => {
        throw new UsageError(error.message);
      })
    : undefined;
  if (server) log.info({ url: `http://${listen!.host}:${listen!.port}/metrics` }, 'serving metrics');
  const reloader = runUi ? new runUi.Reloader(engine, file, params, log) : undefined;
  // The admin server, its feed and `ws` are loaded only for `--ui`: a run without it pays nothing for them.
  const admin = ui ? await (await import('./run-ui-server.ts')).startRunUi(engine, { ...ui, reloader: reloader!, ownsTimings: !server, log }) : undefined;
  if (admin) {
    const host = admin.server.address.host.includes(':') ? `[${admin.server.address.host}]` : admin.server.address.host;
    const page = `${ui!.tls ? 'https' : 'http'}://${host}:${admin.server.address.port}/`;
    // The page address goes to stderr for people; the token is never printed.
    process.stderr.write(`streams: visualiser at ${page}${ui!.token ? '?token=<your --ui-token>' : ''}\n`);
    log.info({ url: page }, 'serving the visualiser and admin API');
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'draining: sources stop, records in flight reach their sinks (signal again to exit now)');
    // A failure during the drain is reported through `engine.done` below.
    engine.drain({ deadlineMs: drainTimeout.value, reason: statePath ? 'suspend' : 'shutdown' }).catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const stopWatching = values.watch ? watchFile(files[0], text, reloader!) : undefined;
  log.info({ pipeline: checked.graph.name, nodes: checked.graph.nodes.size }, 'running');
  engine.start();
  try {
    let code = 0;
    await engine.done.catch(() => undefined);
    if (engine.stopError) {
      process.stderr.write(`streams: ${engine.stopError.message}\n`);
      code = 1;
    }
    const losses = lossReport(engine);
    for (const line of losses) process.stderr.write(`streams: ${line}\n`);
    if (losses.length > 0) code = 1;
    if (code === 0) log.info({ pipeline: checked.graph.name }, 'finished');
    else log.error({ pipeline: checked.graph.name }, 'finished with failures');
    return code;
  } finally {
    stopWatching?.();
    await tracing?.shutdown().catch((error: Error) => log.warn({ error: error.message }, 'could not send the last traces'));
    server?.close();
    await admin?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (store) {
      await store.save(pipeline, engine.collectSnapshots());
      await store.close();
    }
  }
}

/** Checks the file and opens the state store: everything before the graph runs. Undefined when the file is invalid. */
async function prepare(path: string, params: Record<string, unknown>, statePath: string | undefined) {
  const { file, text } = readPipeline(path);
  const checked = await checkAndReport(file, text, params);
  // Lets a signal that came during the (synchronous) check be seen before anything starts.
  await new Promise((resolve) => setImmediate(resolve));
  if (!checked.graph) return undefined;
  const store = statePath ? await openStateStore(statePath).catch((error: Error) => {
    throw new UsageError(`--state: ${error.message}`);
  }) : undefined;
  return { file, text, checked: checked as typeof checked & { graph: NonNullable<typeof checked.graph> }, store };
}

/**
 * What the run lost, beyond the error that stopped it (`engine.stopError`,
 * printed on its own): nodes that failed for good, and dead letters that had
 * no `dlq` consumer. One line each; any line means exit code 1.
 */
export function lossReport(engine: Engine): string[] {
  const lines: string[] = [];
  for (const failure of engine.failures) if (failure.error !== engine.stopError) lines.push(failure.message);
  const lost = engine.lostDeadLetters();
  if (lost.size > 0) {
    const counts = [...lost].map(([node, count]) => `\`${node}\` ${count}`).join(', ');
    const total = [...lost.values()].reduce((a, b) => a + b, 0);
    lines.push(`${total} dead letter${total === 1 ? '' : 's'} not kept (no \`dlq\` consumer): ${counts}; connect \`NODE.dlq\` to keep them`);
  }
  return lines;
}

/**
 * Watches the pipeline file (its folder, since editors often replace files
 * by rename). A change is checked first: an invalid file changes nothing.
 */
function watchFile(path: string, initial: string, reloader: Reloader): () => void {
  let last = initial;
  let timer: NodeJS.Timeout | undefined;
  let applying: Promise<unknown> = Promise.resolve();
  const consider = (): void => {
    applying = applying.then(async () => {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        return; // mid-save: the rename has not landed yet; the next event will
      }
      if (text === last) return;
      last = text;
      await reloader.apply(text, 'watch', (diagnostics) => {
        for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
      });
    });
  };
  const watcher = watch(dirname(path), (_event, name) => {
    if (name !== basename(path)) return;
    clearTimeout(timer);
    timer = setTimeout(consider, 100);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
