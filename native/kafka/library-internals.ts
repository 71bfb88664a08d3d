/**
 * The one file where the Kafka client relies on how @platformatic/kafka
 * (2.12.x) works inside, beyond what its API promises; check each of these
 * when upgrading it (test/connectors/kafka-membership.services.test.ts and
 * the netns cut test exercise the first two against a real broker; the
 * third needs a commit in flight across a rejoin, which no broker test
 * forces: test/connectors/kafka-membership.test.ts checks the guard's side
 * on a stand-in consumer, not the library's resend):
 *
 * 1. A messages stream fetches through its consumer's public `fetch`
 *    method, called on the instance, with a callback; a response is an
 *    object whose `responses` list the topics, each with `partitions` whose
 *    `records` are record batches with their `records` (an empty list: no
 *    records).
 *    `gateFetches` wraps that method to hold fetches and to void responses
 *    that belong to an earlier membership epoch.
 * 2. A messages stream's `offsetsToFetch` getter returns the live map
 *    (`topic:partition` → next offset) its next fetch reads: setting an
 *    entry moves the position (there is no `seek`).
 * 3. `Consumer.commit`, answered with a generation error, rejoins the group
 *    and sends the *same* options object again under the new generation,
 *    reading its `offsets` array afresh: emptying that array while the
 *    commit is in flight turns the resend into a commit of nothing.
 * 4. A heartbeat's `consumer:heartbeat:start` and its `consumer:heartbeat:end`
 *    carry the same payload object (one heartbeat is in flight at a time).
 *    `onHeartbeatAnswered` relies on it to tell when the answered heartbeat
 *    was sent.
 */
import type { Consumer, MessagesStream } from '@platformatic/kafka';

type AnyConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
type FetchCallback = (error: Error | null, response?: unknown) => void;

/** A fetch response with no records. */
const noRecords = { responses: [] };

interface FetchResponseShape {
  responses?: { partitions?: { records?: { records?: unknown[] }[] | null }[] }[];
}

/** How many records a fetch response holds. */
function recordsIn(response: unknown): number {
  let count = 0;
  for (const topic of (response as FetchResponseShape | undefined)?.responses ?? []) {
    for (const partition of topic.partitions ?? []) for (const batch of partition.records ?? []) count += batch.records?.length ?? 0;
  }
  return count;
}

/** Holds a consumer's fetches (see the file's note 1). */
export interface FetchGate {
  /** Completes the held fetches with no records, so the stream fetches again from its (possibly moved) positions. */
  release(): void;
}

/**
 * Wraps the consumer's `fetch`: while `held()`, a fetch waits (its node
 * stays busy, so the stream sends no other); a response that arrives after
 * `epoch()` changed is replaced by one with no records (its records are not
 * pushed, `voided` is told how many there were, and the stream's positions
 * do not move past them); so is its error
 * (the link of a member in doubt is expected to fail).
 */
export function gateFetches(consumer: AnyConsumer, gate: { held(): boolean; epoch(): number; voided(records: number): void }): FetchGate {
  const original = consumer.fetch.bind(consumer) as (options: unknown, callback?: FetchCallback) => unknown;
  const waiting: FetchCallback[] = [];
  const gated = function gatedFetch(options: unknown, callback?: FetchCallback): unknown {
    if (!callback) return original(options);
    if (gate.held()) {
      waiting.push(callback);
      return undefined;
    }
    const epoch = gate.epoch();
    return original(options, function gatedFetchAnswered(error, response) {
      if (gate.epoch() === epoch) {
        callback(error, response);
        return;
      }
      gate.voided(recordsIn(response));
      callback(null, noRecords);
    });
  };
  (consumer as unknown as { fetch: typeof gated }).fetch = gated;
  return {
    release() {
      for (const callback of waiting.splice(0)) callback(null, noRecords);
    },
  };
}

/** Moves the stream's next fetch of a partition to `offset` (see the file's note 2). */
export function seek(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>, topic: string, partition: number, offset: bigint): void {
  stream.offsetsToFetch.set(`${topic}:${partition}`, offset);
}

/** Turns a commit in flight into a commit of nothing, should the client send it again (see the file's note 3). */
export function dropCommit(offsets: unknown[]): void {
  offsets.length = 0;
}

/**
 * Calls `answered(sentAt)` each time a heartbeat is answered, with the time
 * (by `now`) that heartbeat was sent (see the file's note 4); should the
 * payloads not match, the time the latest heartbeat was sent.
 */
export function onHeartbeatAnswered(consumer: AnyConsumer, now: () => number, answered: (sentAt: number) => void): void {
  const sent = new WeakMap<object, number>();
  let latest: number | undefined;
  consumer.on('consumer:heartbeat:start', (payload: object) => {
    latest = now();
    sent.set(payload, latest);
  });
  consumer.on('consumer:heartbeat:end', (payload: object) => {
    answered(sent.get(payload) ?? latest ?? now());
  });
}
