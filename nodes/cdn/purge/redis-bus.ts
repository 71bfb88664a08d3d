/**
 * The purge bus over Redis: commands are PUBLISHed on the channel, acks on
 * `<channel>:acks`, and the registry is the sorted set `<channel>:edges`
 * (member: edge name, score: time of its last heartbeat in ms). Pub/sub
 * needs a connection of its own (a subscribed connection runs no other
 * command), so each side holds two: one subscribed, one for the rest.
 *
 * Redis pub/sub keeps nothing: an edge disconnected when a command is
 * published never sees it. That is why the sender waits for each
 * registered edge's ack and names those that did not answer, and why an
 * edge beats only while its subscription is up.
 */
import type { ClientOwner } from '../../../native/client-owner.ts';
import { retryDelay } from '../../../native/backoff.ts';
import { connectRedis, connectRedisOnce, type Redis } from '../../../native/redis/client.ts';
import { redactUrl } from '../../../native/redact-url.ts';
import { encodeBusMessage, PurgeBusError, type EdgeBus, type RawHandler, type SenderBus } from './bus.ts';
import { redisNames, redisTiming, type RegisteredEdge } from './registry.ts';

/** Subscribes `client` to `channel`, passing its messages (and only its) to `onMessage`. */
async function subscribe(client: Redis, channel: string, onMessage: RawHandler): Promise<void> {
  client.on('messageBuffer', function purgeMessage(from: Buffer, message: Buffer) {
    if (from.toString() === channel) onMessage(message);
  });
  // Resolves once the server has confirmed: from then on every PUBLISH reaches us.
  await client.subscribe(channel);
}

/**
 * An edge's side. Its clients reconnect with backoff for ever (an edge must
 * outlive a Redis restart) and ioredis subscribes again after a
 * reconnection; heartbeats are skipped while the subscription is down.
 */
export async function openRedisEdgeBus(url: string, channel: string, owner: ClientOwner): Promise<EdgeBus> {
  const names = redisNames(channel);
  const subscriber = await connectRedis(owner, { url, purpose: 'purge-listen', retryDelayMs: retryDelay });
  const client = await connectRedis(owner, { url, purpose: 'purge-ack', retryDelayMs: retryDelay });
  return {
    timing: redisTiming,
    listen: (onMessage) => subscribe(subscriber, names.commands, onMessage),
    async reply(ack) {
      await client.publish(names.acks, encodeBusMessage(ack));
    },
    async heartbeat(edge, at) {
      if (subscriber.status !== 'ready') throw new Error(`not subscribed to ${redactUrl(url)} (${subscriber.status})`);
      await client.zadd(names.registry, at, edge);
    },
    async close() {
      subscriber.disconnect();
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** A sender's side: fails fast (a command-line purge must not hang on a wrong URL). */
export async function openRedisSenderBus(url: string, channel: string, _owner: ClientOwner): Promise<SenderBus> {
  const names = redisNames(channel);
  let subscriber: Redis | undefined;
  let client: Redis | undefined;
  try {
    [subscriber, client] = await Promise.all([
      connectRedisOnce(url, { connectionName: 'ami-streams:purge:replies', describedAs: 'the purge bus (Redis)' }),
      connectRedisOnce(url, { connectionName: 'ami-streams:purge:send', describedAs: 'the purge bus (Redis)' }),
    ]);
  } catch (error) {
    subscriber?.disconnect();
    client?.disconnect();
    throw new PurgeBusError('bus_unreachable', (error as Error).message, { cause: error });
  }
  const sub = subscriber;
  const pub = client;
  // Connected: from now on reconnect for as long as the sender is open (a
  // sender kept by the admin API must outlive a Redis restart); commands
  // sent meanwhile fail after a few attempts and the purge reports it.
  for (const connection of [sub, pub]) connection.options.retryStrategy = retryDelay;
  return {
    timing: redisTiming,
    listenReplies: (onMessage) => subscribe(sub, names.acks, onMessage),
    async edges(now) {
      const horizon = now - redisTiming.forgetAfterMs;
      const [[, range], [, _removed]] = (await pub
        .multi()
        .zrangebyscore(names.registry, horizon, '+inf', 'WITHSCORES')
        .zremrangebyscore(names.registry, '-inf', `(${horizon}`)
        .exec()) as [[Error | null, string[]], [Error | null, number]];
      const entries: RegisteredEdge[] = [];
      for (let i = 0; i + 1 < range.length; i += 2) entries.push({ edge: range[i], lastSeen: Number(range[i + 1]) });
      return entries;
    },
    async publish(command) {
      await pub.publish(names.commands, encodeBusMessage(command));
    },
    notListening() {
      return sub.status === 'ready' ? undefined : `the reply subscription to Redis at ${redactUrl(url)} is down (${sub.status})`;
    },
    async close() {
      sub.disconnect();
      await pub.quit().catch(() => pub.disconnect());
    },
  };
}
