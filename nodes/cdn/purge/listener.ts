/**
 * An edge's purge listener: subscribes to the purge channel, registers the
 * edge, applies every command to the edge's cache once (by command id), and
 * acknowledges each on the reply channel with how many objects went. A
 * message that is not a valid command is logged (warn) and ignored; a cache
 * that throws is logged (error) and the ack carries the error, so the
 * sender reports that edge as failed, not as applied.
 */
import type { ClientLogger } from '../../../native/client-owner.ts';
import { openEdgeBus, PurgeBusError, type PurgeBusOptions } from './bus.ts';
import { edgeNameProblem, parseBusMessage, purgeProtocolVersion, RecentCommands, type PurgeCommand, type PurgeSelector } from './command.ts';
import { busOptionsProblem } from './registry.ts';

/** What a listener needs besides the bus: the edge's name (unique among the edges of the channel). */
export interface PurgeListenerOptions extends PurgeBusOptions {
  edge: string;
  /** Override of the transport's heartbeat period (tests). */
  heartbeatMs?: number;
}

/** Applies a selector to the edge's cache; returns how many objects it removed or marked stale. */
export type ApplyPurge = (selector: PurgeSelector) => number | Promise<number>;

/** A running listener. */
export interface PurgeListener {
  /** Unsubscribes and stops beating. The edge stays registered, so senders name it as missing until it is back or forgotten. */
  stop(): Promise<void>;
}

/**
 * Starts listening for purges on behalf of edge `options.edge`. Resolves
 * once subscribed and registered: from then on every command published on
 * the channel is applied and acknowledged. Rejects with a `PurgeBusError`
 * on bad options; with Redis it waits for the server (reconnecting with
 * backoff, each failure logged), with Kafka it rejects when the brokers
 * cannot be reached.
 *
 * @example
 * const listener = await startPurgeListener({ redis: 'redis://127.0.0.1:6379', channel: 'streams:cdn:purge', edge: 'edge-a' }, (s) => store.purge(s), log);
 */
export async function startPurgeListener(options: PurgeListenerOptions, apply: ApplyPurge, log: ClientLogger): Promise<PurgeListener> {
  const problem = busOptionsProblem(options) ?? edgeNameProblem(options.edge);
  if (problem) throw new PurgeBusError('bad_options', `purge listener: ${problem}`);
  const { edge, channel } = options;
  const label = `purge listener \`${edge}\``;
  const bus = await openEdgeBus(options, { node: edge, label, log });
  const recent = new RecentCommands();
  let stopped = false;

  async function applyOnce(command: PurgeCommand): Promise<{ removed: number; ms: number; error?: string }> {
    const started = performance.now();
    try {
      const removed = await apply(command.selector);
      return { removed: Number.isInteger(removed) && removed >= 0 ? removed : 0, ms: performance.now() - started };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log.error({ edge, id: command.id, selector: command.selector, error: reason }, `${label}: the cache failed to apply purge ${command.id}: ${reason}`);
      return { removed: 0, ms: performance.now() - started, error: reason };
    }
  }

  function receive(raw: Buffer): void {
    const parsed = parseBusMessage(raw);
    if (!parsed.ok) {
      log.warn({ edge, channel, reason: parsed.reason }, `${label}: ignored a message on \`${channel}\`: ${parsed.reason}`);
      return;
    }
    const { message } = parsed;
    // Probes position Kafka readers; acks and heartbeats do not travel on this channel.
    if (message.type !== 'purge' || stopped) return;
    let result = recent.get(message.id);
    const duplicate = result !== undefined;
    if (!result) {
      result = applyOnce(message);
      recent.remember(message.id, result);
    }
    result
      .then((outcome) => {
        log.debug({ edge, id: message.id, selector: message.selector, duplicate, ...outcome }, `${label}: ${duplicate ? 'acknowledged again' : 'applied'} purge ${message.id}`);
        return bus.reply({ v: purgeProtocolVersion, type: 'ack', id: message.id, edge, ...outcome });
      })
      .catch((error: unknown) => log.error({ edge, id: message.id, error: String(error) }, `${label}: cannot acknowledge purge ${message.id}: ${String(error)}`));
  }

  let beat: NodeJS.Timeout | undefined;
  try {
    await bus.listen(receive);
    await bus.heartbeat(edge, Date.now());
  } catch (error) {
    await bus.close();
    throw error;
  }
  let warned = false;
  beat = setInterval(function purgeHeartbeat() {
    bus.heartbeat(edge, Date.now()).then(
      () => {
        warned = false;
      },
      (error: unknown) => {
        // Once per outage: the clients log their own reconnection attempts.
        if (!warned) log.warn({ edge, error: String(error) }, `${label}: cannot register on \`${channel}\`: ${String(error)}`);
        warned = true;
      },
    );
  }, options.heartbeatMs ?? bus.timing.heartbeatMs);
  beat.unref();
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(beat);
      beat = undefined;
      await bus.close();
    },
  };
}
