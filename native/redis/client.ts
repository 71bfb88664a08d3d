/**
 * Redis connections (ioredis, imported when the first one opens): clients
 * that reconnect with backoff and log each failure with the owner's name
 * and a password-free URL, for the Redis operators, the Redis state store
 * and, later, cache purges across edges.
 */
import type { Redis } from 'ioredis';
import type { ClientOwner, RetryDelay } from '../client-owner.ts';
import { redactUrl } from '../redact-url.ts';

export type { Redis };

/** How a node's client connects: the URL, what it is for, and the wait before each reconnection. */
export interface RedisConnectOptions {
  url: string;
  /** What this connection does (`read`, `write`), shown in the server's `CLIENT LIST`. */
  purpose: string;
  retryDelayMs: RetryDelay;
}

/**
 * Opens a client for one node. Commands wait while the server is away
 * (`maxRetriesPerRequest: null`), so a sink's batch waits and backpressure
 * holds; each failed attempt is logged as an error naming the owner and the
 * URL (password redacted), and the client retries with backoff for ever.
 */
export async function connectRedis(owner: ClientOwner, options: RedisConnectOptions): Promise<Redis> {
  const { Redis: RedisClient } = await import('ioredis');
  const where = redactUrl(options.url);
  let failures = 0;
  let lastError = 'connection closed';
  const client = new RedisClient(options.url, {
    maxRetriesPerRequest: null,
    connectionName: `ami-streams:${owner.node}:${options.purpose}`.replace(/\s/g, '_'),
    retryStrategy: (attempt: number) => options.retryDelayMs(attempt),
  });
  client.on('error', function redisError(error: Error) {
    lastError = error.message;
  });
  client.on('reconnecting', function redisReconnecting(delay: number) {
    failures += 1;
    owner.log.error(
      { url: where, error: lastError, attempt: failures, retryInMs: delay },
      `${owner.label}: cannot reach Redis at ${where}: ${lastError}; retrying in ${delay} ms`,
    );
  });
  client.on('ready', function redisReady() {
    if (failures > 0) owner.log.info({ url: where, attempts: failures }, `${owner.label}: connected to Redis at ${where}`);
    failures = 0;
  });
  return client;
}

/**
 * Opens a client that fails fast: a few quick attempts, then a rejection
 * naming the URL (password redacted). For clients that must not start
 * without their server (the state store).
 */
export async function connectRedisOnce(url: string, options: { connectionName: string; /** How errors name the server: `the Redis state store`. */ describedAs: string }): Promise<Redis> {
  const { Redis: RedisClient } = await import('ioredis');
  let lastError = '';
  const client = new RedisClient(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    connectionName: options.connectionName,
    retryStrategy: (attempt: number) => (attempt > 3 ? null : 200 * attempt),
  });
  client.on('error', (error: Error) => {
    lastError = error.message;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot connect to ${options.describedAs} at ${redactUrl(url)}: ${lastError || (error as Error).message}`);
  }
  return client;
}

/** Whether an error is Redis's answer to a command (WRONGTYPE, NOGROUP, ...) rather than a lost connection. */
export function isReplyError(error: unknown): error is Error {
  // By name, not `instanceof`: the class lives in ioredis, which is not loaded until a client opens.
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * Settles like `promise`, or rejects `graceMs` after `signal` aborts if it
 * has not settled by then (a command queued while the server is away never
 * settles, and `disconnect()` does not flush it).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, graceMs = 0): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      if (graceMs <= 0) reject(new Error('aborted'));
      else timer = setTimeout(() => reject(new Error('aborted')), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}
