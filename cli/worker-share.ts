/**
 * From a deployment record to what one host runs. `streams deploy` checks
 * the pipeline (with its hosts file and params), plans it over the hosts as
 * the workers reported them, and publishes the plan with where each node is
 * written and the topics it created (`recordPlan`), so a record every
 * worker would reject is never published. A worker checks only its share
 * of the text (`shareOfRecord`): its nodes, the nodes they send to, and
 * what is upstream of them, the other nodes' lines blanked; it checks the
 * whole file when the share does not stand alone, and checks and plans it
 * all for a record of format 1.
 */
import type { Diagnostic } from '../graph/diagnostics.ts';
import { edgeKey, hostGraph, type PackedEdges, type TransportNode } from '../graph/host-graph.ts';
import { mergeReportedCapabilities, parseHostsFile, type CapabilityReport, type Deployment } from '../graph/hosts-file.ts';
import type { Graph } from '../graph/model.ts';
import { planGraph, type Plan } from '../graph/plan.ts';
import { formatPortType } from '../graph/port-types.ts';
import { nodeLines, shareNodes, shareText, type NodeLines } from '../graph/share-text.ts';
import { registry } from '../nodes/all.ts';
import { packsEdges, type DeployRecord, type RecordTopic } from './control-plane.ts';
import { checkPipelineText } from './pipeline-file.ts';

/** What a record plans to: the checked graph and its plan, or every diagnostic that stops it (warnings too). */
export interface PlannedRecord {
  graph?: Graph;
  plan?: Plan;
  diagnostics: Diagnostic[];
}

/**
 * Checks and plans a pipeline as a record carries it. Workers' capability
 * reports take the place of the declared `offers` (a warning where they
 * differ).
 */
export function planRecord(input: RecordPipeline): PlannedRecord {
  const checked = checkRecordText(input, input.text);
  const { diagnostics } = checked;
  if (!checked.graph) return { diagnostics };
  const merged = mergeReportedCapabilities(checked.graph.hosts, input.capabilities);
  diagnostics.push(...merged.diagnostics);
  const planned = planGraph({ graph: checked.graph, text: input.text, hosts: merged.hosts });
  diagnostics.push(...planned.diagnostics);
  return planned.plan ? { graph: checked.graph, plan: planned.plan, diagnostics } : { diagnostics };
}

/** The pipeline as a record carries it. */
export interface RecordPipeline {
  file: string;
  text: string;
  params: Record<string, unknown>;
  hosts?: { file: string; text: string };
  capabilities: readonly CapabilityReport[];
}

/** Checks `text` (the record's, or a share of it) with the record's hosts file and params. */
function checkRecordText(input: RecordPipeline, text: string): { graph?: Graph; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  let deployment: Deployment | undefined;
  if (input.hosts) {
    const read = parseHostsFile(input.hosts.file, input.hosts.text);
    diagnostics.push(...read.diagnostics);
    if (!read.deployment) return { diagnostics };
    deployment = read.deployment;
  }
  const checked = checkPipelineText(input.file, text, input.params, deployment);
  diagnostics.push(...checked.diagnostics);
  return checked.graph ? { graph: checked.graph, diagnostics } : { diagnostics };
}

/** What a record of format 2 or 3 carries beside the pipeline: the plan, where each node is written, the topics deploy creates. */
export interface RecordPlan {
  plan: Plan;
  lines?: NodeLines;
  topics: RecordTopic[];
}

/**
 * The plan part of a record for a checked and planned pipeline: the topics
 * are those of every cross-host edge (each once), as the sending hosts'
 * shares name them.
 */
export function recordPlan(planned: { graph: Graph; plan: Plan }, text: string): RecordPlan {
  const topics = new Map<string, RecordTopic>();
  const lines = nodeLines(planned.graph, text);
  for (const host of planned.plan.hosts) {
    for (const t of hostGraph({ graph: planned.graph, plan: planned.plan, host: host.name, registry }).transports) {
      if (t.end === 'send' && !topics.has(t.topic)) topics.set(t.topic, { topic: t.topic, partitions: t.partitions, brokers: t.brokers });
    }
  }
  return { plan: planned.plan, ...(lines && { lines }), topics: [...topics.values()] };
}

/** One host's share of a record: its graph and transport nodes, or the diagnostics that stop it. */
export interface HostShare {
  graph?: Graph;
  /** The checked graph of every host, as planned (what `worker --ui` draws); absent when only the share was checked. */
  whole?: Graph;
  plan?: Plan;
  transports: TransportNode[];
  diagnostics: Diagnostic[];
  /** How the pipeline was checked: the host's share alone, the whole file against the record's plan, or the whole file planned here (format 1). */
  checked: 'share' | 'whole' | 'whole and planned';
}

