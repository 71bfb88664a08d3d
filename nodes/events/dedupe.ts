import { Observable } from 'rxjs';
import { defineOperator, duration, expression, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { compileReader, keyStringOf } from './windowing/record-access.ts';

/** What a dedupe node's snapshot holds: remembered keys with when they were first seen, oldest first. */
interface DedupeSnapshot {
  version: 1;
  seen: [string, number][];
}

/**
 * `dedupe`: passes the first record of each key and drops repeats seen
 * within `window`, remembering at most `capacity` keys.
 */
export default defineOperator({
  name: 'dedupe',
  summary: 'Drop records whose key was seen recently.',
  doc: 'Passes on the first record of each key and drops the records with the same key that follow within `window` of it (measured on the clock, from the first occurrence: a repeat does not extend it). The key is the CEL expression `key` (a bare field name is read directly), or by default the whole record as JSON text (so field order counts). At most `capacity` keys are remembered: past that, the oldest are forgotten early, so a repeat of a forgotten key passes again; that bounds memory at roughly `capacity` keys. Dropped duplicates are counted as drops with reason `duplicate` and acknowledged at once. A record whose key expression fails goes to the dead-letter port. The remembered keys are saved when the node stops and restored by its next run or a reload.',
  inputs: { in: { type: 'T: Event', doc: 'Records, possibly repeated.' } },
  outputs: { out: { type: 'T', doc: 'The first record of each key within the window, unchanged.' } },
  settings: z.object({
    key: expression().optional().meta({ description: 'A CEL expression giving the identity of a record; absent means the whole record.', examples: ['id', 'device + ":" + string(ts)'] }),
    window: duration().prefault('10m').meta({ description: 'How long a key is remembered after its first occurrence.', examples: ['1h'] }),
    capacity: z.number().int().positive().default(100_000).meta({ description: 'The most keys remembered; the oldest are forgotten first.', examples: [1_000_000] }),
  }),
  example: { key: 'id', window: '10m' },
  partitionBy: { setting: 'key' },
  create(ctx) {
    const { window, capacity } = ctx.settings;
    const keyReader = ctx.settings.key === undefined ? undefined : compileReader(ctx.settings.key);
    // Insertion order is first-seen order, and the clock only moves forward: the oldest key is first.
    const seen = new Map<string, number>();
    let evictions = 0;

    const restored = ctx.restored as DedupeSnapshot | undefined;
    if (restored?.version === 1) for (const [key, at] of restored.seen) seen.set(key, at);
    ctx.snapshot(function saveSeenKeys(): DedupeSnapshot {
      return { version: 1, seen: [...seen] };
    });

    function forgetExpired(now: number): void {
      for (const [key, at] of seen) {
        if (at + window > now) return;
        seen.delete(key);
      }
    }

    function remember(key: string, now: number): void {
      seen.set(key, now);
      if (seen.size > capacity) {
        seen.delete(seen.keys().next().value!);
        evictions += 1;
        if (evictions === 1 || evictions % 100_000 === 0) {
          ctx.log.info({ node: ctx.node, capacity, evictions }, 'dedupe is at capacity: forgetting the oldest keys early');
        }
      }
    }

    return function dedupeNode(input) {
      return new Observable<Batch>((subscriber) => {
        const subscription = input.subscribe({
          next(batch) {
            const items = batch.items as EventRecord[];
            const now = ctx.now();
            forgetExpired(now);
            const out: EventRecord[] = [];
            let duplicates = 0;
            for (let i = 0; i < items.length; i++) {
              const record = items[i];
              let key: string;
              try {
                key = keyReader === undefined ? JSON.stringify(record) : keyStringOf(keyReader.read(record));
              } catch (error) {
                ctx.fail(record, error, batch.ack);
                continue;
              }
              if (seen.has(key)) {
                duplicates += 1;
                continue;
              }
              remember(key, now);
              out.push(record);
            }
            if (duplicates > 0) ctx.metrics.dropped(duplicates, 'duplicate');
            if (out.length === 0) batch.ack.release();
            else subscriber.next(out.length === items.length ? batch : { items: out, ack: batch.ack });
          },
          error: (error: unknown) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
        return () => subscription.unsubscribe();
      });
    };
  },
});
