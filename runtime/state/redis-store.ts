/**
 * The Redis state store (`--state redis://...`): one hash per pipeline,
 * `streams:state:<pipeline>`, with a field per node holding its snapshot as
 * JSON. A save replaces the whole hash atomically (MULTI/EXEC).
 */
import { connectRedisOnce, type Redis } from '../../native/redis/client.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { storeCommand, type StateStore } from './store.ts';

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
    return new RedisStateStore(url, await connectRedisOnce(url, { connectionName: 'ami-streams:state', describedAs: 'the Redis state store' }));
  }

  async load(pipeline: string): Promise<Map<string, unknown>> {
    const saved = await storeCommand('load', this.url, () => this.#client.hgetall(stateKeyPrefix + pipeline));
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
    const results = await storeCommand('save', this.url, () => transaction.exec());
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw new Error(`cannot save state to ${redactUrl(this.url)}: ${failed.message}`);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }

}

