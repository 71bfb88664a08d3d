/**
 * What the three window operators share: the `time`, `key` and `lateness`
 * settings, the ports, and the fusion with `aggregate`.
 */
import { duration, expression, z, type AggregateSpec, type NodeContext, type NodeFunction, type OperatorDefinition } from '../../../runtime/api.ts';
import { compileAggregates } from './aggregators.ts';
import type { WindowAssigner } from './assigner.ts';
import { recordsFolder, type PaneFolder } from './pane-folder.ts';
import { windowNode, type WindowSettings } from './window-node.ts';

/** The `time` setting: the event-time field, absent for processing time. */
export function timeSetting() {
  return z
    .string()
    .min(1)
    .optional()
    .meta({
      description: 'The field holding each record\'s event time, as epoch milliseconds or an ISO 8601 string; absent means processing time (the clock when the record arrives).',
      examples: ['ts'],
    });
}

/** The `key` setting: a CEL expression grouping records into separate windows. */
export function keySetting() {
  return expression()
    .optional()
    .meta({ description: 'A CEL expression over the record giving its key; each key has its own windows. Absent means one key (`null`).', examples: ['device'] });
}

/** The `lateness` setting. */
export function latenessSetting() {
  return duration()
    .prefault('0ms')
    .meta({ description: 'How long past a window\'s end (in event time) it stays open for out-of-order records.', examples: ['2s'] });
}

/** A window node's input. */
export const windowInputs: OperatorDefinition['inputs'] = {
  in: { type: 'T: Event', doc: 'Records to group into windows.' },
};

/** A window node's outputs: panes, and records that came too late. */
export const windowOutputs: OperatorDefinition['outputs'] = {
  out: {
    type: 'Event<{key: any, start: number, end: number, records: list}>',
    doc: 'One record per key and window when the window closes: `key`, `start` and `end` (epoch ms, end exclusive) and `records` in event-time order. Fused with a following `aggregate`, its results instead.',
  },
  late: {
    type: 'T',
    doc: 'Records that arrived after every window they belong to had closed, unchanged.',
    optional: true,
    droppedWhenUnread: { onlyWith: 'time', unlessSet: 'lateness' },
  },
};

/** Builds a window's function with records as pane contents (no aggregate downstream). */
export function windowOfRecords(ctx: NodeContext<WindowSettings>, assignerFor: <S>(folder: PaneFolder<S>) => WindowAssigner<S>): NodeFunction {
  return windowNode({ ctx, foldCtx: ctx, folder: recordsFolder, assigner: assignerFor(recordsFolder) });
}

/**
 * The fusion of a window with the `aggregate` that consumes it: records are
 * folded into per-window aggregates as they arrive, never buffered. A record
 * the aggregate cannot read goes to the aggregate's dead letters.
 */
export function windowWithAggregate(
  ctx: NodeContext<WindowSettings>,
  aggregateCtx: NodeContext<Record<string, AggregateSpec>>,
  assignerFor: <S>(folder: PaneFolder<S>) => WindowAssigner<S>,
): NodeFunction {
  const folder = compileAggregates(aggregateCtx.settings);
  return windowNode({ ctx, foldCtx: aggregateCtx as NodeContext<unknown>, folder, assigner: assignerFor(folder) });
}
