/**
 * When a node that failed (transiently) restarts: after a delay that grows
 * with each failure in a row, from 100 ms to at most 30 s, and that starts
 * afresh once the node has run well for a while, so a node that fails now
 * and then is not treated as one in a crash loop.
 */
import type { Clock } from './clock.ts';
import { backoffDelay } from './retry.ts';

/** Restarts wait at most this long. */
const maxBackoffMs = 30_000;
/** A node that ran this long without failing starts its backoff afresh. */
export const healthyRunMs = 30_000;

/** The restarts of one node: at most one waits at a time. */
export class RestartBackoff {
  readonly #clock: Clock;
  #failures = 0;
  #runningSince = 0;
  #cancel: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The node started (or restarted) now. */
  started(): void {
    this.#runningSince = this.#clock.now();
  }

  /** Whether a restart waits out its delay. */
  get waiting(): boolean {
    return this.#cancel !== undefined;
  }

  /** Counts a failure and calls `restart` after its delay; returns the delay and the failures in a row. */
  schedule(restart: () => void): { delayMs: number; failures: number } {
    // A node that ran well for a while before this failure is not in a crash loop.
    if (this.#clock.now() - this.#runningSince >= healthyRunMs) this.#failures = 0;
    this.#failures += 1;
    const delayMs = backoffDelay(this.#failures - 1, 100, maxBackoffMs);
    this.#cancel = this.#clock.schedule(delayMs, () => {
      this.#cancel = undefined;
      restart();
    });
    return { delayMs, failures: this.#failures };
  }

  /** Cancels the restart that waits, if one does; returns whether one did. */
  cancel(): boolean {
    if (!this.#cancel) return false;
    this.#cancel();
    this.#cancel = undefined;
    return true;
  }
}
