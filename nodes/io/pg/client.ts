/**
 * Shared plumbing of the PostgreSQL operators: connection pools whose
 * failures are logged with the node and a password-free URL, retries with
 * backoff, error classes, and identifier quoting.
 */
import pg from 'pg';
import { backoffDelay, NodeError, redactUrl, type NodeContext } from '../../../runtime/api.ts';

export { redactUrl };

/** The longest wait between two attempts. */
export const maxBackoffMs = 5_000;

/** Exponential backoff from 100 ms, capped at `maxBackoffMs`, with jitter; `attempt` counts from 1. */
export function backoffMs(attempt: number): number {
  return backoffDelay(attempt - 1, 100, maxBackoffMs);
}

/** A pool for one node; errors of idle connections (a server restart) are logged, never thrown. */
export function openPool(ctx: NodeContext<unknown>, url: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: `ami-streams:${ctx.node}`.slice(0, 63),
  });
  pool.on('error', function idleConnectionLost(error: Error) {
    ctx.log.warn({ url: redactUrl(url), error: error.message }, `${ctx.label}: an idle connection to ${redactUrl(url)} was lost`);
  });
  return pool;
}

/** The SQLSTATE of a server error, if the error came from the server. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether the server refused this record's values (bad data, a constraint),
 * as opposed to the connection, the configuration or the server's state,
 * which are retried: classes 22 (data exception) and 23 (integrity
 * constraint), a row too big (54000) and a row hit twice by one upsert (21000).
 */
export function isRecordError(error: unknown): boolean {
  const state = sqlState(error);
  if (!state) return false;
  return state.startsWith('22') || state.startsWith('23') || state === '54000' || state === '21000';
}

/** Whether the connection that raised this error should be thrown away rather than reused. */
export function isConnectionBroken(error: unknown): boolean {
  const state = sqlState(error);
  return !state || state.startsWith('08') || state.startsWith('57') || state.startsWith('53');
}

/** Errors of our own code (a bug) end the retries; everything else (network, server, configuration) is retried. */
function isRetryable(error: unknown): boolean {
  return !(error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError);
}

/** A problem in the node's settings against the database (a missing table or column), retried until fixed. */
export class ConfigurationError extends NodeError {
  constructor(message: string) {
    super('pg_configuration', message);
    this.name = 'ConfigurationError';
  }
}

/**
 * Runs `attempt` until it succeeds, waiting with backoff after each failure
 * and logging it as an error that names the node and the URL (password
 * redacted). Stops (throwing) once `signal` aborts (the node is forced to
 * stop, or its subscription ends).
 */
export async function retrying<T>(ctx: NodeContext<unknown>, url: string, what: string, attempt: () => Promise<T>, signal: AbortSignal = ctx.signal): Promise<T> {
  const where = redactUrl(url);
  let failures = 0;
  for (;;) {
    try {
      const result = await attempt();
      if (failures > 0) ctx.log.info({ url: where, attempts: failures + 1 }, `${ctx.label}: ${what} succeeded after ${failures} failed attempts`);
      return result;
    } catch (error) {
      if (!isRetryable(error)) throw error;
      if (signal.aborted) throw new NodeError('stopped', `${ctx.label}: stopped while ${what} was failing: ${(error as Error).message}`, { cause: error });
      failures += 1;
      const delay = backoffMs(failures);
      const reason = (error as Error).message;
      const state = sqlState(error);
      ctx.log.error(
        { url: where, error: reason, ...(state ? { sqlstate: state } : {}), attempt: failures, retryInMs: delay },
        `${ctx.label}: ${what} on ${where} failed: ${reason}; retrying in ${delay} ms`,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

/** A SQL identifier, always quoted: `"name"`, embedded quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A table name, optionally schema-qualified with one dot (`analytics.readings`), quoted part by part. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}
