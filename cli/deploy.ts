/**
 * `streams deploy FILE --control redis://HOST:PORT|kafka://BROKER`: checks and plans a
 * pipeline here (errors located, exit 1, nothing published), creates the
 * Kafka topics of its cross-host edges, publishes it with its plan as the
 * next version of its deployment record, and waits until the worker
 * of every host in the plan has applied it; one line per host says which
 * did, in how long, and which did not, and why.
 */
import { existsSync } from 'node:fs';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { parseDuration } from '../graph/units.ts';
import { ensureTopics, errorMessages } from '../native/kafka/client.ts';
import { openControlPlane, parseApplied, parseCapabilities, oldestPlanFormat, packsEdges, recordFormat, recordFormatFor, type AppliedReport, type ControlPlane, type RecordTopic, type UnversionedRecord } from './control-plane.ts';
import { defaultHostsFile } from './plan.ts';
import { parseParams, readPipeline, UsageError } from './pipeline-file.ts';
import { controlUrl } from './worker.ts';
import { planRecord, recordPlan } from './worker-share.ts';

const pollMs = 50;

export async function deployCommand(values: Record<string, unknown>, paths: string[]): Promise<number> {
  if (paths.length !== 1) throw new UsageError('deploy takes one pipeline file');
  const url = controlUrl(values.control);
  const timeout = parseDuration(String(values.timeout ?? '30s'));
  if (!timeout.ok) throw new UsageError(`--timeout: ${timeout.reason}`);
  const params = parseParams(values.param as string[] | undefined);
  const { file, text } = readPipeline(paths[0]);
  const hostsPath = (values.hosts as string | undefined) ?? (!/^hosts:/m.test(text) && existsSync(defaultHostsFile) ? defaultHostsFile : undefined);
  const hosts = hostsPath === undefined ? undefined : readPipeline(hostsPath);

  const name = nameOf(text);
  if (name === '') {
    // No name to find the deployment by: the checker says what is wrong with the file.
    for (const diagnostic of planRecord({ file, text, params, ...(hosts && { hosts }), capabilities: [] }).diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
    process.stderr.write('streams: nothing published: the pipeline has no `name` to deploy it under\n');
    return 1;
  }
  const plane = await openControlPlane(url, name, { client: 'deploy' }).catch((error: Error) => {
    throw new UsageError(error.message);
  });
  try {
    // The workers' reports: the plan follows what the hosts really have, and every worker reads the same list from the record.
    const { reports, malformed } = parseCapabilities(await plane.capabilities());
    for (const host of malformed) process.stderr.write(`streams: the capability report of host \`${host}\` is malformed; ignored\n`);
    const planned = planRecord({ file, text, params, ...(hosts && { hosts }), capabilities: reports });
    for (const diagnostic of planned.diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
    if (!planned.plan) {
      process.stderr.write('streams: nothing published\n');
      return 1;
    }
    if (planned.graph!.name !== name) {
      process.stderr.write(`streams: nothing published: the pipeline's name \`${planned.graph!.name}\` must be written plainly on its \`name:\` line to deploy it\n`);
      return 1;
    }
    const names = planned.plan.hosts.map((h) => h.name);
    // Every planned host must read the record: a worker refuses a newer format and keeps its old version running.
    const chosen = recordFormatFor(names, reports);
    if ('error' in chosen) {
      process.stderr.write(`streams: nothing published: ${chosen.error}\n`);
      return 1;
    }
    if (chosen.behind.length > 0) {
      const unpacked = packsEdges(chosen).events ? 'edges of media packets are not packed' : 'no edge between hosts is packed';
      const which = chosen.behind.map((h) => `\`${h}\``).join(', ');
      process.stderr.write(`streams: writing record format ${chosen.format}, not ${recordFormat} (${unpacked}): no newer one is read by ${which} (a worker that does not report what it reads counts as format ${oldestPlanFormat}); upgrade and start their workers, then deploy again\n`);
    }
    const { plan, lines, topics } = recordPlan({ graph: planned.graph!, plan: planned.plan }, text);
    await createTopics(topics);
    const record: UnversionedRecord = {
      format: chosen.format,
      pipeline: planned.graph!.name,
      file,
      text,
      params,
      ...(hosts && { hosts }),
      capabilities: reports,
      plan,
      ...(lines && { lines }),
      topics,
      published_at: new Date().toISOString(),
    };
    const started = Date.now();
    const version = await plane.publish(record);
    process.stderr.write(`streams: published \`${record.pipeline}\` version ${version}; waiting for ${names.length} host${names.length === 1 ? '' : 's'} (${names.join(', ')})\n`);
    const reached = await waitForHosts(plane, names, version, started, timeout.value);
    const heartbeats = await plane.heartbeats();
    let failed = 0;
    for (const host of names) {
      const got = reached.get(host);
      if (got?.report.status === 'applied' && got.report.version === version) {
        const { nodes } = got.report;
        process.stdout.write(`${host}: applied version ${version} in ${got.ms} ms (${nodes.length === 0 ? 'no share' : `${nodes.length} node${nodes.length === 1 ? '' : 's'}`})\n`);
        continue;
      }
      failed += 1;
      if (got?.report.status === 'rejected') {
        process.stdout.write(`${host}: not applied: rejected version ${version} (still running ${got.report.running ?? 'nothing'}): ${(got.report.error ?? '').split('\n')[0]}\n`);
      } else if (got) {
        process.stdout.write(`${host}: not applied: it runs version ${got.report.version}, newer than ${version}\n`);
      } else {
        const beat = Number(heartbeats[host]);
        const alive = Number.isFinite(beat) && beat > 0 ? `its worker's last heartbeat was ${((Date.now() - beat) / 1000).toFixed(1)} s ago` : 'no worker has reported for it';
        process.stdout.write(`${host}: not applied within ${timeout.value} ms: ${alive}\n`);
      }
    }
    return failed === 0 ? 0 : 1;
  } finally {
    await plane.close();
  }
}

/**
 * Creates the topics of the cross-host edges with their partitions, once,
 * before the record is published: the workers find them there. One that
 * cannot be created is named, and left to the broker to create on first
 * use with its default partitions.
 */
async function createTopics(topics: readonly RecordTopic[]): Promise<void> {
  const byBrokers = new Map<string, RecordTopic[]>();
  for (const t of topics) byBrokers.set(t.brokers.join(','), [...(byBrokers.get(t.brokers.join(',')) ?? []), t]);
  for (const wanted of byBrokers.values()) {
    try {
      for (const { topic, error } of await ensureTopics(wanted[0].brokers, 'ami-streams-deploy', wanted)) {
        process.stderr.write(`streams: could not create the topic \`${topic}\`: ${error}; the broker may create it with its default partitions\n`);
      }
    } catch (error) {
      process.stderr.write(`streams: could not create the topics of the edges between hosts: ${errorMessages(error)}; the broker may create them with its default partitions\n`);
    }
  }
}

/** The pipeline's `name` as written, for the key of the capability reports, before the file is checked. */
function nameOf(text: string): string {
  return /^name:\s*["']?([A-Za-z0-9][A-Za-z0-9_.-]*)/m.exec(text)?.[1] ?? '';
}

/** Polls the applied reports until every host has handled `version` (or a newer one) or the time is up. */
async function waitForHosts(plane: ControlPlane, hosts: readonly string[], version: number, started: number, timeoutMs: number): Promise<Map<string, { report: AppliedReport; ms: number }>> {
  const reached = new Map<string, { report: AppliedReport; ms: number }>();
  while (reached.size < hosts.length && Date.now() - started < timeoutMs) {
    const all = await plane.applied();
    for (const host of hosts) {
      if (reached.has(host)) continue;
      const report = parseApplied(all[host]);
      if (report && report.version >= version) reached.set(host, { report, ms: Date.now() - started });
    }
    if (reached.size < hosts.length) await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return reached;
}
