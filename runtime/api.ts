/**
 * The public boundary for operators: everything a node needs from the
 * runtime, and `defineOperator`. Operators import from here and from
 * `native/`, never from the runtime's internals.
 *
 * Records travel in batches (`Batch`), so per-record cost stays close to a
 * plain loop. A node is an RxJS function from its input batches to its
 * output batches; sources ignore their input and watch `ctx.signal`.
 */
import { Ack } from './ack.ts';
import type { OperatorDefinition } from './types.ts';

export { Ack };
export {
  bytesText,
  bytesBuffer,
  bytesLength,
  carriesState,
  type EventRecord,
  type BytesItem,
  type Batch,
  type BatchOrigin,
  type SnapshotOptions,
  type NodeMetrics,
  type ByteDirection,
  type NodeMetricFamily,
  type Logger,
  type StopReason,
  type NodeContext,
  type NodeFunction,
  type OperatorDefinition,
} from './types.ts';
export { partitionEvents, partitionName, type PartitionEvents } from './state/partition-events.ts';
export { BucketHistogram } from './histogram.ts';
export { seededRandom } from './seeded-random.ts';
export { NodeError, reasonOf, failureKind, pathError, type FailureKind } from './failure.ts';
export { ensureFolder, checkInputFile, checkInputFolder, checkOutputFile, type PathProblem } from './paths.ts';
export { z, duration, size, expression, aggregate } from '../graph/settings.ts';
export { compileExpression, toPlain, type CompiledExpression } from '../graph/expression.ts';
export type { AggregateSpec } from '../graph/aggregate-spec.ts';
export type { EventSchema, FieldType, PortType } from '../graph/port-types.ts';

/**
 * Defines an operator. The settings type is inferred from the zod schema, so
 * `create` sees parsed settings (durations in ms, sizes in bytes).
 */
export function defineOperator<Settings>(definition: OperatorDefinition<Settings>): OperatorDefinition<Settings> {
  return definition;
}

export { perRecord, perBatchAsync, sinkBatches, skip, operate } from './batch-operators.ts';
export { backoffDelay, retryDelay, retryAfterMs, sleep } from './retry.ts';
export { redactUrl } from './redact.ts';
export { carrierOf, remoteContext, headerCarrier, traceRequest, type NodeTracing, type TraceSpan, type TraceCarrier, type TraceContext, type SpanRole } from './tracing/context.ts';
