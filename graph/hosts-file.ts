/**
 * A hosts file (`config/hosts.yaml`, `streams plan --hosts FILE`): the
 * `hosts:` and `transports:` of a deployment kept apart from the pipeline,
 * in the same shape, checked by the same schema, its diagnostics located in
 * its own file. And what a worker reports it really has, which the planner
 * trusts over the file.
 */
import { didYouMean, sortDiagnostics, suggest, type Diagnostic, type DiagnosticCode } from './diagnostics.ts';
import type { Host, Located, Transports } from './model.ts';
import type { Requirement } from './operator-spec.ts';
import { parseHosts } from './placement.ts';
import { isRecord, kindOf, Reporter } from './reporter.ts';
import { parseSource } from './source.ts';
import { parseTransports } from './transports.ts';

/** Where a pipeline runs: its hosts and the transports between them. */
export interface Deployment {
  hosts: Host[];
  transports: Transports;
}

const hostsFileKeys = ['hosts', 'transports', 'description'];

/**
 * Reads a hosts file: a map with `hosts:` (as in a pipeline) and optionally
 * `transports:`. Returns the deployment when the file has no errors.
 *
 * @example
 * const { deployment, diagnostics } = parseHostsFile('config/hosts.yaml', text);
 */
export function parseHostsFile(file: string, text: string): { deployment?: Deployment; diagnostics: Diagnostic[] } {
  const parsed = parseSource(file, text);
  const report = new Reporter(parsed.source);
  for (const d of parsed.diagnostics) report.diagnostics.push(d);
  const doc = parsed.source.data;
  if (doc === undefined && parsed.diagnostics.length > 0) return { diagnostics: report.diagnostics };
  if (!isRecord(doc)) {
    report.at({ line: 1, col: 1 }, 'bad_document', `a hosts file must be a map with \`hosts\` (and optionally \`transports\`), found ${kindOf(doc)}`);
    return { diagnostics: report.diagnostics };
  }
  for (const key of Object.keys(doc)) {
    if (!hostsFileKeys.includes(key)) report.key([key], 'unknown_field', `unknown field \`${key}\` in a hosts file`, suggest(key, hostsFileKeys));
  }
  if (!isRecord(doc.hosts) || Object.keys(doc.hosts).length === 0) {
    const found = doc.hosts === undefined ? 'nothing' : isRecord(doc.hosts) ? 'an empty map' : kindOf(doc.hosts);
    const position = doc.hosts === undefined ? { line: 1, col: 1 } : parsed.source.locate(['hosts'], 'value');
    report.at(position, doc.hosts === undefined ? 'missing_field' : 'bad_field', `a hosts file needs \`hosts\`, a map of host names to hosts, found ${found}`);
    return { diagnostics: report.diagnostics };
  }
  const hosts = parseHosts(doc.hosts, report);
  const transports = parseTransports(doc.transports, report);
  const diagnostics = sortDiagnostics(report.diagnostics);
  const failed = diagnostics.some((d) => d.severity === 'error');
  return failed ? { diagnostics } : { deployment: { hosts, transports }, diagnostics };
}

/** What a worker found on its host when it started: the capabilities that really work. */
export interface CapabilityReport {
  /** The host the worker runs as (`streams worker --host NAME`). */
  host: string;
  /** Capabilities present and working (ffmpeg runs, a hardware encoder opens, a display answers). */
  offers: readonly Requirement[];
  /** Addresses it can listen on, when it reports them. */
  listen?: readonly string[];
  /**
   * The newest deployment record format the worker reads
   * (`cli/control-plane.ts`): deploy writes no newer one. Absent from the
   * reports of workers older than this field.
   */
  reads?: number;
}

/**
 * The hosts with each worker's report taking the place of what the file
 * declares: the report is what the host really has. Where a file's `offers`
 * list disagrees with the report, a warning located at that list says what
 * differs. A report for a host the file does not name is a warning too.
 * Pure; the hosts given are not changed.
 *
 * @example
 * const { hosts, diagnostics } = mergeReportedCapabilities(deployment.hosts, [{ host: 'gpu1', offers: ['ffmpeg'] }]);
 */
export function mergeReportedCapabilities(hosts: readonly Host[], reports: readonly CapabilityReport[]): { hosts: Host[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const byName = new Map(reports.map((report) => [report.host, report]));
  const merged = hosts.map((host): Host => {
    const report = byName.get(host.name);
    if (!report) return host;
    const declared = new Set(host.offers);
    const reported = new Set(report.offers);
    const missing = [...declared].filter((offer) => !reported.has(offer));
    const extra = [...reported].filter((offer) => !declared.has(offer));
    if (host.offersAt && (missing.length > 0 || extra.length > 0)) {
      const differences = [
        missing.length > 0 && `it lacks ${missing.map((m) => `\`${m}\``).join(', ')}`,
        extra.length > 0 && `it also has ${extra.map((m) => `\`${m}\``).join(', ')}`,
      ].filter(Boolean);
      diagnostics.push(warning(host.offersAt, `host \`${host.name}\` offers [${[...declared].join(', ')}] in this file but its worker reports [${[...reported].join(', ')}]: ${differences.join(' and ')}; the plan follows the report`, 'update `offers` to what the host has'));
    }
    const next: Host = { ...host, offers: [...report.offers] };
    if (report.listen !== undefined) next.listen = [...report.listen];
    return next;
  });
  const names = hosts.map((h) => h.name);
  for (const report of reports) {
    if (names.includes(report.host)) continue;
    const at = hosts[0]?.at ?? { file: 'hosts', line: 1, col: 1 };
    diagnostics.push(warning({ file: at.file, line: 1, col: 1 }, `a worker reports as host \`${report.host}\`, which is not declared; it gets no share of the plan`, didYouMean(report.host, names), 'unknown_host'));
  }
  return { hosts: merged, diagnostics };
}

function warning(at: Located, message: string, hint: string | undefined, code: DiagnosticCode = 'capabilities_differ'): Diagnostic {
  return { file: at.file, line: at.line, col: at.col, severity: 'warning', code, message, ...(hint !== undefined && { hint }) };
}
