/**
 * The control plane of `streams deploy` and `streams worker` over Redis:
 * the deployment record (a pipeline's text, params, hosts file and the
 * workers' capability reports, versioned), the channel that announces a new
 * version, and what each worker reports back (applied version, heartbeat,
 * capabilities). The format is in `docs/many-hosts.md`.
 */
import { z } from '../graph/settings.ts';
import type { CapabilityReport } from '../graph/hosts-file.ts';
import { requirements, type Requirement } from '../graph/operator-spec.ts';

/** The version of the record's shape. */
export const recordFormat = 1;

/** The Redis keys and channel of one pipeline's deployment. */
export function controlKeys(pipeline: string) {
  const base = `streams:deploy:${pipeline}`;
  return {
    /** The current record (a JSON string). */
    record: base,
    /** The version counter (`INCR`). */
    version: `${base}:version`,
    /** Pub/sub: the new version's number, once its record is stored. */
    channel: `${base}:changed`,
    /** Hash: host → `AppliedReport` JSON. */
    applied: `${base}:applied`,
    /** Hash: host → epoch ms of its worker's last heartbeat. */
    heartbeat: `${base}:heartbeat`,
    /** Hash: host → `CapabilityReport` JSON, written by a worker as it starts. */
    capabilities: `${base}:capabilities`,
  };
}

const capabilityReport = z.object({
  host: z.string().min(1),
  offers: z.array(z.enum(requirements as unknown as [Requirement, ...Requirement[]])).readonly(),
  listen: z.array(z.string()).readonly().optional(),
});

const deployRecord = z.object({
  format: z.literal(recordFormat),
  version: z.number().int().positive(),
  /** The pipeline's `name`. */
  pipeline: z.string().min(1),
  /** The pipeline file's name, as diagnostics show it. */
  file: z.string().min(1),
  text: z.string(),
  params: z.record(z.string(), z.unknown()),
  hosts: z.object({ file: z.string().min(1), text: z.string() }).optional(),
  /** The workers' capability reports the publisher saw: every worker plans over the same hosts. */
  capabilities: z.array(capabilityReport),
  published_at: z.string(),
});

/** One published deployment. */
export type DeployRecord = z.output<typeof deployRecord>;

/** What a worker reports once it has handled a version. */
export interface AppliedReport {
  version: number;
  status: 'applied' | 'rejected';
  /** ISO time. */
  at: string;
  /** The nodes the host runs (transport nodes included); empty when it has no share. */
  nodes: string[];
  /** What the reload did on this host. */
  diff?: { kept: string[]; replaced: string[]; added: string[]; removed: string[] };
  /** Why a version was rejected: the diagnostics, or the reload's cause. */
  error?: string;
  /** The version the host still runs after a rejection. */
  running?: number;
}

/** Reads a record from the control plane: its text parsed and checked for shape, or why not. */
export function parseRecord(text: string | null): { record?: DeployRecord; error?: string } {
  if (text === null) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `the deployment record is not JSON: ${(error as Error).message}` };
  }
  const parsed = deployRecord.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `the deployment record is malformed: \`${issue.path.join('.') || '(record)'}\`: ${issue.message}` };
  }
  return { record: parsed.data };
}

/** Reads the capability reports a hash holds; malformed entries are left out and named. */
export function parseCapabilities(hash: Record<string, string>): { reports: CapabilityReport[]; malformed: string[] } {
  const reports: CapabilityReport[] = [];
  const malformed: string[] = [];
  for (const host of Object.keys(hash).sort()) {
    try {
      const parsed = capabilityReport.safeParse(JSON.parse(hash[host]));
      if (parsed.success && parsed.data.host === host) reports.push(parsed.data);
      else malformed.push(host);
    } catch {
      malformed.push(host);
    }
  }
  return { reports, malformed };
}

/** Reads an applied report; undefined when malformed. */
export function parseApplied(text: string | undefined): AppliedReport | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as AppliedReport;
    return typeof value.version === 'number' && (value.status === 'applied' || value.status === 'rejected') ? value : undefined;
  } catch {
    return undefined;
  }
}
