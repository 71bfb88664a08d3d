/**
 * Which edges exist: every listener registers its edge name with a
 * heartbeat (Redis: a sorted set `<channel>:edges`, edge → time of the last
 * heartbeat; Kafka: heartbeat records on the topic `<topic>.edges`), and a
 * sender reads the registry to know whose acknowledgement to wait for and
 * whom to name when one does not come.
 *
 * An edge whose last heartbeat is recent is *alive*: the sender waits for
 * its acknowledgement until the timeout. One silent for longer is *stale*:
 * it is reported as missing at once, without waiting, so that a purge does
 * not wait out the timeout for an edge known to be down. Past `forgetAfterMs`
 * it is *forgotten* (a decommissioned edge stops being reported). A listener
 * that stops keeps its entry: an edge that is down is named until it comes
 * back or is forgotten.
 */
import type { PurgeBusOptions } from './bus.ts';

/** How often listeners beat and how the sender reads their beats. */
export interface RegistryTiming {
  heartbeatMs: number;
  /** A heartbeat younger than this means the edge is listening. */
  aliveWithinMs: number;
  /** A heartbeat older than this means the edge is gone for good. */
  forgetAfterMs: number;
}

/** Redis: a ZADD every 2 s costs nothing; five missed beats mark the edge stale. */
export const redisTiming: RegistryTiming = { heartbeatMs: 2_000, aliveWithinMs: 10_000, forgetAfterMs: 10 * 60_000 };

/** Kafka: every beat is a record the senders read, so beat less often. */
export const kafkaTiming: RegistryTiming = { heartbeatMs: 5_000, aliveWithinMs: 20_000, forgetAfterMs: 10 * 60_000 };

/** One registry entry: the edge and when it last beat (ms since the epoch). */
export interface RegisteredEdge {
  edge: string;
  lastSeen: number;
}

/** The registry split by age, each list sorted by name. Forgotten entries are in neither. */
export function classifyEdges(entries: readonly RegisteredEdge[], now: number, timing: RegistryTiming): { alive: RegisteredEdge[]; stale: RegisteredEdge[] } {
  const latest = new Map<string, number>();
  for (const entry of entries) latest.set(entry.edge, Math.max(latest.get(entry.edge) ?? 0, entry.lastSeen));
  const alive: RegisteredEdge[] = [];
  const stale: RegisteredEdge[] = [];
  for (const [edge, lastSeen] of [...latest].sort(([a], [b]) => a.localeCompare(b))) {
    const age = now - lastSeen;
    if (age > timing.forgetAfterMs) continue;
    (age <= timing.aliveWithinMs ? alive : stale).push({ edge, lastSeen });
  }
  return { alive, stale };
}

/** The Redis keys and channels of a purge channel. */
export function redisNames(channel: string): { commands: string; acks: string; registry: string } {
  return { commands: channel, acks: `${channel}:acks`, registry: `${channel}:edges` };
}

/**
 * The Kafka topics of a purge channel. Kafka topic names allow only
 * letters, digits, `.`, `_` and `-`, so the channel's `:` become `.`
 * (`streams:cdn:purge` is the topic `streams.cdn.purge`).
 */
export function kafkaNames(channel: string): { commands: string; acks: string; registry: string } {
  const topic = channel.replaceAll(':', '.');
  return { commands: topic, acks: `${topic}.acks`, registry: `${topic}.edges` };
}

/** What is wrong with the bus options, in one line, or undefined: exactly one of `redis`/`kafka`, a usable channel name. */
export function busOptionsProblem(options: PurgeBusOptions): string | undefined {
  const hasRedis = options.redis !== undefined;
  const hasKafka = options.kafka !== undefined;
  if (hasRedis === hasKafka) return 'give exactly one of a Redis URL or Kafka brokers for the purge bus';
  if (hasRedis && !/^rediss?:\/\//.test(options.redis ?? '')) return `the Redis URL must start with redis:// or rediss://`;
  if (hasKafka && (options.kafka ?? []).length === 0) return 'the Kafka broker list is empty';
  if (!/^[A-Za-z0-9._:-]{1,200}$/.test(options.channel)) return `channel \`${options.channel}\`: use 1 to 200 letters, digits, \`.\`, \`_\`, \`:\` or \`-\` (it also names Kafka topics)`;
  return undefined;
}
