/**
 * `streams worker --host NAME --control redis://HOST:PORT|kafka://BROKER --name PIPELINE`:
 * runs one host's share of a deployed pipeline. It reports what its host
 * really has, reads the current deployment record, checks its share of the
 * record's plan (`worker-share.ts`; a record of format 1 it plans itself:
 * the planner is deterministic, so every worker computes the same plan),
 * runs its share on an Engine, applies each new version as a hot reload, and
 * reports back the version it applied. A bad record is logged with its
 * diagnostics and the running version is kept.
 */
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { diffGraphs, isEmptyDiff, type GraphDiff } from '../graph/diff.ts';
import type { CapabilityReport } from '../graph/hosts-file.ts';
import type { Requirement } from '../graph/operator-spec.ts';
import type { TransportNode } from '../graph/host-graph.ts';
import { ffmpegVersion } from '../native/ffmpeg/version.ts';
import { ensureTopics, errorMessages, preloadKafka } from '../native/kafka/client.ts';
import { Engine } from '../runtime/engine.ts';
import { openStateStore, type StateStore } from '../runtime/state/store.ts';
import { createLogger, type LogLevel } from '../runtime/log.ts';
import type { Logger } from '../runtime/types.ts';
import { parseDuration } from '../graph/units.ts';
import { registry } from '../nodes/all.ts';
import { controlAddress, openControlPlane, recordFormat, type AppliedReport, type ControlAddress, type ControlPlane } from './control-plane.ts';
import { UsageError } from './usage-error.ts';
import { shareOfRecord } from './worker-share.ts';
import type { Tracing } from '../runtime/tracing/provider.ts';
import { openTracing, traceFlags } from './trace-flags.ts';
import { uiOptions } from './run-ui.ts';
import type { WorkerUi } from './host-ui.ts';

const heartbeatMs = 2000;
const pollMs = 5000;

/** `--control`: `redis://HOST:PORT` or `kafka://BROKER[,BROKER]`. */
export function controlUrl(value: unknown): ControlAddress {
  return controlAddress(value);
}

/** What this host really has: ffmpeg when `ffmpeg -version` runs, a display when `DISPLAY` is set, and listeners; and the record format this worker reads. */
export async function probeCapabilities(host: string, env: NodeJS.ProcessEnv = process.env): Promise<CapabilityReport & { ffmpeg?: string }> {
  const offers: Requirement[] = ['listen'];
  const ffmpeg = await ffmpegVersion(env.STREAMS_FFMPEG ?? 'ffmpeg');
  if (ffmpeg) offers.push('ffmpeg');
  if (env.DISPLAY) offers.push('display');
  // `reads`: deploy writes no record format newer than every planned host reads.
  return { host, offers, reads: recordFormat, ...(ffmpeg && { ffmpeg }) };
}

