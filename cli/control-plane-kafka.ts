/**
 * The control plane over Kafka: three compacted single-partition topics per
 * pipeline. The plan topic holds the record under one key; its version is
 * the record's offset + 1, which the broker hands out in the order it takes
 * the records, so two deploys at once get two versions and the record that
 * compaction keeps is the one of the higher version, with no counter or
 * transaction of ours. Capability reports are keyed by host in their topic;
 * applied reports and heartbeats by `applied/HOST` and `heartbeat/HOST` in
 * the status topic. Readers keep each topic as a table (`native/kafka/table.ts`),
 * so a worker that starts late reads the current record.
 */
import type { CapabilityReport } from '../graph/hosts-file.ts';
import { clientReason, describeBrokers, ensureTopics, openProducer, type KafkaProducer } from '../native/kafka/client.ts';
import { openTable, withTimeout, type KafkaTable } from '../native/kafka/table.ts';
import { backoffDelay } from '../native/backoff.ts';
import { connectTimeoutMs, parseRecord, type AppliedReport, type ControlClient, type ControlPlane, type UnversionedRecord } from './control-plane.ts';

/** The topics of one pipeline's deployment. `streams-control.` cannot clash with the edges' `streams.GRAPH....` topics. */
export function kafkaControlTopics(pipeline: string) {
  const base = `streams-control.${pipeline}`;
  return {
    /** Key `record`: the current record (JSON without `version`). */
    plan: `${base}.plan`,
    /** Key HOST: the host's `CapabilityReport` JSON. */
    capabilities: `${base}.capabilities`,
    /** Keys `applied/HOST` (`AppliedReport` JSON) and `heartbeat/HOST` (epoch ms; a tombstone when its worker stopped cleanly). */
    status: `${base}.status`,
  };
}

/** The plan record's key. */
export const planKey = 'record';

/** A record's version from its offset in the plan topic: offsets start at 0, versions at 1. */
export function versionOfOffset(offset: bigint): number {
  return Number(offset) + 1;
}

/** Splits the status table into applied reports and heartbeats, each host → value. */
export function splitStatus(entries: Iterable<[string, string]>): { applied: Record<string, string>; heartbeats: Record<string, string> } {
  const applied: Record<string, string> = {};
  const heartbeats: Record<string, string> = {};
  for (const [key, value] of entries) {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const host = key.slice(slash + 1);
    if (slash <= 0 || host === '') continue;
    if (kind === 'applied') applied[host] = value;
    else if (kind === 'heartbeat') heartbeats[host] = value;
  }
  return { applied, heartbeats };
}

/**
 * Topic settings: compacted; segments rolled every 10 minutes so that
 * compaction (which leaves the open segment alone) keeps the status topic,
 * written every 2 s by every worker, short for a reader that starts late;
 * records up to 16 MB (a large pipeline's text).
 */
const topicConfigs = { 'cleanup.policy': 'compact', 'segment.ms': '600000', 'min.cleanable.dirty.ratio': '0.1', 'max.message.bytes': String(16 * 1024 * 1024) };

