/**
 * The Redis state store (`--state redis://...`): one hash per pipeline,
 * `streams:state:<pipeline>`, with a field per node holding its snapshot as
 * JSON. A save replaces the whole hash atomically (MULTI/EXEC).
 */
import { connectRedisOnce, type Redis } from '../../native/redis/client.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { storeCommand, type PartitionSnapshot, type StateStore } from './store.ts';

/** The prefix of the hash keys; the pipeline's name follows it. */
export const stateKeyPrefix = 'streams:state:';

/**
 * Stores a partition's snapshot unless the stored one has a larger
 * position, in one step, so a member that lost the partition cannot
 * overwrite its new owner's state between a read and a write.
 */
const savePartitionScript = `
local old = redis.call('GET', KEYS[1])
if old then
  local ok, saved = pcall(cjson.decode, old)
  if ok and type(saved) == 'table' and type(saved.position) == 'number' and saved.position > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

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

  /** Each partition's state is a string key, `streams:state:PIPELINE/NODE/TOPIC/pN`, apart from the pipeline's hash. */
  async loadPartition(pipeline: string, name: string): Promise<PartitionSnapshot | undefined> {
    const key = `${stateKeyPrefix}${pipeline}/${name}`;
    const json = await storeCommand('load', this.url, () => this.#client.get(key));
    if (json === null) return undefined;
    try {
      return JSON.parse(json) as PartitionSnapshot;
    } catch (error) {
      throw new Error(`the state in ${key} at ${redactUrl(this.url)} is not JSON: ${(error as Error).message}`);
    }
  }

  async savePartition(pipeline: string, name: string, snapshot: PartitionSnapshot): Promise<boolean> {
    const key = `${stateKeyPrefix}${pipeline}/${name}`;
    const stored = await storeCommand('save', this.url, () => this.#client.eval(savePartitionScript, 1, key, JSON.stringify(snapshot), String(snapshot.position)));
    return stored === 1;
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }

}

