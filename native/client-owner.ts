/**
 * What a client in `native/` needs from whoever opens it: a name for its
 * connections, a label for messages, and somewhere to log. A running node's
 * context (`NodeContext`) has all three, so operators pass `ctx`; the
 * runtime passes its own. `native/` thereby logs without importing the
 * runtime.
 */

/** Structured logging, one event a line (the runtime's logger has this shape). */
export interface ClientLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** The owner of a client connection. */
export interface ClientOwner {
  /** A short name, used in connection names the server shows (`CLIENT LIST`, `pg_stat_activity`). */
  readonly node: string;
  /** How messages name the owner: `node \`name\` (file:line)`. */
  readonly label: string;
  readonly log: ClientLogger;
}

/** Milliseconds to wait before retry number `attempt` (counting from 1). */
export type RetryDelay = (attempt: number) => number;

/**
 * What can cure an error: `retry` when the other side may come back or free
 * up (a refused connection, a port still in use); `settings` when only a
 * change to the configuration can (a TLS file that cannot be read, a port
 * that needs privileges). The runtime restarts a node on the first and fails
 * it for good on the second.
 */
export type NativeCure = 'retry' | 'settings';

/** An error of a native client or server with a stable `code` (`address_in_use`, `tls_file`, ...) and what can cure it. */
export class NativeError extends Error {
  readonly code: string;
  readonly cure: NativeCure;
  constructor(code: string, message: string, options?: { cause?: unknown; cure?: NativeCure }) {
    super(message, options);
    this.name = 'NativeError';
    this.code = code;
    this.cure = options?.cure ?? 'retry';
  }
}