export async function workerCommand(values: Record<string, unknown>, args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError('worker takes no file: it runs what `streams deploy` publishes');
  const host = values.host as string | undefined;
  if (!host || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(host)) throw new UsageError('--host NAME is required (the host\'s name in the plan)');
  const pipeline = values.name as string | undefined;
  if (!pipeline) throw new UsageError('--name PIPELINE is required (the pipeline\'s `name`)');
  // The name becomes Redis keys and Kafka topic names: only what a pipeline's `name` may hold.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(pipeline)) throw new UsageError(`--name \`${pipeline}\` is not a pipeline name (letters, digits, \`_\`, \`.\`, \`-\`)`);
  const url = controlUrl(values.control);
  const level = (values['log-level'] as LogLevel | undefined) ?? 'info';
  const drainTimeout = parseDuration(String(values['drain-timeout'] ?? '30s'));
  if (!drainTimeout.ok) throw new UsageError(`--drain-timeout: ${drainTimeout.reason}`);
  const traced = traceFlags(values);
  const log = createLogger(level).child({ host });
  const ui = uiOptions(values, process.env);
  const owner = { node: `worker-${host}`, label: `worker \`${host}\``, log };
  const plane = await openControlPlane(url, pipeline, { client: `worker-${host}`, owner });

  // Keyed nodes keep their state per partition in the store every worker shares (docs/keyed-state.md).
  const state = typeof values.state === 'string' && values.state !== '' ? await openStateStore(values.state) : undefined;
  // Transports and Kafka control planes need the library: loaded now, not inside the first deployment.
  const [capabilities] = await Promise.all([probeCapabilities(host), preloadKafka()]);
  await plane.reportCapabilities({ host, offers: capabilities.offers, reads: capabilities.reads });
  log.info({ offers: capabilities.offers, ffmpeg: capabilities.ffmpeg ?? null, display: process.env.DISPLAY ?? null, control: plane.address }, 'reported this host\'s capabilities');

  const tracing = await openTracing(traced, { host, pipeline });
  // The admin server and `ws` are loaded only for `--ui`.
  const workerUi = ui ? new (await import('./host-ui.ts')).WorkerUi(ui, host, log) : undefined;
  const worker = new HostWorker({ host, plane, log, drainMs: drainTimeout.value, tracing, pipeline, ...(state && { state }), ...(workerUi && { ui: workerUi }) });
  const beat = (): void => void plane.heartbeat(host).catch(() => undefined);
  beat();
  const heartbeat = setInterval(beat, heartbeatMs);
  // The control plane's announcement may be missed (a reconnection): the record is read again this often.
  const poll = setInterval(() => worker.consider(), pollMs);
  await plane.watch(() => worker.consider());
  worker.consider();

  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const signal = await stopped;
  const second = (): void => process.exit(130);
  process.once('SIGINT', second);
  process.once('SIGTERM', second);
  log.info({ signal, version: worker.version ?? null }, 'draining: sources stop, records in flight reach their sinks (signal again to exit now)');
  clearInterval(heartbeat);
  clearInterval(poll);
  await worker.stop();
  await tracing?.shutdown().catch((error: Error) => log.warn({ error: error.message }, 'could not send the last traces'));
  await plane.leave(host).catch(() => undefined);
  await state?.close();
  await plane.close();
  log.info({ version: worker.version ?? null }, 'stopped');
  return 0;
}

interface WorkerOptions {
  host: string;
  plane: ControlPlane;
  log: Logger;
  drainMs: number;
  tracing?: Tracing;
  /** `--ui`: the whole deployed plan, this host's nodes live. */
  ui?: WorkerUi;
  pipeline: string;
  state?: StateStore;
}

/** The engine of one host and the version it runs; applies records one at a time. */
export class HostWorker {
  readonly #o: WorkerOptions;
  #engine: Engine | undefined;
  #finished = false;
  #queue: Promise<void> = Promise.resolve();
  #stopping = false;
  /** The version running; undefined before the first. */
  version: number | undefined;
  /** The last version looked at (applied or rejected), so it is not looked at twice. */
  #seen = 0;
  readonly #topics = new Set<string>();

  constructor(options: WorkerOptions) {
    this.#o = options;
  }

