/**
 * The runtime's clock. Real by default; tests pass a virtual one so that
 * time-based operators run deterministically.
 */
export interface Clock {
  now(): number;
  /** Runs `fn` after `ms`; returns a cancel function. */
  schedule(ms: number, fn: () => void, options?: TimerOptions): () => void;
}

/** How a timer relates to the process. */
export interface TimerOptions {
  /**
   * False for a timer that must not hold the process open on its own (a
   * deadline for a goodbye that may never be needed); true by default.
   * Virtual clocks ignore it.
   */
  keepsProcessAlive?: boolean;
}

export const realClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn, options) {
    const timer = setTimeout(fn, ms);
    if (options?.keepsProcessAlive === false) timer.unref();
    return () => clearTimeout(timer);
  },
};