/** Opens one pipeline's deployment on the brokers; creates its topics when missing. */
export async function openKafkaControlPlane(brokers: string[], pipeline: string, who: ControlClient): Promise<ControlPlane> {
  const address = `kafka://${describeBrokers(brokers)}`;
  const topics = kafkaControlTopics(pipeline);
  for (let attempt = 1; ; attempt++) {
    try {
      await withTimeout(ensureControlTopics(brokers, who.client, Object.values(topics)), connectTimeoutMs, `reaching the brokers`);
      break;
    } catch (error) {
      const reason = `cannot reach the control plane at ${address}: ${clientReason(error)}`;
      if (!who.owner) throw new Error(reason);
      const delay = backoffDelay(attempt, 500, 10_000);
      who.owner.log.error({ control: address, attempt, retryInMs: delay }, `${who.owner.label}: ${reason}; retrying in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const producer: KafkaProducer = openProducer({ brokers, clientId: `ami-streams-${who.client}`, acks: 'all', compression: 'gzip', idempotent: true, retries: 5 });
  const tables = new Map<string, Promise<KafkaTable>>();
  let onPlan: (() => void) | undefined;
  const table = (topic: string): Promise<KafkaTable> => {
    let opened = tables.get(topic);
    if (!opened) {
      opened = withTimeout(
        openTable({
          brokers,
          topic,
          clientId: `ami-streams-${who.client}`,
          changed: (keys) => {
            if (topic === topics.plan && keys.includes(planKey)) onPlan?.();
          },
          failed: (error) => who.owner?.log.error({ control: address, topic, error: clientReason(error) }, `${who.owner.label}: reading ${topic} failed; reopening`),
        }),
        connectTimeoutMs,
        `joining a consumer group at ${address}`,
      );
      opened.catch(() => tables.delete(topic));
      tables.set(topic, opened);
    }
    return opened;
  };
  /** The table read up to what was written before the call. */
  const fresh = async (topic: string): Promise<KafkaTable> => {
    const t = await table(topic);
    await t.caughtUp(connectTimeoutMs);
    return t;
  };
  let planCaughtUp = false;
  /** The plan table's record: the first read waits until the table holds what was on the topic; later ones read what the consumer has brought in. */
  const planEntry = async () => {
    const t = planCaughtUp ? await table(topics.plan) : await fresh(topics.plan);
    planCaughtUp = true;
    return t.entries().get(planKey);
  };
  const write = async (topic: string, key: string, value: string | null): Promise<bigint> =>
    producer.write({ topic, key: Buffer.from(key), value: value === null ? null : Buffer.from(value) });

  return {
    address,
    async publish(record: UnversionedRecord) {
      return versionOfOffset(await write(topics.plan, planKey, JSON.stringify(record)));
    },
    async current() {
      const entry = await planEntry();
      return entry ? parseRecord(entry.value, versionOfOffset(entry.offset)) : {};
    },
    async latest() {
      const entry = await planEntry();
      return entry ? versionOfOffset(entry.offset) : undefined;
    },
    async watch(changed) {
      onPlan = changed;
      await table(topics.plan);
    },
    async reportCapabilities(report: CapabilityReport) {
      await write(topics.capabilities, report.host, JSON.stringify(report));
    },
    async capabilities() {
      // Deploy reads the capabilities first and the applied reports next: the status table joins its group meanwhile.
      void table(topics.status).catch(() => undefined);
      return Object.fromEntries([...(await fresh(topics.capabilities)).entries()].map(([host, entry]) => [host, entry.value]));
    },
    async reportApplied(host: string, report: AppliedReport) {
      await write(topics.status, `applied/${host}`, JSON.stringify(report));
    },
    async applied() {
      return splitStatus([...(await table(topics.status)).entries()].map(([key, entry]) => [key, entry.value])).applied;
    },
    async heartbeat(host) {
      await write(topics.status, `heartbeat/${host}`, String(Date.now()));
    },
    async heartbeats() {
      return splitStatus([...(await fresh(topics.status)).entries()].map(([key, entry]) => [key, entry.value])).heartbeats;
    },
    async leave(host) {
      await write(topics.status, `heartbeat/${host}`, null);
    },
    async close() {
      for (const opened of tables.values()) await (await opened.catch(() => undefined))?.close();
      await producer.close().catch(() => undefined);
    },
  };
}

/** Creates the compacted topics that do not exist yet (one partition each: offsets number the records in order). */
async function ensureControlTopics(brokers: string[], client: string, topics: string[]): Promise<void> {
  const failed = await ensureTopics(brokers, `ami-streams-${client}`, topics.map((topic) => ({ topic, partitions: 1, configs: topicConfigs })));
  if (failed.length > 0) throw new Error(`creating \`${failed[0].topic}\`: ${failed[0].error}`);
}
