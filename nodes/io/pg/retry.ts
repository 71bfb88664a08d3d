/**
 * How the PostgreSQL operators retry against their server (the retry loop
 * itself is `native/postgres/client.ts`), and the error of a node whose
 * settings do not fit the database.
 */
import { NodeError, retryDelay, type NodeContext } from '../../../runtime/api.ts';
import type { RetryOptions } from '../../../native/postgres/client.ts';

/** Retries against `url` with the default backoff (100 ms up to 5 s), until `signal` (by default the node's) aborts. */
export function retryOptions(ctx: NodeContext<unknown>, url: string, signal: AbortSignal = ctx.signal): RetryOptions {
  return { url, signal, retryDelayMs: retryDelay };
}

/** A problem in the node's settings against the database (a missing table or column), retried until fixed. */
export class ConfigurationError extends NodeError {
  constructor(message: string) {
    super('pg_configuration', message);
    this.name = 'ConfigurationError';
  }
}