/**
 * Cuts out `host`'s share of a record. For formats 2 to 4, with the record's
 * plan: the share's text alone is checked, unless `whole` is asked (the
 * host's page draws every node) or the share does not stand alone (it
 * fails its check, or its edges' types differ from the plan's); then the
 * whole file is. Format 1 is checked and planned whole. Format 3 packs its
 * Kafka edges of events and Bytes, format 4 those of media packets too: a
 * record written before packing runs as it did.
 */
export function shareOfRecord(record: DeployRecord, host: string, options: { whole?: boolean } = {}): HostShare {
  if (record.format === 1) {
    const planned = planRecord(record);
    if (!planned.plan) return { transports: [], diagnostics: planned.diagnostics, checked: 'whole and planned' };
    return cut({ graph: planned.graph!, whole: planned.graph!, plan: planned.plan, diagnostics: planned.diagnostics, checked: 'whole and planned', packed: { events: false, media: false } }, host);
  }
  const { plan, lines } = record;
  if (lines && !options.whole) {
    const keep = shareNodes(plan, host);
    const checked = checkRecordText(record, shareText(record.text, lines, keep));
    if (checked.graph && agrees(checked.graph, plan, keep)) {
      return cut({ graph: checked.graph, plan, diagnostics: ownWarnings(checked.diagnostics, plan, lines, host), checked: 'share', packed: packsEdges(record) }, host);
    }
  }
  const checked = checkRecordText(record, record.text);
  if (!checked.graph) return { transports: [], diagnostics: checked.diagnostics, checked: 'whole' };
  if (!agrees(checked.graph, plan, new Set(plan.nodes.map((n) => n.name)))) {
    const diagnostic: Diagnostic = { file: record.file, line: 1, col: 1, severity: 'error', code: 'bad_field', message: `the deployment record's plan does not match its pipeline (version ${record.version})`, hint: 'deploy it again with `streams deploy`' };
    return { transports: [], diagnostics: [...checked.diagnostics, diagnostic], checked: 'whole' };
  }
  return cut({ graph: checked.graph, whole: checked.graph, plan, diagnostics: checked.diagnostics, checked: 'whole', packed: packsEdges(record) }, host);
}

/** The host's graph from a checked graph (the whole or the share) and the plan. */
function cut(from: { graph: Graph; whole?: Graph; plan: Plan; diagnostics: Diagnostic[]; checked: HostShare['checked']; packed: PackedEdges }, host: string): HostShare {
  const share = hostGraph({ graph: from.graph, plan: from.plan, host, registry, packed: from.packed });
  const diagnostics = [...from.diagnostics, ...share.diagnostics];
  if (!share.graph) return { transports: [], diagnostics, checked: from.checked };
  return { graph: share.graph, ...(from.whole && { whole: from.whole }), plan: from.plan, transports: share.transports, diagnostics, checked: from.checked };
}

/**
 * Whether a checked graph is the plan's nodes `names` as the plan has them:
 * those nodes and no other, each with its operator, and the edges into them
 * with their types, no more and no fewer.
 */
function agrees(graph: Graph, plan: Plan, names: ReadonlySet<string>): boolean {
  if (graph.nodes.size !== names.size) return false;
  for (const planned of plan.nodes) if (names.has(planned.name) && graph.nodes.get(planned.name)?.op !== planned.op) return false;
  const types = new Map(graph.edges.map((e) => [edgeKey(e), e.type]));
  let into = 0;
  for (const edge of plan.edges) {
    if (!names.has(edge.to)) continue;
    into++;
    const type = types.get(edgeKey(edge));
    if (type === undefined || formatPortType(type) !== edge.type) return false;
  }
  return into === graph.edges.length;
}

/**
 * The share check's diagnostics, less the warnings that only cutting made:
 * an output read on another host is unread in the share, so `unused_output`
 * is kept only for the host's own nodes (the whole check's other warnings
 * were shown by deploy).
 */
function ownWarnings(diagnostics: Diagnostic[], plan: Plan, lines: NodeLines, host: string): Diagnostic[] {
  const own = plan.nodes.filter((n) => n.hosts.includes(host)).map((n) => lines[n.name]).filter((range) => range !== undefined);
  return diagnostics.filter((d) => d.code !== 'unused_output' || own.some(([first, last]) => d.line >= first && d.line <= last));
}
