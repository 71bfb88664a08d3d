/**
 * `streams purge`: drops a URL, a prefix or a tag from every edge cache
 * listening on a purge channel (Redis pub/sub or Kafka), waits for each
 * registered edge's acknowledgement, and prints one line per edge. Exit 0
 * when every registered edge applied it, 1 when some did not (they are
 * named) or the bus cannot be reached, 2 on usage errors.
 */
import { parseDuration } from '../graph/units.ts';
import type { ClientLogger } from '../native/client-owner.ts';
import { defaultPurgeChannel, PurgeBusError, type PurgeBusOptions } from '../nodes/cdn/purge/bus.ts';
import type { PurgeSelector } from '../nodes/cdn/purge/command.ts';
import { busOptionsProblem } from '../nodes/cdn/purge/registry.ts';
import { sendPurge, type PurgeReport } from '../nodes/cdn/purge/send.ts';
import { UsageError } from './usage-error.ts';

const usage = 'streams purge (--redis URL | --kafka BROKERS) [--channel NAME] (URL | --url U | --prefix P | --tag T) [--soft] [--timeout 5s]';

/** Warnings of the bus clients, one line each on stderr (never a stack). */
const stderrLog: ClientLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (_fields, message) => process.stderr.write(`streams: ${message}\n`),
  error: (_fields, message) => process.stderr.write(`streams: ${message}\n`),
};

/** The bus, the selector and the timeout from the command line; a `UsageError` (exit 2) for anything wrong. */
export function purgeArguments(values: Record<string, unknown>, positionals: string[]): { bus: PurgeBusOptions; selector: PurgeSelector; timeoutMs: number } {
  if (positionals.length > 1) throw new UsageError(`purge takes at most one URL, got ${positionals.length}\nusage: ${usage}`);
  const given: Array<[PurgeSelector['kind'], string]> = [];
  if (positionals[0] !== undefined) given.push(['url', positionals[0]]);
  for (const kind of ['url', 'prefix', 'tag'] as const) if (values[kind] !== undefined) given.push([kind, String(values[kind])]);
  if (given.length !== 1) throw new UsageError(`purge needs exactly one of URL, --url, --prefix or --tag${given.length > 1 ? ` (got ${given.map(([kind]) => kind).join(', ')})` : ''}\nusage: ${usage}`);
  const [kind, value] = given[0];
  if (value === '') throw new UsageError(`the ${kind} to purge is empty`);
  const bus: PurgeBusOptions = {
    channel: values.channel !== undefined ? String(values.channel) : defaultPurgeChannel,
    ...(values.redis !== undefined ? { redis: String(values.redis) } : {}),
    ...(values.kafka !== undefined ? { kafka: String(values.kafka).split(',').map((broker) => broker.trim()).filter(Boolean) } : {}),
  };
  const problem = busOptionsProblem(bus);
  if (problem) throw new UsageError(`${problem.replace('a Redis URL or Kafka brokers', '--redis URL or --kafka BROKERS')}\nusage: ${usage}`);
  const timeout = parseDuration(String(values.timeout ?? '5s'));
  if (!timeout.ok) throw new UsageError(`--timeout: ${timeout.reason}`);
  if (timeout.value <= 0) throw new UsageError('--timeout must be more than 0');
  return { bus, selector: { kind, value, soft: values.soft === true }, timeoutMs: timeout.value };
}

/** The report as the command prints it: a summary line, then one line per edge (applied, failed, missing). */
export function formatPurgeReport(report: PurgeReport, selector: PurgeSelector, channel: string, timeoutMs: number, now = Date.now()): string {
  const what = `${selector.kind} ${selector.value} (${selector.soft ? 'soft' : 'hard'})`;
  if (report.registered === 0 && report.applied.length === 0) {
    return `purge ${what} on ${channel}: no edge is registered on this channel (is the channel right? are the edges running?)\n`;
  }
  const total = new Set([...report.applied.map((a) => a.edge), ...report.failed.map((f) => f.edge), ...report.missing]).size;
  const lines = [`purge ${what} on ${channel}: applied by ${report.applied.length} of ${total} edges (id ${report.id})`];
  const width = Math.max(...[...report.applied, ...report.failed].map((entry) => entry.edge.length), ...report.missing.map((edge) => edge.length));
  for (const a of report.applied) lines.push(`applied  ${a.edge.padEnd(width)}  ${a.removed} object${a.removed === 1 ? '' : 's'}  ${a.ms.toFixed(1)} ms`);
  for (const f of report.failed) lines.push(`failed   ${f.edge.padEnd(width)}  ${f.error}`);
  const stale = new Map(report.stale.map((entry) => [entry.edge, entry.lastSeen]));
  for (const edge of report.missing) {
    const lastSeen = stale.get(edge);
    const why = lastSeen !== undefined ? `down: last heartbeat ${Math.round((now - lastSeen) / 1000)} s ago` : `no acknowledgement within ${timeoutMs} ms`;
    lines.push(`missing  ${edge.padEnd(width)}  ${why}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `streams purge`; returns the exit code. */
export async function purgeCommand(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const { bus, selector, timeoutMs } = purgeArguments(values, positionals);
  let report: PurgeReport;
  try {
    report = await sendPurge(bus, selector, timeoutMs, stderrLog);
  } catch (error) {
    if (error instanceof PurgeBusError) throw new UsageError(error.message, 1);
    throw error;
  }
  process.stdout.write(formatPurgeReport(report, selector, bus.channel, timeoutMs));
  const everyone = (report.registered > 0 || report.applied.length > 0) && report.missing.length === 0 && report.failed.length === 0;
  return everyone ? 0 : 1;
}
