/**
 * The control plane of `streams deploy` and `streams worker`: the
 * deployment record (a pipeline's text, params, hosts file and the workers'
 * capability reports, versioned), how a new version is announced, and what
 * each worker reports back (applied version, heartbeat, capabilities).
 * `ControlPlane` is what deploy and worker use; Redis
 * (`control-plane-redis.ts`) and Kafka (`control-plane-kafka.ts`) implement
 * it. The formats are in `docs/many-hosts.md`.
 */
import { z } from '../graph/settings.ts';
import type { CapabilityReport } from '../graph/hosts-file.ts';
import { requirements, type Requirement } from '../graph/operator-spec.ts';
import type { ClientOwner } from '../native/client-owner.ts';
import type { PackedEdges } from '../graph/host-graph.ts';
import { planVersion, type Plan } from '../graph/plan.ts';
import { UsageError } from './usage-error.ts';

/**
 * The newest version of the record's shape, the one this worker reads at
 * most and reports (`reads`); deploy writes the newest format every planned
 * host reads (`recordFormatFor`). Format 2 carries
 * the plan (`plan`, `lines`, `topics`): deploy plans once and creates the
 * topics, and each worker checks only its share. Format 3 is format 2 whose
 * Kafka edges of events and Bytes are packed (several records a message):
 * a worker older than packing refuses it instead of reading packs as
 * records. Format 4 is format 3 whose edges of media packets are packed
 * too: a worker of format 3 reads its media edges one packet a message, so
 * it refuses format 4 rather than send a media packet it cannot read.
 * Formats 1 (the pipeline alone, each worker checking and planning all of
 * it), 2 and 3 are still read, and run as they were written.
 */
export const recordFormat = 4;

const capabilityReport = z.object({
  host: z.string().min(1),
  offers: z.array(z.enum(requirements as unknown as [Requirement, ...Requirement[]])).readonly(),
  listen: z.array(z.string()).readonly().optional(),
  reads: z.number().int().positive().optional(),
});

const transport = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }),
  z.object({ kind: z.literal('kafka'), carries: z.enum(['events', 'media']), topic: z.string().min(1), partitions: z.number().int().positive(), key: z.string().optional(), brokers: z.array(z.string()) }),
  z.object({ kind: z.literal('object-store+http-pull'), store: z.string(), prefix: z.string(), pullFrom: z.array(z.string()), retain: z.string().optional() }),
]);

/** The plan as `planGraph` returns it (`streams plan --format json`); typed as `Plan` so that a change there must show here. */
const plan: z.ZodType<Plan> = z.object({
  version: z.literal(planVersion),
  graph: z.string().min(1),
  nodes: z.array(z.object({ name: z.string().min(1), op: z.string(), instances: z.array(z.string()), hosts: z.array(z.string()), key: z.string().optional() })),
  edges: z.array(z.object({ from: z.string(), fromPort: z.string(), to: z.string(), toPort: z.string(), type: z.string(), transport })),
  hosts: z.array(z.object({ name: z.string().min(1), role: z.string().optional(), region: z.string().optional(), labels: z.record(z.string(), z.string()), offers: z.array(z.string()), listen: z.array(z.string()).optional(), url: z.string().optional() })),
});

/** A Kafka topic of a cross-host edge, as deploy created it. */
const recordTopic = z.object({ topic: z.string().min(1), partitions: z.number().int().positive(), brokers: z.array(z.string()) });

const recordFields = {
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
};

const planFields = {
  ...recordFields,
  /** The plan deploy made: every worker runs its share of this one. */
  plan,
  /** Where each node is written in `text`; absent when the file cannot be cut by lines (a worker then checks it whole). */
  lines: z.record(z.string(), z.tuple([z.number().int().positive(), z.number().int().positive()])).optional(),
  /** The topics of the cross-host edges, created by deploy before it published. */
  topics: z.array(recordTopic),
};