  /** Reads the record and applies it when its version is new. */
  consider(): Promise<void> {
    this.#queue = this.#queue.then(() => this.#consider()).catch((error: unknown) => {
      this.#o.log.error({ error: (error as Error).message }, 'applying the deployment record failed');
    });
    return this.#queue;
  }

  async #consider(): Promise<void> {
    if (this.#stopping) return;
    const { plane, log, host } = this.#o;
    // Polled every few seconds: the record (megabytes for a large pipeline) is read only when its version is new.
    const latest = await plane.latest();
    if (latest === undefined || latest <= this.#seen) return;
    const { record, error } = await plane.current();
    if (error) {
      // Not read again until the version moves: a record this worker cannot read stays unreadable.
      log.error({ version: latest, running: this.version ?? null }, `${error}; keeping the running version`);
      this.#seen = latest;
      // Reported, so that deploy names this host and why (a record of a newer format, say) instead of waiting for it.
      await this.#report({ version: latest, status: 'rejected', at: new Date().toISOString(), nodes: [], error, ...(this.version !== undefined && { running: this.version }) });
      return;
    }
    if (!record || record.version <= this.#seen) return;
    this.#seen = record.version;
    const started = Date.now();
    // The host's page draws every node: only then is the whole file checked.
    const share = shareOfRecord(record, host, { whole: this.#o.ui !== undefined });
    for (const d of share.diagnostics) log[d.severity === 'error' ? 'error' : 'warn']({ version: record.version }, formatDiagnostic(d));
    if (!share.graph) {
      log.error({ version: record.version, running: this.version ?? null }, `version ${record.version} is invalid; keeping ${this.version === undefined ? 'nothing running' : `version ${this.version}`}`);
      await this.#report({ version: record.version, status: 'rejected', at: new Date().toISOString(), nodes: [], error: share.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n'), ...(this.version !== undefined && { running: this.version }) });
      return;
    }
    if (!share.plan!.hosts.some((h) => h.name === host)) {
      log.warn({ version: record.version, hosts: share.plan!.hosts.map((h) => h.name) }, `host \`${host}\` is not one of the plan's hosts: it runs nothing (check --host)`);
    }
    // Formats 2 and 3: deploy created the topics.
    if (record.format === 1) await this.#ensureTopics(share.transports);
    const outcome = await this.#run(share.graph);
    if (outcome.status !== 'applied') {
      log.error({ version: record.version, cause: outcome.cause }, `version ${record.version} could not be applied; keeping version ${this.version ?? 'none'}`);
      await this.#report({ version: record.version, status: 'rejected', at: new Date().toISOString(), nodes: [], error: outcome.cause, ...(this.version !== undefined && { running: this.version }), diff: outcome.diff });
      return;
    }
    this.version = record.version;
    await this.#o.ui?.show(share.whole!, share.plan!, this.#engine);
    const nodes = [...share.graph.nodes.keys()];
    log.info({ version: record.version, ms: Date.now() - started, checked: share.checked, ...outcome.diff }, `running version ${record.version}: ${nodes.length === 0 ? 'no share on this host' : `${nodes.length} nodes`} (kept ${outcome.diff.kept.length}, replaced ${outcome.diff.replaced.length}, added ${outcome.diff.added.length}, removed ${outcome.diff.removed.length})`);
    await this.#report({ version: record.version, status: 'applied', at: new Date().toISOString(), nodes, diff: outcome.diff });
  }

  /** Starts the share, or reloads the running engine with it. */
  async #run(graph: NonNullable<ReturnType<typeof shareOfRecord>['graph']>): Promise<{ status: string; diff: GraphDiff; cause?: string }> {
    const engine = this.#engine;
    if (engine && !this.#finished) {
      const result = await engine.reload(graph, { deadlineMs: this.#o.drainMs });
      return { status: result.status, diff: result.diff, ...('cause' in result && { cause: result.cause }) };
    }
    // A finished share (its sources ran out) with nothing changed stays finished: running it again would repeat it.
    if (engine && isEmptyDiff(diffGraphs(engine.graph, graph))) return { status: 'applied', diff: diffGraphs(engine.graph, graph) };
    const { state, pipeline } = this.#o;
    const next = new Engine(graph, { registry, log: this.#o.log, onNodeFailure: 'continue', tracing: this.#o.tracing, ...(state && { partitionState: { store: state, pipeline } }) });
    this.#engine = next;
    this.#finished = false;
    next.done.then(
      () => this.#ended(next),
      (error: Error) => this.#ended(next, error),
    );
    next.start();
    return { status: 'applied', diff: { kept: [], replaced: [], added: [...graph.nodes.keys()], removed: [] } };
  }

  #ended(engine: Engine, error?: Error): void {
    if (engine !== this.#engine) return;
    this.#finished = true;
    if (this.#stopping) return;
    if (error) this.#o.log.error({ version: this.version ?? null, error: error.message }, 'the share stopped');
    else this.#o.log.info({ version: this.version ?? null }, 'the share finished: its sources ended');
  }

  /** For a record of format 1: creates the topics of the share's cross-host edges with their partitions; one that exists is left as it is. */
  async #ensureTopics(transports: readonly TransportNode[]): Promise<void> {
    const wanted = transports.filter((t) => !this.#topics.has(t.topic));
    if (wanted.length === 0) return;
    try {
      for (const { topic, error } of await ensureTopics(wanted[0].brokers, `ami-streams-worker-${this.#o.host}`, wanted)) this.#o.log.warn({ topic, error }, 'creating a transport topic failed; the broker may create it with its default partitions');
      for (const t of wanted) this.#topics.add(t.topic);
    } catch (error) {
      this.#o.log.warn({ error: errorMessages(error) }, 'listing the transport topics failed; the broker may create them with its default partitions');
    }
  }

  async #report(report: AppliedReport): Promise<void> {
    await this.#o.plane.reportApplied(this.#o.host, report);
  }

  /** Drains the running share. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#queue;
    if (this.#engine && !this.#finished) await this.#engine.drain({ deadlineMs: this.#o.drainMs }).catch(() => undefined);
    await this.#o.ui?.close();
  }
}
