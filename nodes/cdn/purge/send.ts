/**
 * The sender of purges: publishes one command and waits until every edge
 * alive in the registry has acknowledged it, or the timeout passes, then
 * says which edges applied it (objects removed, milliseconds from publish
 * to ack), which failed, and which are missing (registered but silent:
 * down, partitioned, or too slow).
 */
import type { ClientLogger, ClientOwner } from '../../../native/client-owner.ts';
import { openSenderBus, PurgeBusError, type PurgeBusOptions } from './bus.ts';
import { newPurgeCommand, parseBusMessage, purgeSelectorSchema, type PurgeAck, type PurgeSelector } from './command.ts';
import { busOptionsProblem, classifyEdges } from './registry.ts';

/** What one purge reached. Lists are sorted by edge name. */
export interface PurgeReport {
  /** The command's id (in the edges' logs). */
  id: string;
  /** Edges that applied it: objects removed (or marked stale), ms from publish to their ack, ms their cache took. */
  applied: Array<{ edge: string; removed: number; ms: number; applyMs: number }>;
  /** Edges whose cache failed to apply it, with the reason. */
  failed: Array<{ edge: string; error: string; ms: number }>;
  /** Registered edges that did not acknowledge: those alive were waited for until the timeout; stale ones were not. */
  missing: string[];
  /** The subset of `missing` silent before the purge (no heartbeat within the registry's alive window), with their last heartbeat (ms since the epoch). */
  stale: Array<{ edge: string; lastSeen: number }>;
  /** How many edges the registry held (alive or stale) when the command went out. */
  registered: number;
}

/** A sender kept open for many purges (the admin API, a benchmark): the reply subscription and the registry reader stay up between sends. */
export interface PurgeSender {
  send(selector: PurgeSelector, timeoutMs: number): Promise<PurgeReport>;
  close(): Promise<void>;
}

/** A transport's failure while sending, as the error callers expect. */
function busFailed(error: unknown): never {
  if (error instanceof PurgeBusError) throw error;
  throw new PurgeBusError('bus_unreachable', `purge: the bus failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

const quietLog: ClientLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Opens a sender on the bus. Rejects with a `PurgeBusError` on bad options
 * (`bad_options`) or an unreachable server (`bus_unreachable`).
 */
export async function openPurgeSender(options: PurgeBusOptions, log: ClientLogger = quietLog): Promise<PurgeSender> {
  const problem = busOptionsProblem(options);
  if (problem) throw new PurgeBusError('bad_options', `purge: ${problem}`);
  const owner: ClientOwner = { node: 'purge-sender', label: 'purge sender', log };
  const bus = await openSenderBus(options, owner);
  const waiting = new Map<string, (ack: PurgeAck) => void>();
  try {
    await bus.listenReplies(function purgeReply(raw) {
      const parsed = parseBusMessage(raw);
      if (!parsed.ok) log.warn({ channel: options.channel, reason: parsed.reason }, `purge sender: ignored a reply on \`${options.channel}\`: ${parsed.reason}`);
      else if (parsed.message.type === 'ack') waiting.get(parsed.message.id)?.(parsed.message);
    });
  } catch (error) {
    await bus.close();
    throw error;
  }

  return {
    async send(selector, timeoutMs) {
      const valid = purgeSelectorSchema.safeParse(selector);
      if (!valid.success) throw new PurgeBusError('bad_selector', `purge: bad selector: ${valid.error.issues[0].message}`);
      if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) throw new PurgeBusError('bad_options', `purge: the timeout must be a positive number of milliseconds, not ${timeoutMs}`);
      const deaf = bus.notListening();
      if (deaf) throw new PurgeBusError('bus_unreachable', `purge: ${deaf}`);
      const command = newPurgeCommand(valid.data);
      const now = Date.now();
      const entries = await bus.edges(now).catch(busFailed);
      const { alive, stale } = classifyEdges(entries, now, bus.timing);
      const expected = new Set(alive.map((entry) => entry.edge));
      const acks = new Map<string, { ack: PurgeAck; ms: number }>();
      let allIn: () => void = () => undefined;
      const everyAck = new Promise<void>((resolve) => {
        allIn = resolve;
      });
      const started = performance.now();
      waiting.set(command.id, function purgeAck(ack) {
        if (acks.has(ack.edge)) return;
        acks.set(ack.edge, { ack, ms: performance.now() - started });
        expected.delete(ack.edge);
        if (expected.size === 0) allIn();
      });
      let timer: NodeJS.Timeout | undefined;
      try {
        await bus.publish(command).catch(busFailed);
        if (expected.size > 0) await Promise.race([everyAck, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      } finally {
        clearTimeout(timer);
        waiting.delete(command.id);
      }
      const byName = (a: { edge: string }, b: { edge: string }): number => a.edge.localeCompare(b.edge);
      const answered = [...acks.values()];
      return {
        id: command.id,
        applied: answered.filter(({ ack }) => ack.error === undefined).map(({ ack, ms }) => ({ edge: ack.edge, removed: ack.removed, ms, applyMs: ack.ms })).sort(byName),
        failed: answered.filter(({ ack }) => ack.error !== undefined).map(({ ack, ms }) => ({ edge: ack.edge, error: ack.error ?? '', ms })).sort(byName),
        missing: [...alive, ...stale].map((entry) => entry.edge).filter((edge) => !acks.has(edge)).sort(),
        stale: stale.filter((entry) => !acks.has(entry.edge)),
        registered: alive.length + stale.length,
      };
    },
    close: () => bus.close(),
  };
}

/**
 * Publishes one purge and waits for every registered edge's ack or the
 * timeout: opens a sender, sends, closes. For many purges keep one
 * `openPurgeSender` open instead (each open subscribes and, on Kafka, joins
 * two consumer groups).
 *
 * @example
 * const report = await sendPurge({ redis: 'redis://127.0.0.1:6379', channel: 'streams:cdn:purge' }, { kind: 'tag', value: 'match-42', soft: false }, 5000);
 * if (report.missing.length > 0) console.error('not purged on', report.missing.join(', '));
 */
export async function sendPurge(options: PurgeBusOptions, selector: PurgeSelector, timeoutMs: number, log?: ClientLogger): Promise<PurgeReport> {
  const sender = await openPurgeSender(options, log);
  try {
    return await sender.send(selector, timeoutMs);
  } finally {
    await sender.close();
  }
}
