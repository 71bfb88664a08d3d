/**
 * `streams run`: check, then run a pipeline until its sources end or a
 * signal drains it; with `--watch`, reload it when the file changes.
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { openStateStore } from '../runtime/state/store.ts';
import { basename, dirname } from 'node:path';
import { Engine } from '../runtime/engine.ts';
import { createLogger, type LogLevel } from '../runtime/log.ts';
import { createMetricsRegistry } from '../runtime/metrics.ts';
import { metricsAddress as parseListen, serveMetrics } from '../runtime/server/metrics.ts';
import { parseDuration } from '../graph/units.ts';
import { registry } from '../nodes/registry.ts';
import { UsageError, checkAndReport, parseParams, readPipeline } from './pipeline-file.ts';

const logLevels: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export async function runCommand(values: Record<string, unknown>, files: string[]): Promise<number> {
  if (files.length !== 1) throw new UsageError('run takes one pipeline file');
  const level = values['log-level'] as LogLevel;
  if (!logLevels.includes(level)) throw new UsageError(`unknown log level \`${level}\` (use ${logLevels.join(', ')})`);
  const drainTimeout = parseDuration(String(values['drain-timeout']));
  if (!drainTimeout.ok) throw new UsageError(`--drain-timeout: ${drainTimeout.reason}`);
  const listen = values.metrics === undefined ? undefined : parseListen(String(values.metrics));
  if (values.metrics !== undefined && !listen) throw new UsageError(`--metrics takes HOST:PORT or PORT, got \`${String(values.metrics)}\``);
  const params = parseParams(values.param as string[] | undefined);
  const statePath = values.state as string | undefined;

  const { file, text } = readPipeline(files[0]);
  const checked = checkAndReport(file, text, params);
  if (!checked.graph) return 1;

  const log = createLogger(level);
  const pipeline = checked.graph.name;
  const store = statePath ? await openStateStore(statePath).catch((error: Error) => {
    throw new UsageError(`--state: ${error.message}`);
  }) : undefined;
  const restored = store ? await store.load(pipeline).catch((error: Error) => {
    throw new UsageError(`--state: ${error.message}`);
  }) : undefined;
  const engine = new Engine(checked.graph, { registry, log, restored });
  const server = listen
    ? await serveMetrics(
        createMetricsRegistry({ pipeline: checked.graph.name, nodes: () => engine.nodeStats(), edges: () => engine.edgeStats() }),
        listen,
      ).catch((error: Error) => {
        throw new UsageError(`cannot serve metrics on ${listen.host}:${listen.port}: ${error.message}`);
      })
    : undefined;
  if (server) log.info({ url: `http://${listen!.host}:${listen!.port}/metrics` }, 'serving metrics');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'draining: sources stop, records in flight reach their sinks (signal again to exit now)');
    void engine.drain({ deadlineMs: drainTimeout.value, reason: statePath ? 'suspend' : 'shutdown' });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const stopWatching = values.watch ? watchFile(files[0], file, text, params, engine, log) : undefined;
  log.info({ pipeline: checked.graph.name, nodes: checked.graph.nodes.size }, 'running');
  engine.start();
  try {
    await engine.done;
    log.info({ pipeline: checked.graph.name }, 'finished');
    return 0;
  } catch (error) {
    process.stderr.write(`streams: ${(error as Error).message}\n`);
    return 1;
  } finally {
    stopWatching?.();
    server?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (store) {
      await store.save(pipeline, engine.collectSnapshots());
      await store.close();
    }
  }
}

/**
 * Watches the pipeline file (its folder, since editors often replace files
 * by rename). A change is checked first: an invalid file changes nothing.
 */
function watchFile(path: string, file: string, initial: string, params: Record<string, unknown>, engine: Engine, log: ReturnType<typeof createLogger>): () => void {
  let last = initial;
  let timer: NodeJS.Timeout | undefined;
  let applying: Promise<void> = Promise.resolve();
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
      const checked = checkAndReport(file, text, params);
      if (!checked.graph) {
        log.warn({ file }, 'reload rejected: the running graph is unchanged');
        return;
      }
      const result = await engine.reload(checked.graph);
      if (result.status === 'applied') {
        const { kept, replaced, added, removed } = result.diff;
        log.info({ kept: kept.length, replaced, added, removed }, 'reload applied');
      } else {
        log.error({ cause: result.cause }, 'reload rolled back');
      }
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
