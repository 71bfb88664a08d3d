/**
 * The control plane over Redis: the record in a string, its version from
 * an `INCR` counter, announced on a pub/sub channel, and the workers'
 * reports in hashes keyed by host. Keys are in `docs/many-hosts.md`.
 */
import type { Redis } from 'ioredis';
import { connectRedis, connectRedisOnce } from '../native/redis/client.ts';
import { redactUrl } from '../native/redact-url.ts';
import { parseRecord, type AppliedReport, type ControlClient, type ControlPlane, type UnversionedRecord } from './control-plane.ts';
import type { CapabilityReport } from '../graph/hosts-file.ts';

/** The Redis keys and channel of one pipeline's deployment. */
export function controlKeys(pipeline: string) {
  const base = `streams:deploy:${pipeline}`;
  return {
    /** The current record (a JSON string). */
    record: base,
    /** The version counter (`INCR`). */
    version: `${base}:version`,
    /** Pub/sub: the new version's number, once its record is stored. */
    channel: `${base}:changed`,
    /** Hash: host → `AppliedReport` JSON. */
    applied: `${base}:applied`,
    /** Hash: host → epoch ms of its worker's last heartbeat. */
    heartbeat: `${base}:heartbeat`,
    /** Hash: host → `CapabilityReport` JSON, written by a worker as it starts. */
    capabilities: `${base}:capabilities`,
  };
}

/**
 * Stores the record under the next version and announces it, in one step
 * on the server: two deploys at once get two versions, and the record
 * stored is always the one of the higher version. The record's JSON
 * starts with `"format":1,"version":0`, which the script fills in.
 */
const publishScript = `
local v = redis.call('INCR', KEYS[1])
local rec = string.gsub(ARGV[1], '"version":0', '"version":' .. v, 1)
redis.call('SET', KEYS[2], rec)
redis.call('PUBLISH', KEYS[3], v)
return v`;

/** Opens one pipeline's deployment on Redis at `url`. */
export async function openRedisControlPlane(url: string, pipeline: string, who: ControlClient): Promise<ControlPlane> {
  const keys = controlKeys(pipeline);
  const redis: Redis = who.owner
    ? await connectRedis(who.owner, { url, purpose: 'control', retryDelayMs: (attempt) => Math.min(5000, 100 * attempt) })
    : await connectRedisOnce(url, { connectionName: `ami-streams:${who.client}`, describedAs: 'the control plane' });
  let subscriber: Redis | undefined;
  return {
    address: redactUrl(url),
    async publish(record: UnversionedRecord) {
      const { format, ...rest } = record;
      return Number(await redis.eval(publishScript, 3, keys.version, keys.record, keys.channel, JSON.stringify({ format, version: 0, ...rest })));
    },
    async current() {
      return parseRecord(await redis.get(keys.record));
    },
    async latest() {
      // The publish script sets the counter and the record together: the counter is the record's version.
      const version = await redis.get(keys.version);
      return version === null ? undefined : Number(version);
    },
    async watch(changed) {
      subscriber = redis.duplicate();
      await subscriber.subscribe(keys.channel);
      subscriber.on('message', () => changed());
    },
    async reportCapabilities(report: CapabilityReport) {
      await redis.hset(keys.capabilities, report.host, JSON.stringify(report));
    },
    capabilities: () => redis.hgetall(keys.capabilities),
    async reportApplied(host: string, report: AppliedReport) {
      await redis.hset(keys.applied, host, JSON.stringify(report));
    },
    applied: () => redis.hgetall(keys.applied),
    async heartbeat(host) {
      await redis.hset(keys.heartbeat, host, String(Date.now()));
    },
    heartbeats: () => redis.hgetall(keys.heartbeat),
    async leave(host) {
      await redis.hdel(keys.heartbeat, host);
    },
    async close() {
      subscriber?.disconnect();
      redis.disconnect();
    },
  };
}
