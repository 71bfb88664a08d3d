/** Retry delays for connectors: reconnects, retried requests, broker outages. */

import { realClock, type Clock } from './clock.ts';

export { backoffDelay, retryDelay } from '../native/backoff.ts';

/**
 * A `Retry-After` header in milliseconds: delay-seconds or an HTTP date
 * (counted from `now`, the runtime's clock: `ctx.now()`); undefined when
 * absent or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Waits `ms` on `clock` (an operator passes its context, so that the wait
 * runs on the runtime's clock, virtual in tests); resolves early (false) when
 * `signal` aborts.
 *
 *   await sleep(retryDelay(failures), ctx.signal, ctx);
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Pick<Clock, 'schedule'> = realClock): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const cancel = clock.schedule(ms, function slept() {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    });
    function onAbort(): void {
      cancel();
      resolve(false);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
