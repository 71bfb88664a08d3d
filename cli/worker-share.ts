/**
 * From a deployment record to what one host runs: the record's pipeline
 * checked (with its hosts file and params), planned over the hosts as the
 * workers reported them, and cut to the host's share. `streams deploy`
 * runs the same steps before it publishes, so a record every worker would
 * reject is never published.
 */
import type { Diagnostic } from '../graph/diagnostics.ts';
import { hostGraph, type TransportNode } from '../graph/host-graph.ts';
import { mergeReportedCapabilities, parseHostsFile, type CapabilityReport, type Deployment } from '../graph/hosts-file.ts';
import type { Graph } from '../graph/model.ts';
import { planGraph, type Plan } from '../graph/plan.ts';
import { registry } from '../nodes/registry.ts';
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
export function planRecord(input: { file: string; text: string; params: Record<string, unknown>; hosts?: { file: string; text: string }; capabilities: readonly CapabilityReport[] }): PlannedRecord {
  const diagnostics: Diagnostic[] = [];
  let deployment: Deployment | undefined;
  if (input.hosts) {
    const read = parseHostsFile(input.hosts.file, input.hosts.text);
    diagnostics.push(...read.diagnostics);
    if (!read.deployment) return { diagnostics };
    deployment = read.deployment;
  }
  const checked = checkPipelineText(input.file, input.text, input.params, deployment);
  diagnostics.push(...checked.diagnostics);
  if (!checked.graph) return { diagnostics };
  const merged = mergeReportedCapabilities(checked.graph.hosts, input.capabilities);
  diagnostics.push(...merged.diagnostics);
  const planned = planGraph({ graph: checked.graph, text: input.text, hosts: merged.hosts });
  diagnostics.push(...planned.diagnostics);
  return planned.plan ? { graph: checked.graph, plan: planned.plan, diagnostics } : { diagnostics };
}

/** One host's share of a record: its graph and transport nodes, or the diagnostics that stop it. */
export interface HostShare {
  graph?: Graph;
  /** The checked graph of every host, as planned (what `worker --ui` draws). */
  whole?: Graph;
  plan?: Plan;
  transports: TransportNode[];
  diagnostics: Diagnostic[];
}

/** Plans a record and cuts out `host`'s share. */
export function shareOfRecord(input: Parameters<typeof planRecord>[0], host: string): HostShare {
  const planned = planRecord(input);
  if (!planned.plan) return { transports: [], diagnostics: planned.diagnostics };
  const share = hostGraph({ graph: planned.graph!, plan: planned.plan, host, registry });
  const diagnostics = [...planned.diagnostics, ...share.diagnostics];
  return share.graph ? { graph: share.graph, whole: planned.graph, plan: planned.plan, transports: share.transports, diagnostics } : { transports: [], diagnostics };
}