const deployRecord = z.discriminatedUnion('format', [
  z.object({ format: z.literal(1), ...recordFields }),
  z.object({ format: z.literal(2), ...planFields }),
  /** Format 2 with packed Kafka edges of events and Bytes. */
  z.object({ format: z.literal(3), ...planFields }),
  /** Format 3 with packed Kafka edges of media packets too. */
  z.object({ format: z.literal(4), ...planFields }),
]);

/** Which of a record's Kafka edges carry several records a message: events and Bytes from format 3 on, media packets from format 4 on. */
export function packsEdges(record: Pick<DeployRecord, 'format'>): PackedEdges {
  return { events: record.format >= 3, media: record.format >= 4 };
}

/**
 * The oldest format deploy writes, the first to carry the plan; also what a
 * worker is taken to read when its capability report does not say (it is
 * older than the report's `reads`, or has not reported): every worker since
 * deploy plans reads it.
 */
export const oldestPlanFormat = 2;

/** The formats deploy writes. */
export type PlanFormat = 2 | 3 | 4;

/**
 * The record format deploy writes for a plan over `hosts`: the newest that
 * every one of them reads (its worker's report's `reads`, `oldestPlanFormat`
 * when it does not say), at most `recordFormat`. So an edge is packed only
 * when every host reads its packs: a worker refuses a record of a newer
 * format and keeps running its old version, whose consumers would send
 * packs to dead letters. `behind` names the hosts that hold the format
 * below `recordFormat`; `error` names a host that reads no format deploy
 * writes. Pure.
 *
 * @example
 * recordFormatFor(['a', 'b'], [{ host: 'a', offers: [], reads: 4 }, { host: 'b', offers: [], reads: 3 }]); // { format: 3, behind: ['b'] }
 */
export function recordFormatFor(hosts: readonly string[], reports: readonly CapabilityReport[]): { format: PlanFormat; behind: string[] } | { error: string } {
  const byHost = new Map(reports.map((r) => [r.host, r]));
  const reads = (host: string): number => Math.min(recordFormat, byHost.get(host)?.reads ?? oldestPlanFormat);
  const unreadable = hosts.find((host) => reads(host) < oldestPlanFormat);
  if (unreadable !== undefined) {
    return { error: `host \`${unreadable}\`'s worker reads deployment records of format ${reads(unreadable)} at most, and deploy writes format ${oldestPlanFormat} or newer: upgrade \`streams\` on host \`${unreadable}\`` };
  }
  const format = Math.min(recordFormat, ...hosts.map(reads)) as PlanFormat;
  return { format, behind: hosts.filter((host) => reads(host) < recordFormat) };
}

/** One published deployment. */
export type DeployRecord = z.output<typeof deployRecord>;

/** A topic deploy creates for a cross-host edge. */
export type RecordTopic = z.output<typeof recordTopic>;

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

/** A record as deploy hands it to `publish` (a format with the plan, see `recordFormatFor`): the control plane gives it its version. */
export type UnversionedRecord = Omit<Extract<DeployRecord, { format: PlanFormat }>, 'version'>;

/**
 * Reads a record from the control plane: its text parsed and checked for
 * shape, or why not. `version` is given where the control plane numbers
 * records outside their text (Kafka: the record's offset), and replaces
 * whatever the text holds.
 */
export function parseRecord(text: string | null, version?: number): { record?: DeployRecord; error?: string } {
  if (text === null) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `the deployment record is not JSON: ${(error as Error).message}` };
  }
  if (version !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) value = { ...value, version };
  const newer = newerFormat(value);
  if (newer) return { error: newer };
  const parsed = deployRecord.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `the deployment record is malformed: \`${issue.path.join('.') || '(record)'}\`: ${issue.message}` };
  }
  return { record: parsed.data };
}

/**
 * Why a record of a format above `recordFormat` is refused, naming its file
 * and version: its meaning changed in a way this worker cannot run (format 3
 * packs records, format 4 media packets too), so running it as an older
 * format would lose data.
 */
