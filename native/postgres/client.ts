/**
 * PostgreSQL connections (node-postgres, imported when the first pool or
 * client opens): pools whose failures are logged with the owner and a
 * password-free URL, retries with backoff, the classification of server
 * errors, and identifier quoting. Used by the PostgreSQL operators and the
 * PostgreSQL state store.
 */
import type pg from 'pg';
import { NativeError, type ClientOwner, type RetryDelay } from '../client-owner.ts';
import { redactUrl } from '../redact-url.ts';

/** A connection of a pool, returned with `release()`. */
export type PoolClient = pg.PoolClient;

/** A pool of connections; node-postgres loads behind the first `connect`. */
export interface PostgresPool {
  connect(): Promise<PoolClient>;
  /** Closes every connection; resolves once they are closed. */
  end(): Promise<void>;
}

/** A pool for one owner; errors of idle connections (a server restart) are logged, never thrown. */
export function openPool(owner: ClientOwner, url: string, max: number): PostgresPool {
  const loading = import('pg').then(function createPool({ default: postgres }) {
    const pool = new postgres.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: `ami-streams:${owner.node}`.slice(0, 63),
    });
    pool.on('error', function idleConnectionLost(error: Error) {
      owner.log.warn({ url: redactUrl(url), error: error.message }, `${owner.label}: an idle connection to ${redactUrl(url)} was lost`);
    });
    return pool;
  });
  loading.catch(() => undefined);
  return {
    async connect() {
      return (await loading).connect();
    },
    async end() {
      await (await loading).end();
    },
  };
}

/** Opens one connection (no pool), for a client that holds a single session (the state store). */
export async function openClient(url: string, applicationName: string): Promise<pg.Client> {
  const { default: postgres } = await import('pg');
  const client = new postgres.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: applicationName });
  // A connection lost while idle must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  await client.connect().catch(async (error: unknown) => {
    await client.end().catch(() => undefined);
    throw error;
  });
  return client;
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

/** How `retrying` retries: against which server, the wait before each attempt, and until when. */
export interface RetryOptions {
  url: string;
  retryDelayMs: RetryDelay;
  /** Retries stop (throwing) once this aborts. */
  signal: AbortSignal;
}

/**
 * Runs `attempt` until it succeeds, waiting with backoff after each failure
 * and logging it as an error that names the owner and the URL (password
 * redacted). Stops (throwing) once `signal` aborts (the node is forced to
 * stop, or its subscription ends).
 */
export async function retrying<T>(ctx: ClientOwner, options: RetryOptions, what: string, attempt: () => Promise<T>): Promise<T> {
  const { url, signal } = options;
  const where = redactUrl(url);
  let failures = 0;
  for (;;) {
    try {
      const result = await attempt();
      if (failures > 0) ctx.log.info({ url: where, attempts: failures + 1 }, `${ctx.label}: ${what} succeeded after ${failures} failed attempts`);
      return result;
    } catch (error) {
      if (!isRetryable(error)) throw error;
      if (signal.aborted) throw new NativeError('stopped', `${ctx.label}: stopped while ${what} was failing: ${(error as Error).message}`, { cause: error });
      failures += 1;
      const delay = options.retryDelayMs(failures);
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
