/**
 * Per-client send bounds for servers that push to many clients (WebSocket,
 * server-sent events).
 * A client that reads slower than records arrive must not make the server
 * hold an ever-growing buffer for it: once what waits for it passes the
 * bound, it is disconnected and what it missed is counted as dropped.
 */

/** How much may wait for one client before it counts as slow. */
export interface ClientQueueLimits {
  /** Writes not yet handed to the operating system, counted while the socket holds bytes. */
  messages: number;
  /** Bytes buffered for the client (in the process, past the kernel's own buffer). */
  bytes: number;
}

/**
 * The send window of one client. `buffered` reads what the socket holds
 * (`ws.bufferedAmount`, `response.writableLength`); `pending` counts writes
 * whose callback has not run yet.
 */
export class SendWindow {
  readonly limits: ClientQueueLimits;
  #buffered: () => number;
  #pending = 0;

  constructor(limits: ClientQueueLimits, buffered: () => number) {
    this.limits = limits;
    this.#buffered = buffered;
  }

  /** Messages written and not yet flushed. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Whether a message of `bytes` may be written now. While the socket holds
   * nothing the operating system has taken every earlier write (their
   * callbacks may not have run yet), so anything fits; otherwise both bounds
   * apply. A message larger than the byte bound alone still goes to a client
   * with nothing waiting.
   */
  fits(bytes: number): boolean {
    const buffered = this.#buffered();
    if (buffered === 0) return true;
    return this.#pending < this.limits.messages && buffered + bytes <= this.limits.bytes;
  }

  /**
   * Counts a write; the returned function is its completion callback, which
   * the socket calls exactly once. It is one function per window, not one
   * per write: broadcasting allocates nothing per message.
   */
  track(): (error?: Error | null) => void {
    this.#pending += 1;
    return this.#written;
  }

  #written = (): void => {
    this.#pending -= 1;
  };
}
