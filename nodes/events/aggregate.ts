import { Observable } from 'rxjs';
import { Ack, aggregate, carriesState, defineOperator, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { compileAggregates, type AggregateState } from './windowing/aggregators.ts';
import { sketchRelativeAccuracy } from './windowing/quantile-sketch.ts';

/** What a running (window-less) aggregate's snapshot holds. */
interface AggregateSnapshot {
  version: 1;
  shape: string;
  /** Records folded so far. */
  seen: number;
  state: unknown;
}

/** A window's output record, as `aggregate` recognises it. */
interface Pane {
  key: unknown;
  start: number;
  end: number;
  records: EventRecord[];
}

function isPane(item: EventRecord): item is EventRecord & Pane {
  return Array.isArray(item.records) && typeof item.start === 'number' && typeof item.end === 'number' && 'key' in item;
}

/** Aggregates whose result is a number (`first` and `last` give whatever the values are). */
const numberResults = new Set(['count', 'sum', 'min', 'max', 'avg', 'quantile', 'distinct']);

/**
 * `aggregate`: named aggregates per window pane, or one running aggregate
 * over a stream without windows. Fused into a directly preceding window.
 */
export default defineOperator({
  name: 'aggregate',
  summary: 'Compute count, sum, min, max, avg, quantiles, distinct counts, first and last per window.',
  doc: `Computes named aggregates: each setting names an output field and gives its aggregate, one of \`count()\`, \`sum(x)\`, \`min(x)\`, \`max(x)\`, \`avg(x)\`, \`quantile(x, q)\`, \`distinct(x)\`, \`first(x)\` or \`last(x)\`, where \`x\` is a CEL expression over the record (a bare field name is read directly, fastest). Fed by a window, it emits one record per window pane, \`{key, start, end, …aggregates}\`; placed right after the window as its only consumer, the two run fused and records are folded as they arrive instead of being buffered in the window. Fed by records without a window, it keeps one running aggregate over everything and emits it once, \`{…aggregates}\`, when its input ends (nothing if no record came); it then holds its input's acknowledgements until that result is acknowledged, so it suits finite inputs — put a window before it on an endless stream. \`quantile\` uses a DDSketch-style logarithmic sketch in bounded memory (at most 2048 buckets per sign): the result is within ${sketchRelativeAccuracy * 100}% relative error of the exact value at rank ⌊q·(n−1)⌋ of the sorted values, whatever their distribution, as long as their magnitudes span a ratio under about 6·10^17 per sign (beyond that the smallest magnitudes share a bucket and lose the guarantee). \`distinct\` counts distinct values exactly (it keeps every distinct value of the window in memory). \`first\` and \`last\` follow event time within a window (ties by arrival), arrival order otherwise. \`sum\`, \`min\`, \`max\`, \`avg\` and \`quantile\` need numbers: a record whose value is missing or not a number goes to the dead-letter port and counts in no aggregate. Empty \`min\`, \`max\`, \`avg\`, \`quantile\`, \`first\` and \`last\` are \`null\`.`,
  inputs: { in: { type: 'Event', doc: 'Window panes (`{key, start, end, records}`) or plain records.' } },
  outputs: { out: { type: 'Event', doc: 'One record per pane, `{key, start, end, …aggregates}`; or one running result at the end.' } },
  settings: z.record(z.string(), aggregate()).meta({
    description: 'Output field name to aggregate call.',
    examples: [{ count: 'count()', avg: 'avg(value)', p99: 'quantile(value, 0.99)' }],
  }),
  example: { count: 'count()', sum: 'sum(value)', avg: 'avg(value)', p99: 'quantile(value, 0.99)' },
  // Panes carry their window's key; plain records have none, so a running aggregate cannot be spread.
  partitionBy: { field: 'key' },
  infer(settings, inputs) {
    const schema: Record<string, 'number' | 'any'> = {};
    const input = inputs.in;
    if (input?.kind === 'event' && input.schema && 'records' in input.schema) {
      schema.key = 'any';
      schema.start = 'number';
      schema.end = 'number';
    }
    for (const [name, spec] of Object.entries(settings)) schema[name] = numberResults.has(spec.fn) ? 'number' : 'any';
    return { out: { kind: 'event', schema } };
  },
  create(ctx) {
    const folder = compileAggregates(ctx.settings);
    // The running aggregate over records that came without a window.
    let running: AggregateState = folder.create();
    let seen = 0;
    let held: Ack[] = [];
    let lastHeld: Ack | undefined;

    const restored = ctx.restored as AggregateSnapshot | undefined;
    if (restored !== undefined && restored !== null) {
      if (restored.version === 1 && restored.shape === folder.shape) {
        running = folder.load(restored.state);
        seen = restored.seen;
      } else {
        ctx.log.warn({ node: ctx.node }, 'saved aggregate does not fit the new settings; starting empty');
      }
    }
    ctx.snapshot(function saveAggregate(): AggregateSnapshot {
      return { version: 1, shape: folder.shape, seen, state: folder.save(running) };
    });

    function aggregatePane(pane: Pane, ack: Ack): EventRecord | undefined {
      const state = folder.create();
      let folded = 0;
      const records = pane.records;
      for (let i = 0; i < records.length; i++) {
        try {
          folder.prepare(records[i]);
        } catch (error) {
          ctx.fail(records[i], error, ack);
          continue;
        }
        // Pane records come in event-time order: their index orders `first`/`last`.
        folder.add(state, records[i], i, i);
        folded += 1;
      }
      if (folded === 0) return undefined;
      const out: EventRecord = { key: pane.key, start: pane.start, end: pane.end };
      folder.write(state, out);
      return out;
    }

    return function aggregateNode(input) {
      return new Observable<Batch>((subscriber) => {
        const subscription = input.subscribe({
          next(batch) {
            const items = batch.items as EventRecord[];
            const ack = batch.ack;
            const out: EventRecord[] = [];
            let foldedRunning = false;
            for (let i = 0; i < items.length; i++) {
              const item = items[i];
              if (isPane(item)) {
                const result = aggregatePane(item, ack);
                if (result !== undefined) out.push(result);
                continue;
              }
              try {
                folder.prepare(item);
              } catch (error) {
                ctx.fail(item, error, ack);
                continue;
              }
              folder.add(running, item, seen, seen);
              seen += 1;
              foldedRunning = true;
            }
            if (foldedRunning) {
              // The running result holds this batch until it is emitted and acknowledged.
              if (lastHeld !== ack) {
                ack.retain();
                held.push(ack);
                lastHeld = ack;
              }
              ack.settle();
            }
            if (out.length > 0) subscriber.next({ items: out, ack });
            else ack.release();
          },
          error: (error: unknown) => subscriber.error(error),
          complete() {
            const acks = held;
            held = [];
            lastHeld = undefined;
            if (carriesState(ctx.stopReason()) || seen === 0) {
              for (const ack of acks) ack.release();
            } else {
              const result: EventRecord = {};
              folder.write(running, result);
              running = folder.create();
              seen = 0;
              subscriber.next({ items: [result], ack: Ack.all(acks) });
            }
            subscriber.complete();
          },
        });
        return () => subscription.unsubscribe();
      });
    };
  },
});
