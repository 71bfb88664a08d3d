/**
 * What `kafka.produce` does with a record the broker refuses for good for
 * its size (see `native/kafka/refusals.ts`): the rest of the write goes on,
 * and the record goes to the node's dead letters with the reason, counted
 * per reason and logged once per cause, without its payload. A refused pack
 * (`pack_bytes` above the topic's limit) is written in its place as its
 * records, in requests under the topic's limit, halved when refused; only
 * those the broker refuses alone are dead-lettered.
 */
import type { Ack, BytesItem, NodeContext } from '../../../runtime/api.ts';
import { refusalReason, requestBytesFor, type RefusedMessage } from '../../../native/kafka/refusals.ts';
import { clientReason, closingInBackground, openAdmin, type OutgoingMessage } from '../../../native/kafka/client.ts';
import { packedMessages } from './packing.ts';

/** The tag of a record's message (`OutgoingMessage.tag`): the record and its batch's acknowledgement. */
export interface RecordTag {
  item: unknown;
  ack: Ack;
}

/** What `kafka.produce` does with refusals: writes in place of a refused pack, and dead-letters refused records. */
export interface RefusalHandler {
  /** The records of a refused pack, to its partition (see `IsolatingOptions.instead`). */
  instead(message: OutgoingMessage): readonly OutgoingMessage[] | undefined;
  /** Sends refused records to the dead letters, counted and logged, their reason with the topic's limit. */
  deadLetter(refused: readonly RefusedMessage[]): Promise<void>;
  /** The topic's `max.message.bytes`, read from the broker until a read succeeds (undefined while it cannot be read). */
  limit(): Promise<number | undefined>;
  /** The request size for the topic, once its limit has been read (see `requestBytesFor`). */
  requestBytes(): number | undefined;
}

/** How long after a failed read of a topic's limit it is read again (at the next write after that). */
export const LIMIT_RETRY_MS = 10_000;

/** Counts and logs refusals for the node of `ctx`, and sends its refused records to its dead letters. */
export function refusalHandler(ctx: NodeContext<{ topic: string; brokers: string[] }>): RefusalHandler {
  /**
   * The topic's `max.message.bytes`, read when first needed (at the first
   * write with `exactly_once`, at the first refusal otherwise) and kept once
   * read. A read that fails (the topic does not exist yet: the first write
   * creates it) is not kept: it is tried again at a write at least
   * `LIMIT_RETRY_MS` later, meanwhile the limit is unknown.
   */
  let limit: Promise<number | undefined> | undefined;
  let requestBytes: number | undefined;
  let failedAt: number | undefined;
  let failureLogged = false;
  const readLimit = (): Promise<number | undefined> => {
    if (limit) return limit;
    if (failedAt !== undefined && ctx.now() - failedAt < LIMIT_RETRY_MS) return Promise.resolve(undefined);
    const reading = topicLimit(ctx.settings.brokers, ctx.settings.topic).then(
      (known) => {
        requestBytes = requestBytesFor(known);
        failedAt = undefined;
        return known;
      },
      (error: unknown) => {
        limit = undefined;
        failedAt = ctx.now();
        if (!failureLogged) {
          failureLogged = true;
          ctx.log.warn(
            { topic: ctx.settings.topic, error: clientReason(error) },
            `${ctx.label}: cannot read the \`max.message.bytes\` of topic \`${ctx.settings.topic}\` (${clientReason(error)}); read again at a write every ${LIMIT_RETRY_MS / 1000} s until it can be, meanwhile nothing is screened or cut under it (said once)`,
          );
        }
        return undefined;
      },
    );
    limit = reading;
    return reading;
  };
  const counts = new Map<string, number>();
  let keyframes = 0;
  const logged = new Set<string>();
  ctx.metrics.expose(function refusedFamilies() {
    return [
      { name: 'kafka_records_refused_total', help: 'Records the broker refused for their size (dead-lettered), by the broker\'s error.', type: 'counter', samples: [...counts].map(([reason, value]) => ({ labels: { reason }, value })) },
      { name: 'kafka_keyframes_refused_total', help: 'Media keyframes among the refused records: the stream has a gap on the consuming host until its next keyframe.', type: 'counter', samples: [{ value: keyframes }] },
    ];
  });

  function deadLetter(refusal: RefusedMessage, limit: number | undefined): void {
    const { item, ack } = refusal.message.tag as RecordTag;
    const reasonText = refusalReason(ctx.settings.topic, refusal.bytes, refusal.code, limit);
    const reason = refusal.code.toLowerCase();
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
    const meta = (item as BytesItem | undefined)?.meta;
    const keyframe = meta?.keyframe === true;
    if (!logged.has(refusal.code)) {
      logged.add(refusal.code);
      ctx.log.error({ topic: ctx.settings.topic, bytes: refusal.bytes, reason }, `${ctx.label}: ${reasonText}: the record fails (per \`on_error\`: to the dead letters by default) and the rest is written (said once per cause; counted in streams_kafka_records_refused_total)`);
    }
    if (keyframe) {
      keyframes += 1;
      const stream = String(meta?.stream ?? '');
      if (!logged.has(`keyframe:${stream}`)) {
        logged.add(`keyframe:${stream}`);
        ctx.log.error({ topic: ctx.settings.topic, stream, rendition: meta?.rendition, bytes: refusal.bytes }, `${ctx.label}: a keyframe of stream \`${stream}\` (${refusal.bytes} bytes) was refused by topic \`${ctx.settings.topic}\`: the consuming host sees a gap in that stream until its next keyframe (raise the topic's \`max.message.bytes\`; said once per stream, counted in streams_kafka_keyframes_refused_total)`);
      }
    }
    ctx.fail(item, new Error(reasonText), ack);
  }

  return {
    instead(message) {
      // A pack the topic cannot take: its records, to the pack's partition, where they would have gone.
      return packedMessages(message)?.map((record) => ({ ...record, partition: message.partition }));
    },
    async deadLetter(refused) {
      if (refused.length === 0) return;
      const known = await readLimit();
      for (const refusal of refused) deadLetter(refusal, known);
    },
    limit: readLimit,
    requestBytes: () => requestBytes,
  };
}

/** The topic's `max.message.bytes`, or undefined when the topic has none that is valid; rejects when it cannot be read. */
async function topicLimit(brokers: string[], topic: string): Promise<number | undefined> {
  const admin = openAdmin(brokers, 'ami-streams-limits');
  try {
    const value = Number(await admin.topicSetting(topic, 'max.message.bytes'));
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } finally {
    closingInBackground(admin.close());
  }
}
