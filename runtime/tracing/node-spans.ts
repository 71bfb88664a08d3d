/**
 * The spans the runtime makes for one node's batches, with tracing on: one
 * around the node's synchronous work on each sampled input batch, and the
 * parent every batch it emits carries (that span; from a source, a new
 * sampled one). Operators' own spans go through `ctx.tracing`.
 */
import type { Batch } from '../types.ts';
import type { TraceContext, TraceSpan } from './context.ts';
import type { Tracing } from './provider.ts';

/** The runtime's spans of one node (made only when tracing is on: off, the hot path makes none). */
export class NodeSpans {
  readonly #tracing: Tracing;
  readonly #node: string;
  readonly #operator: string;
  /**
   * The span of this node's latest input batch (`null` when that batch is
   * not sampled), the parent of what the node emits from it. Undefined for a
   * source, which samples its batches instead.
   */
  #parent: TraceContext | null | undefined = undefined;

  constructor(tracing: Tracing, node: string, operator: string) {
    this.#tracing = tracing;
    this.#node = node;
    this.#operator = operator;
  }

  /**
   * This node's span of an input batch, a child of the batch's, when the
   * batch is sampled: the caller ends it after the node's synchronous work
   * (the node's own asynchronous work, a write or a request, has spans of its own).
   */
  enter(batch: Batch): TraceSpan | undefined {
    const span = batch.trace ? this.#tracing.span(batch.trace, this.#node, 'internal', this.#attributes(batch)) : undefined;
    this.#parent = span ? span.context : null;
    return span;
  }

  /**
   * The batch as it leaves this node, carrying its parent span: this node's
   * span of the input it came from; or, from a source, the span the source
   * set (a trace continued from another host) or a new sampled one.
   */
  outgoing(batch: Batch): Batch {
    let trace = this.#parent;
    if (trace === undefined) {
      if (batch.trace !== undefined) return batch;
      trace = null;
      if (this.#tracing.sample()) {
        const span = this.#tracing.span(undefined, this.#node, 'internal', this.#attributes(batch));
        span.end();
        trace = span.context;
      }
    }
    // Not sampled: the batch goes on as it is (no copy for the 99% a small ratio leaves out).
    if (trace === null) return batch.trace ? { ...batch, trace: null } : batch;
    return trace === batch.trace ? batch : { ...batch, trace };
  }

  /** What a span of this node says of the batch it covers. */
  #attributes(batch: Batch): Record<string, string | number> {
    return { 'streams.node': this.#node, 'streams.operator': this.#operator, 'streams.records': batch.items.length };
  }
}
