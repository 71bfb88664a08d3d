/**
 * Subscriber plumbing shared by operators: per-record transforms over
 * batches that keep acknowledgements and dead letters right.
 */
import { Observable } from 'rxjs';
import type { Batch, NodeContext, NodeFunction } from './api.ts';

/** Returned by a per-record function to drop the record on purpose. */
export const skip: unique symbol = Symbol('skip');

/**
 * A node that maps each record to zero or one record. A throw sends the
 * record to `ctx.fail` (dead letter) and the batch goes on; a batch left
 * empty is acknowledged at once, since nothing downstream will see it.
 */
export function perRecord<In, Out>(ctx: NodeContext<any>, fn: (item: In) => Out | typeof skip): NodeFunction {
  return function perRecordNode(input) {
    return new Observable<Batch>((subscriber) =>
      input.subscribe({
        next(batch) {
          const out: Out[] = [];
          const items = batch.items as In[];
          for (let i = 0; i < items.length; i++) {
            let result: Out | typeof skip;
            try {
              result = fn(items[i]);
            } catch (error) {
              ctx.fail(items[i], error, batch.ack);
              continue;
            }
            if (result !== skip) out.push(result);
          }
          if (out.length === 0) batch.ack.release();
          else subscriber.next({ items: out, ack: batch.ack });
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
  };
}

/**
 * A sink: `write` each batch in order (awaiting it when it returns a
 * promise), then acknowledge it. Emits nothing downstream. `write` gets the
 * batch too, to hand its ack to `ctx.fail` for records it cannot write.
 */
export function sinkBatches<T>(write: (items: T[], batch: Batch) => void | Promise<void>, finish?: () => void | Promise<void>): NodeFunction {
  return function sinkNode(input) {
    return new Observable<Batch>((subscriber) => {
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      const fail = (error: unknown): void => {
        failed = true;
        subscriber.error(error);
      };
      const subscription = input.subscribe({
        next(batch) {
          chain = chain.then(async function writeBatch() {
            if (failed) return;
            await write(batch.items as T[], batch);
            batch.ack.release();
          }).catch(fail);
        },
        error: fail,
        complete() {
          chain = chain.then(async function finishSink() {
            if (failed) return;
            await finish?.();
            subscriber.complete();
          }).catch(fail);
        },
      });
      return () => subscription.unsubscribe();
    });
  };
}

/**
 * An asynchronous transform for a `paced` operator: each batch's records go
 * through `transform` (which reports per-record failures with `ctx.fail`),
 * one batch at a time and in order; the result travels on with the batch's
 * ack. A throw from `transform` fails the node (it restarts with backoff).
 */
export function perBatchAsync<In, Out>(ctx: NodeContext<any>, transform: (items: In[], batch: Batch) => Promise<Out[]>): NodeFunction {
  return function perBatchAsyncNode(input) {
    return new Observable<Batch>((subscriber) => {
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      const subscription = input.subscribe({
        next(batch) {
          chain = chain
            .then(async function transformBatch() {
              if (failed) return;
              const out = await transform(batch.items as In[], batch);
              if (out.length === 0) batch.ack.release();
              else subscriber.next({ items: out, ack: batch.ack });
              ctx.batchDone();
            })
            .catch((error: unknown) => {
              failed = true;
              subscriber.error(error);
            });
        },
        error: (error: unknown) => subscriber.error(error),
        complete() {
          chain = chain.then(() => {
            if (!failed) subscriber.complete();
          });
        },
      });
      return () => subscription.unsubscribe();
    });
  };
}
