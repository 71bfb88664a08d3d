/**
 * The one backoff formula of the engine: node restarts, reconnects, retried
 * requests and broker outages all wait by it. It lives in `native/` because
 * the clients here need it and `native/` imports nothing from the runtime;
 * `runtime/retry.ts` re-exports it for the runtime and the operators.
 */

/**
 * Exponential backoff with jitter: attempt 0 waits about `initialMs`, each
 * next attempt twice as long, never more than `maxMs`. The jitter (between
 * half and all of the delay) keeps many clients from retrying in step.
 *
 * @example backoffDelay(3, 100, 5_000) // between 400 and 800
 */
export function backoffDelay(attempt: number, initialMs = 100, maxMs = 5_000, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (base / 2) * random());
}

/**
 * The clients' retry delay (Redis and PostgreSQL connections): the default
 * backoff, with `attempt` counted from 1 as their retry loops count it.
 */
export function retryDelay(attempt: number): number {
  return backoffDelay(attempt - 1);
}
