/**
 * The Redis state store (`--state redis://...`): one hash per pipeline,
 * `streams:state:<pipeline>`, with a field per node holding its snapshot as
 * JSON. A save replaces the whole hash atomically (MULTI/EXEC).
 */
import { Redis } from 'ioredis';
import { registerStateStore, type StateStore } from '../../../runtime/state-store.ts';
import { redactUrl } from './client.ts';

/** The prefix of the hash keys; the pipeline's name follows it. */
export const stateKeyPrefix = 'streams:state:';

/** Snapshots in Redis hashes; open one with `RedisStateStore.open(url)` or `openStateStore('redis://...')`. */
export class RedisStateStore implements StateStore {
  readonly url: string;
  readonly #client: Redis;

  /** Use `RedisStateStore.open`, which connects first so that a bad URL fails at once. */
  constructor(url: string, client: Redis) {
    this.url = url;
    this.#client = client;
  }

  /**
   * Connects to `url` (`redis://[user:password@]host:port[/db]`), failing
   * with the URL (password redacted) if the server cannot be reached after
   * a few quick attempts.
   */
  static async open(url: string): Promise<RedisStateStore> {
    const where = redactUrl(url);
    let lastError = '';
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 3,
      connectionName: 'ami-streams:state',
      retryStrategy: (attempt: number) => (attempt > 3 ? null : 200 * attempt),
    });
    client.on('error', (error: Error) => {
      lastError = error.message;
    });
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new Error(`cannot connect to the Redis state store at ${where}: ${lastError || (error as Error).message}`);
    }
    return new RedisStateStore(url, client);
  }

  async load(pipeline: string): Promise<Map<string, unknown>> {
    const saved = await this.#run('load', () => this.#client.hgetall(stateKeyPrefix + pipeline));
    const snapshots = new Map<string, unknown>();
    for (const [node, json] of Object.entries(saved)) {
      try {
        snapshots.set(node, JSON.parse(json));
      } catch (error) {
        throw new Error(`the state of node \`${node}\` in ${stateKeyPrefix + pipeline} at ${redactUrl(this.url)} is not JSON: ${(error as Error).message}`);
      }
    }
    return snapshots;
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    const key = stateKeyPrefix + pipeline;
    const fields: Record<string, string> = {};
    for (const [node, snapshot] of snapshots) fields[node] = JSON.stringify(snapshot ?? null);
    const transaction = this.#client.multi().del(key);
    if (Object.keys(fields).length > 0) transaction.hset(key, fields);
    const results = await this.#run('save', () => transaction.exec());
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw new Error(`cannot save state to ${redactUrl(this.url)}: ${failed.message}`);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }

  async #run<T>(what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new Error(`cannot ${what} state at ${redactUrl(this.url)}: ${(error as Error).message}`);
    }
  }
}

registerStateStore('redis', (url) => RedisStateStore.open(url));
registerStateStore('rediss', (url) => RedisStateStore.open(url));