function newerFormat(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { format, file, version } = value as Record<string, unknown>;
  if (typeof format !== 'number' || !Number.isInteger(format) || format <= recordFormat) return undefined;
  const which = [typeof file === 'string' && `\`${file}\``, typeof version === 'number' && `version ${version}`].filter(Boolean).join(' ');
  return `${which ? `${which}: ` : ''}the deployment record has format ${format}, newer than this worker reads (formats 1 to ${recordFormat}): upgrade \`streams\` on this host to the version deploy runs`;
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

/** One pipeline's deployment on a control plane, as `streams deploy` and `streams worker` use it. */
export interface ControlPlane {
  /** Where it is, as messages name it (no credentials). */
  readonly address: string;
  /**
   * Stores the record as the pipeline's next version and announces it;
   * resolves with that version. Two publishes at once get two versions, and
   * the record kept is the one of the higher version.
   */
  publish(record: UnversionedRecord): Promise<number>;
  /** The current record, checked for shape, or why it is unreadable; `{}` when nothing is published. */
  current(): Promise<{ record?: DeployRecord; error?: string }>;
  /**
   * The current record's version without reading the record (a large
   * pipeline's is megabytes); undefined when nothing is published. A worker
   * polls this, and reads `current` only when it is new.
   */
  latest(): Promise<number | undefined>;
  /** Calls `changed` whenever a new version may have been published (the caller reads `current`). */
  watch(changed: () => void): Promise<void>;
  /** Stores a worker's capability report under its host. */
  reportCapabilities(report: CapabilityReport): Promise<void>;
  /** host → capability report JSON, every report stored so far. */
  capabilities(): Promise<Record<string, string>>;
  /** Stores a worker's applied (or rejected) report under its host. */
  reportApplied(host: string, report: AppliedReport): Promise<void>;
  /** host → applied report JSON. */
  applied(): Promise<Record<string, string>>;
  /** Marks the host's worker alive now. */
  heartbeat(host: string): Promise<void>;
  /** host → epoch ms of its worker's last heartbeat. */
  heartbeats(): Promise<Record<string, string>>;
  /** Removes the host's heartbeat: its worker stopped cleanly. */
  leave(host: string): Promise<void>;
  close(): Promise<void>;
}

/** A parsed `--control` URL. */
export type ControlAddress = { kind: 'redis'; url: string } | { kind: 'kafka'; brokers: string[] };

/** Reads `--control`: `redis://HOST:PORT` (or `rediss://`) or `kafka://BROKER[,BROKER...]`. */
export function controlAddress(value: unknown): ControlAddress {
  const usage = 'redis://HOST:PORT or kafka://BROKER[,BROKER]';
  if (typeof value !== 'string' || value === '') throw new UsageError(`--control is required: ${usage}`);
  if (/^rediss?:\/\//.test(value)) return { kind: 'redis', url: value };
  if (value.startsWith('kafka://')) {
    const brokers = value.slice('kafka://'.length).replace(/\/+$/, '').split(',').map((b) => b.trim());
    const bad = brokers.find((b) => !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b));
    if (bad !== undefined) throw new UsageError(`--control kafka://: \`${bad}\` is not a broker HOST:PORT (in \`${value}\`)`);
    return { kind: 'kafka', brokers };
  }
  throw new UsageError(`--control takes ${usage}, got \`${value}\``);
}

/** How long `openControlPlane` waits for the control plane to answer before it names it unreachable. */
export const connectTimeoutMs = 10_000;

/** Opens one pipeline's deployment on the control plane `--control` names; rejects with a message naming the address. */
export async function openControlPlane(address: ControlAddress, pipeline: string, who: ControlClient): Promise<ControlPlane> {
  if (address.kind === 'redis') return (await import('./control-plane-redis.ts')).openRedisControlPlane(address.url, pipeline, who);
  return (await import('./control-plane-kafka.ts')).openKafkaControlPlane(address.brokers, pipeline, who);
}

/**
 * Who opens a control plane: deploy (`client` only) fails fast when it is
 * unreachable; a worker (with `owner`) keeps its connections and logs
 * through `owner` while it waits for the control plane to come back.
 */
export interface ControlClient {
  /** A name for the connections (`deploy`, `worker-a`). */
  client: string;
  owner?: ClientOwner;
}
