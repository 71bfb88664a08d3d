/**
 * The write pipeline of `kafka.produce` (at least once): while a request is
 * out, the batches that arrive are gathered into the next request, so a
 * source of small batches is held to one round trip per request, not per
 * batch. The node is a paced sink: it tells the runtime it has taken a
 * batch in (`ctx.batchDone()`) as soon as the batch is in the request being
 * gathered, and acknowledges it only once the request that carries it has
 * been written.
 */
import { Observable } from 'rxjs';
import type { Batch, NodeContext, NodeFunction, TraceSpan } from '../../../runtime/api.ts';
import type { OutgoingMessage } from '../../../native/kafka/client.ts';

/** How requests are formed, and how many may be out at once. */
export interface WritePipelineSettings {
  /** Requests out at once, at most. */
  maxInFlight: number;
  /** How long a request waits for more batches, from its first, before it may go (ms); 0 sends as soon as a request may go. */
  lingerMs: number;
  /** A request holding this many bytes goes without lingering, and the node takes no more input until it has gone. */
  batchBytes: number;
}

/** One batch made into messages: their bytes (keys and values), and the PRODUCER span of a sampled batch. */
export interface EncodedBatch {
  messages: OutgoingMessage[];
  bytes: number;
  span: TraceSpan | undefined;
}

export interface WritePipelineOptions {
  ctx: NodeContext<unknown>;
  settings: WritePipelineSettings;
  /** Makes a batch's messages (records that cannot be encoded go to `ctx.fail`). */
  encode(batch: Batch): EncodedBatch;
  /** Writes one request's messages; resolves once the broker has them, rejects only when the node stops. */
  write(messages: OutgoingMessage[]): Promise<void>;
  /** Runs once the input has ended and every request has been written. */
  finish(): Promise<void>;
}

/** The batches of one request, in order, with their messages. */
interface Request {
  batches: Batch[];
  messages: OutgoingMessage[];
  bytes: number;
  spans: TraceSpan[];
}

/**
 * A sink writing requests of gathered batches, up to `maxInFlight` at once.
 * Order: batches join requests in the order they arrive and requests go in
 * the order they were gathered, so with `maxInFlight: 1` the records of a
 * partition are written in order even through retries; more requests at once
 * can reorder them when one fails and is written again after a later one.
 * Memory: at most `maxInFlight` requests plus the one being gathered, each
 * about `batchBytes` (one batch more at most).
 */
export function writePipeline({ ctx, settings, encode, write, finish }: WritePipelineOptions): NodeFunction {
  const { maxInFlight, lingerMs, batchBytes } = settings;
  return function kafkaWritePipeline(input) {
    return new Observable<Batch>((subscriber) => {
      let gathering: Request | undefined;
      let inFlight = 0;
      /**
       * Batches taken into `gathering` whose `ctx.batchDone()` waits for room:
       * always the latest, so the calls stay in the order the batches came.
       */
      let owed = 0;
      let cancelLinger: (() => void) | undefined;
      let lingered = false;
      let ended = false;
      let finishing = false;
      let stopped = false;

      const full = (): boolean => gathering !== undefined && gathering.bytes >= batchBytes;

      function take(batch: Batch): void {
        const { messages, bytes, span } = encode(batch);
        if (!gathering) {
          gathering = { batches: [], messages: [], bytes: 0, spans: [] };
          if (lingerMs > 0) cancelLinger = ctx.schedule(lingerMs, lingerOver);
        }
        gathering.batches.push(batch);
        for (const message of messages) gathering.messages.push(message);
        gathering.bytes += bytes;
        if (span) gathering.spans.push(span);
        owed += 1;
        advance();
      }

      function lingerOver(): void {
        cancelLinger = undefined;
        lingered = true;
        advance();
      }

      /** Sends what may go, then takes more input while the request being gathered has room. */
      function advance(): void {
        if (gathering && inFlight < maxInFlight && !stopped && (lingerMs === 0 || lingered || ended || full())) send(gathering);
        // `batchDone` may hand over the next batch at once (a nested `take`): count before calling.
        while (owed > 0 && !stopped && !full()) {
          owed -= 1;
          ctx.batchDone();
        }
        if (ended && !gathering && inFlight === 0 && !finishing && !stopped) {
          finishing = true;
          finish().then(
            () => subscriber.complete(),
            (error: unknown) => subscriber.error(error),
          );
        }
      }

      function send(request: Request): void {
        gathering = undefined;
        cancelLinger?.();
        cancelLinger = undefined;
        lingered = false;
        inFlight += 1;
        const written = request.messages.length > 0 ? write(request.messages) : Promise.resolve();
        written.then(
          function requestWritten() {
            inFlight -= 1;
            for (const span of request.spans) span.end();
            // Written, so acknowledged, even if the node stopped meanwhile.
            for (const batch of request.batches) batch.ack.release();
            advance();
          },
          function requestFailed(error: unknown) {
            inFlight -= 1;
            for (const span of request.spans) span.end(error);
            // Its batches and those of later requests stay unacknowledged: the runtime
            // gives them back to the channel, in order, for the restarted node.
            stopped = true;
            subscriber.error(error);
          },
        );
      }

      const subscription = input.subscribe({
        next: take,
        error(error: unknown) {
          stopped = true;
          subscriber.error(error);
        },
        complete() {
          ended = true;
          advance();
        },
      });
      return function stopWritePipeline() {
        stopped = true;
        cancelLinger?.();
        subscription.unsubscribe();
      };
    });
  };
}
