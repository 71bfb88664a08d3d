/**
 * What the three window operators share: the `time`, `key` and `lateness`
 * settings, the ports, `create`, and the fusion with `aggregate`. Each
 * window operator's file gives only its own settings, its doc and the
 * assigner of its geometry.
 */
import { defineOperator, duration, expression, z, type AggregateSpec, type NodeContext, type OperatorDefinition } from '../../../runtime/api.ts';
import { compileAggregates } from './aggregators.ts';
import type { WindowAssigner } from './assigner.ts';
import { recordsFolder, type PaneFolder } from './pane-folder.ts';
import { windowGeometry, windowNode, type WindowSettings } from './window-node.ts';

/**
 * The settings every window has, to spread into its schema where they
 * belong among its own (their order is the order of the docs).
 *
 * @example
 * z.object({ size: duration(), ...windowSettings() })
 */
export function windowSettings() {
  return {
    time: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'The field holding each record\'s event time, as epoch milliseconds or an ISO 8601 string; absent means processing time (the clock when the record arrives).',
        examples: ['ts'],
      }),
    key: expression()
      .optional()
      .meta({ description: 'A CEL expression over the record giving its key; each key has its own windows. Absent means one key (`null`).', examples: ['device'] }),
    lateness: duration()
      .prefault('0ms')
      .meta({ description: 'How long past a window\'s end (in event time) it stays open for out-of-order records.', examples: ['2s'] }),
  };
}

const windowInputs: OperatorDefinition['inputs'] = {
  in: { type: 'T: Event', doc: 'Records to group into windows.' },
};

const windowOutputs: OperatorDefinition['outputs'] = {
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

/** What a window operator's file says of it: all but what every window shares. */
export interface WindowOperatorSpec<Settings extends WindowSettings> {
  name: string;
  summary: string;
  doc: string;
  /** Its settings, `windowSettings()` among them. */
  settings: z.ZodType<Settings>;
  example: Record<string, unknown>;
  /** The assigner of its window geometry, over panes holding what `folder` folds. */
  assigner<State>(settings: Settings, folder: PaneFolder<State>): WindowAssigner<State>;
}

/**
 * Defines a window operator: the spec's name, docs, settings and assigner,
 * with the window ports, records as pane contents when it stands alone, and
 * the fusion with an `aggregate` that consumes it, whose records are folded
 * into per-window aggregates as they arrive, never buffered (a record the
 * aggregate cannot read goes to the aggregate's dead letters).
 */
export function defineWindowOperator<Settings extends WindowSettings>(spec: WindowOperatorSpec<Settings>): OperatorDefinition<Settings> {
  const { assigner, ...described } = spec;
  /** Runs a window whose panes hold what `folder` folds; `assignerOf` builds its own windows and a snapshot's. */
  function runWindow<State>(ctx: NodeContext<Settings>, foldCtx: NodeContext<unknown>, folder: PaneFolder<State>) {
    return windowNode({ ctx, foldCtx, folder, assignerOf: (settings) => assigner(settings as Settings, folder) });
  }
  return defineOperator<Settings>({
    ...described,
    inputs: windowInputs,
    outputs: windowOutputs,
    partitionBy: { setting: 'key' },
    reloadNote(before, after, { fused }) {
      const geometry = (settings: Settings): string => windowGeometry(settings, assigner(settings, recordsFolder));
      if (geometry(before) === geometry(after)) return undefined;
      return fused
        ? 'changed its windows while fused with an aggregate: any open windows were emitted early, as the old settings made them (their results split at this reload)'
        : 'changed its windows: any records it held were folded again, in arrival order, into the new windows (in event time, those whose new window had already closed went to `late`)';
    },
    create(ctx) {
      return runWindow(ctx, ctx, recordsFolder);
    },
    fuse: {
      aggregate(ctx, aggregateCtx: NodeContext<Record<string, AggregateSpec>>) {
        return runWindow(ctx, aggregateCtx as NodeContext<unknown>, compileAggregates(aggregateCtx.settings));
      },
    },
  });
}
