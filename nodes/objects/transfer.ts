/**
 * What `objects.put` and `objects.get` share when they move bytes: a bounded
 * number of transfers at once, and retries with backoff of the failures
 * that may cure themselves (an unreachable server, a missing object on a
 * store that is not yet consistent). A failure that retrying cannot cure (a
 * bad key, refused credentials) returns at once.
 */
import { backoffDelay, duration, sleep, z } from '../../runtime/api.ts';
import { ObjectStoreError } from '../../native/s3/object-store.ts';

/**
 * The settings of transfers, for both operators: `moved` says what one
 * transfer does (`written`, `fetched`), `retried` when a retry helps.
 */
export function transferFields({ moved, retried }: { moved: string; retried: string }) {
  return {
    concurrency: z.number().int().min(1).max(64).default(8).meta({ description: `Objects ${moved} at once.`, examples: [16] }),
    retries: z.number().int().min(0).default(5).meta({ description: `Attempts after the first when ${retried}.`, examples: [10] }),
    retry_delay: duration().prefault('100ms').meta({ description: 'The wait before the first retry; it doubles at each one, up to 5 s.', examples: ['500ms'] }),
  };
}

/** A transfer's outcome: its value, or the error that ended its retries. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Runs `task` with retries: `retries` more attempts after the first, waiting from `delay` ms, doubling, up to 5 s. */
export async function withRetries<T>(task: () => Promise<T>, { retries, delay, signal }: { retries: number; delay: number; signal?: AbortSignal }): Promise<Outcome<T>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, value: await task() };
    } catch (error) {
      const curable = !(error instanceof ObjectStoreError) || error.cure === 'retry';
      if (!curable || attempt >= retries || signal?.aborted) return { ok: false, error };
      await sleep(backoffDelay(attempt, delay, 5_000), signal);
    }
  }
}

/** Runs `tasks` with at most `concurrency` at once; the outcomes are in the tasks' order. */
export async function inParallel<T>(tasks: ReadonlyArray<() => Promise<Outcome<T>>>, concurrency: number): Promise<Outcome<T>[]> {
  const outcomes = new Array<Outcome<T>>(tasks.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < tasks.length) {
      const index = next++;
      outcomes[index] = await tasks[index]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return outcomes;
}
