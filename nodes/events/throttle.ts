import { Observable } from 'rxjs';
import { Ack, defineOperator, duration, expression, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { compileReader, keyStringOf } from './windowing/record-access.ts';

/** Tolerance for the float arithmetic of refills: 0.9999999999 tokens is one token. */
const epsilon = 1e-9;

/** An input batch with records still waiting (`delay`); the runtime's next batch comes after it is done. */
interface Pending {
  waiting: number;
}

interface Waiting {
  record: EventRecord;
  ack: Ack;
  batch: Pending;
}

/** A token bucket: `tokens` as of `at`, and the records waiting for one (`delay`). */
interface Bucket {
  tokens: number;
  at: number;
  queue: Waiting[];
  /** Index of the queue's head: shifting arrays is quadratic. */
  head: number;
}

/**
 * `throttle`: at most `rate` records per `per`, overall or per key,
 * dropping or delaying the excess.
 */
export default defineOperator({
  name: 'throttle',
  summary: 'Limit records to a rate, overall or per key, dropping or delaying the excess.',
  doc: 'Lets through at most `rate` records per `per` (on the clock), overall or, with `key`, for each key separately. Each key has a token bucket that holds up to `rate` tokens (at least one) and refills continuously at `rate` per `per`, so a quiet key may burst up to `rate` records at once. With `when_over: drop` (the default) a record finding no token is dropped, counted as a drop with reason `throttled`, and acknowledged at once. With `when_over: delay` it waits, in order behind its key\'s earlier records, until a token is free; the node takes its next input batch only once the last one has been let through, so what waits beyond one batch waits in the input channel, whose backpressure reaches the sources: memory stays bounded. A delaying throttle whose input ends emits what waits, at the rate, before it completes. A record whose key expression fails goes to the dead-letter port.',
  inputs: { in: { type: 'T: Event', doc: 'Records to limit.' } },
  outputs: { out: { type: 'T', doc: 'The records within the rate, unchanged.' } },
  settings: z.object({
    rate: z.number().positive().meta({ description: 'Records allowed per `per`.', examples: [100] }),
    per: duration().prefault('1s').meta({ description: 'The period the rate is counted over.', examples: ['1m'] }),
    key: expression().optional().meta({ description: 'A CEL expression giving a record\'s key; each key gets its own limit. Absent means one limit for all.', examples: ['device'] }),
    when_over: z.enum(['drop', 'delay']).default('drop').meta({ description: '`drop` records over the rate, or `delay` them until the rate allows.' }),
  }),
  example: { rate: 10, per: '1s', key: 'device' },
  partitionBy: { setting: 'key' },
  paced: true,
  create(ctx) {
    const { rate, per, when_over: whenOver } = ctx.settings;
    const keyReader = ctx.settings.key === undefined ? undefined : compileReader(ctx.settings.key);
    const burst = Math.max(1, rate);
    const perMs = rate / per;

    return function throttleNode(input) {
      return new Observable<Batch>((subscriber) => {
        const buckets = new Map<string, Bucket>();
        /** Buckets with records waiting (`delay`). */
        const waiting = new Set<Bucket>();
        /** Input batches not yet done, oldest first: `ctx.batchDone` is owed for each, in order. */
        const pending: Pending[] = [];
        let pruneAt = 1024;
        let cancelTimer: (() => void) | undefined;
        let inputDone = false;

        function refill(bucket: Bucket, now: number): void {
          if (now > bucket.at) {
            bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) * perMs);
            bucket.at = now;
          }
        }

        function bucketFor(key: string, now: number): Bucket {
          let bucket = buckets.get(key);
          if (bucket === undefined) {
            if (buckets.size >= pruneAt) prune(now);
            bucket = { tokens: burst, at: now, queue: [], head: 0 };
            buckets.set(key, bucket);
          } else {
            refill(bucket, now);
          }
          return bucket;
        }

        /** Forgets full, idle buckets: a full bucket is the same as none. */
        function prune(now: number): void {
          for (const [key, bucket] of buckets) {
            refill(bucket, now);
            if (bucket.tokens >= burst - epsilon && !waiting.has(bucket)) buckets.delete(key);
          }
          pruneAt = Math.max(1024, buckets.size * 2);
        }

        function release(): void {
          const now = ctx.now();
          const items: EventRecord[] = [];
          const acks: Ack[] = [];
          for (const bucket of waiting) {
            refill(bucket, now);
            while (bucket.head < bucket.queue.length && bucket.tokens >= 1 - epsilon) {
              const entry = bucket.queue[bucket.head];
              bucket.queue[bucket.head++] = undefined as never;
              bucket.tokens -= 1;
              items.push(entry.record);
              acks.push(entry.ack);
              entry.batch.waiting -= 1;
            }
            if (bucket.head === bucket.queue.length) {
              bucket.queue = [];
              bucket.head = 0;
              waiting.delete(bucket);
            }
          }
          if (items.length > 0) subscriber.next({ items, ack: Ack.all(acks) });
          finishBatches();
        }

        /** Tells the runtime of every batch, oldest first, that has nothing left waiting. */
        function finishBatches(): void {
          if (subscriber.closed) return;
          while (pending.length > 0 && pending[0].waiting === 0) {
            pending.shift();
            ctx.batchDone();
          }
        }

        function arm(): void {
          cancelTimer?.();
          cancelTimer = undefined;
          if (waiting.size === 0) {
            if (inputDone) subscriber.complete();
            return;
          }
          const now = ctx.now();
          let soonest = Infinity;
          for (const bucket of waiting) {
            refill(bucket, now);
            const due = (1 - bucket.tokens) / perMs;
            if (due < soonest) soonest = due;
          }
          cancelTimer = ctx.schedule(Math.max(0, Math.ceil(soonest - epsilon)), function releaseWaiting() {
            cancelTimer = undefined;
            release();
            arm();
          });
        }

        const subscription = input.subscribe({
          next(batch) {
            const items = batch.items as EventRecord[];
            const now = ctx.now();
            const out: EventRecord[] = [];
            let throttled = 0;
            let newlyWaiting = false;
            const pendingBatch: Pending = { waiting: 0 };
            for (let i = 0; i < items.length; i++) {
              const record = items[i];
              let key = '';
              if (keyReader !== undefined) {
                try {
                  key = keyStringOf(keyReader.read(record));
                } catch (error) {
                  ctx.fail(record, error, batch.ack);
                  continue;
                }
              }
              const bucket = bucketFor(key, now);
              if (bucket.head === bucket.queue.length && bucket.tokens >= 1 - epsilon) {
                bucket.tokens -= 1;
                out.push(record);
              } else if (whenOver === 'drop') {
                throttled += 1;
              } else {
                batch.ack.retain();
                pendingBatch.waiting += 1;
                bucket.queue.push({ record, ack: batch.ack, batch: pendingBatch });
                if (!waiting.has(bucket)) {
                  waiting.add(bucket);
                  newlyWaiting = true;
                }
              }
            }
            if (throttled > 0) ctx.metrics.dropped(throttled, 'throttled');
            if (out.length === 0) batch.ack.release();
            else subscriber.next(out.length === items.length ? batch : { items: out, ack: batch.ack });
            pending.push(pendingBatch);
            // Deferred: the runtime may hand over the next batch from inside `batchDone`.
            if (pendingBatch.waiting === 0) queueMicrotask(finishBatches);
            // A newly waiting key may be due before the timer already set.
            if (newlyWaiting) arm();
          },
          error(error: unknown) {
            cancelTimer?.();
            subscriber.error(error);
          },
          complete() {
            inputDone = true;
            if (cancelTimer === undefined) arm();
          },
        });
        return function stopThrottle() {
          cancelTimer?.();
          cancelTimer = undefined;
          subscription.unsubscribe();
        };
      });
    };
  },
});
