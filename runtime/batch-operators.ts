/**
 * Subscriber plumbing shared by operators: `operate` for the wiring every
 * operator repeats, and per-record transforms, sinks and asynchronous
 * transforms over batches that keep acknowledgements and dead letters right.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Batch, NodeContext, NodeFunction } from './types.ts';
import { failureKind, reasonOf } from './failure.ts';

/** What an operator does with its input; see `operate`. */
export interface OperateHandlers {
  /** One input batch. A throw fails the node. */
  next(batch: Batch): void;
  /** The input ended; by default the output completes. */
  complete?(): void;
  /** The input failed; by default the error is passed on. */
  error?(error: unknown): void;
  /** Runs once on every exit (completion, error, unsubscription): free buffers and timers here. */
  finalize?(): void;
}

/**
 * The subscriber plumbing of an operator, like RxJS's internal `operate`:
 * subscribes to `input` when the output is subscribed, forwards what the
 * handlers do not take over, turns a throw in `next` into the node's error,
 * and runs `finalize` once however the output ends.
 *
 * @example
 * return (input) => operate(input, (out) => ({ next: (batch) => out.next(batch) }));
 */
export function operate<T = Batch>(input: Observable<Batch>, setup: (subscriber: Subscriber<T>) => OperateHandlers): Observable<T> {
  return new Observable<T>(function operateSubscribe(subscriber) {
    const handlers = setup(subscriber);
    const subscription = input.subscribe({
      next(batch) {
        try {
          handlers.next(batch);
        } catch (error) {
          subscriber.error(error);
        }
      },
      error: (error: unknown) => (handlers.error ? handlers.error(error) : subscriber.error(error)),
      complete: () => (handlers.complete ? handlers.complete() : subscriber.complete()),
    });
    return function operateTeardown() {
      subscription.unsubscribe();
      handlers.finalize?.();
    };
  });
}

/** Returned by a per-record function to drop the record on purpose. */
export const skip: unique symbol = Symbol('skip');

/**
 * A node that maps each record to zero or one record. A throw sends the
 * record to `ctx.fail` (dead letter) and the batch goes on; a batch left
 * empty is acknowledged at once, since nothing downstream will see it.
 */
export function perRecord<In, Out>(ctx: NodeContext<any>, fn: (item: In) => Out | typeof skip): NodeFunction {
  return function perRecordNode(input) {
    return operate(input, (subscriber) => ({
      next(batch) {
        const items = batch.items as In[];
        // Sized once for every record and cut to what passed: no growing as records are added.
        const out: Out[] = new Array(items.length);
        let count = 0;
        for (let i = 0; i < items.length; i++) {
          let result: Out | typeof skip;
          try {
            result = fn(items[i]);
          } catch (error) {
            ctx.fail(items[i], error, batch.ack);
            continue;
          }
          // `typeof` first: a plain `!==` between a record and a symbol is a generic comparison in optimised code.
          if (typeof result !== 'symbol' || result !== skip) out[count++] = result;
        }
        if (count === 0) {
          batch.ack.release();
          return;
        }
        out.length = count;
        subscriber.next({ items: out, ack: batch.ack });
      },
    }));
  };
}

/** How `sinkBatches` ends and isolates records. */
export interface SinkOptions {
  /** The node the sink runs as: dead letters go to its `fail`, and a failing `finalize` is logged under its label. */
  ctx: NodeContext<any>;
  /**
   * A batch whose write throws a record error (see `failureKind`) is written
   * again in halves down to the record at fault, which goes to `ctx.fail`
   * with the reason (a dead letter) while the rest is written: one record the
   * sink cannot write does not block the others. Any other error fails the
   * node (it restarts with backoff) without splitting the batch, so a server
   * that is down is not sent more writes. Without, every error fails the node.
   */
  isolate?: boolean;
  /** Runs once however the sink ends (completion, failure, a restart): close handles here. */
  finalize?(): void | Promise<void>;
}

/**
 * A sink: `write` each batch in order (awaiting it when it returns a
 * promise), then acknowledge it. Emits nothing downstream. `write` gets the
 * batch too, to hand its ack to `ctx.fail` for records it cannot write.
 * `finish` runs when the input completes, before the sink completes.
 */
export function sinkBatches<T>(write: (items: T[], batch: Batch) => void | Promise<void>, finish?: () => void | Promise<void>, options?: SinkOptions): NodeFunction {
  const writeBatch = options?.isolate ? (items: T[], batch: Batch) => writeIsolating(options.ctx, write, items, batch) : write;
  return function sinkNode(input) {
    return operate(input, (subscriber) => {
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      const fail = (error: unknown): void => {
        failed = true;
        subscriber.error(error);
      };
      return {
        next(batch) {
          chain = chain
            .then(async function writeNextBatch() {
              if (failed) return;
              await writeBatch(batch.items as T[], batch);
              batch.ack.release();
            })
            .catch(fail);
        },
        error: fail,
        complete() {
          chain = chain
            .then(async function finishSink() {
              if (failed) return;
              await finish?.();
              subscriber.complete();
            })
            .catch(fail);
        },
        finalize() {
          // After what is being written, so a handle is not closed under a write.
          if (!options?.finalize) return;
          const { ctx, finalize } = options;
          void chain.then(finalize, finalize).catch(function logFinalizeFailure(error: unknown) {
            ctx.log.error({ error: reasonOf(error) }, `${ctx.label}: cannot close: ${reasonOf(error)}`);
          });
        },
      };
    });
  };
}

/**
 * Writes a batch; when that throws a record error, finds the records at
 * fault by writing halves, and dead-letters each one that fails alone with
 * a record error. Any other error (a refused connection, a full disk), on the
 * whole batch or on a part, is the sink's failure and is thrown at once: the
 * records are not at fault, and splitting would multiply writes against a
 * server that is down.
 */
async function writeIsolating<T>(ctx: NodeContext<any>, write: (items: T[], batch: Batch) => void | Promise<void>, items: T[], batch: Batch): Promise<void> {
  // The usual case, a batch written whole, allocates nothing more than a plain write.
  let first: unknown;
  try {
    await write(items, batch);
    return;
  } catch (error) {
    if (failureKind(error) !== 'record') throw error;
    first = error;
  }
  const poisoned: { item: T; error: unknown }[] = [];
  const attempt = async (part: T[], known?: { error: unknown }): Promise<void> => {
    let failure = known;
    if (failure === undefined) {
      try {
        await write(part, batch);
        return;
      } catch (error) {
        if (failureKind(error) !== 'record') throw error;
        failure = { error };
      }
    }
    if (part.length === 1) {
      poisoned.push({ item: part[0], error: failure.error });
      return;
    }
    const middle = part.length >> 1;
    await attempt(part.slice(0, middle));
    await attempt(part.slice(middle));
  };
  await attempt(items, { error: first });
  for (const { item, error } of poisoned) ctx.fail(item, error, batch.ack);
}

/**
 * An asynchronous transform for a `paced` operator: each batch's records go
 * through `transform` (which reports per-record failures with `ctx.fail`),
 * one batch at a time and in order; the result travels on with the batch's
 * ack. A throw from `transform` fails the node (it restarts with backoff).
 */
export function perBatchAsync<In, Out>(ctx: NodeContext<any>, transform: (items: In[], batch: Batch) => Promise<Out[]>): NodeFunction {
  return function perBatchAsyncNode(input) {
    return operate(input, (subscriber) => {
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      return {
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
        complete() {
          chain = chain.then(() => {
            if (!failed) subscriber.complete();
          });
        },
      };
    });
  };
}
