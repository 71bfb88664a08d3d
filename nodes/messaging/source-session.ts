/**
 * The RxJS glue every connector source shares, written once: a session
 * object does the work (connect, read, acknowledge), and this runs it for
 * each subscription: started at once, drained when the node's signal
 * aborts, closed when the subscription ends for any reason.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Batch, NodeContext, NodeFunction } from '../../runtime/api.ts';

/** One run of a source node, from its start to its teardown. */
export interface SourceSession {
  /** Starts reading; a rejection fails the node (which restarts with backoff). */
  start(): Promise<void>;
  /** The node must drain: stop reading, emit what was read, and complete the output. */
  drain(): void;
  /** The subscription ended (completed, failed or forced): free what is left, at once. */
  close(): void;
}

/** A source node whose each run is the session `open` makes; the session emits through `out`. */
export function sessionSource(ctx: NodeContext<unknown>, open: (out: Subscriber<Batch>) => SourceSession): NodeFunction {
  return function sessionSourceNode() {
    return new Observable<Batch>((out) => {
      const session = open(out);
      const onAbort = (): void => session.drain();
      session.start().catch((error: unknown) => out.error(error));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();
      return function closeSession() {
        ctx.signal.removeEventListener('abort', onAbort);
        session.close();
      };
    });
  };
}
