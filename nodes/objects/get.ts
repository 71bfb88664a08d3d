import { defineOperator, perBatchAsync, reasonOf, z } from '../../runtime/api.ts';
import type { CmafItem } from '../../media/segment.ts';
import { readBody } from '../../native/s3/object-store.ts';
import { itemOf, referenceSchema, type ObjectReference } from './reference.ts';
import { storeFields, storeNode } from './store-settings.ts';
import { inParallel, transferFields, withRetries, type Outcome } from './transfer.ts';

/** What is wrong with a record that should be a reference, in a few words. */
function referenceProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue.path.length > 0 ? ` at \`${issue.path.join('.')}\`` : '';
  return `not an object reference${where}: ${issue.message}`;
}

/**
 * `objects.get`: reference records in (from `objects.put`, usually through
 * a Kafka topic), the CMAF items they stand for out, their bytes fetched
 * from the object store.
 */
export default defineOperator({
  name: 'objects.get',
  summary: 'Fetch the objects named by reference records from object storage (S3 or a folder) and emit the CMAF items again.',
  doc: 'The other half of `objects.put`: each reference record `{type, stream, track, key, size, ...}` is fetched from `store` (the same store and `prefix` as the writer\'s; an S3 GET over HTTP, or a file) and emitted as the CMAF item it stood for (init, part or segment, with its bytes; an `end` needs no fetch), in the input\'s order, so a `serve.http` downstream serves the stream as the origin does. Up to `concurrency` objects of a batch are fetched at once; a batch\'s items are emitted once all of them are here. A store that cannot be reached, or an object not there yet, is retried `retries` times with backoff from `retry_delay`; then, or at once when retrying cannot help (refused credentials), the reference goes to the dead-letter port with a message naming the store and the key, and the stream goes on. An object whose size is not the reference\'s (rewritten since) is a dead letter too. A record that is not a reference goes to the dead-letter port saying which field is wrong. Credentials and `retain` (which sweeps the store as the writer\'s does, for a writer that cannot delete) as for `objects.put`.',
  inputs: { in: { type: 'Event', doc: 'Reference records, as `objects.put` emits them (read back from Kafka with `format: json`).' } },
  outputs: { out: { type: 'Segment<cmaf>', doc: 'The CMAF items, in the references\' order.' } },
  settings: z.object({
    ...storeFields,
    ...transferFields({ moved: 'fetched', retried: 'the store cannot be reached or the object is not there yet' }),
  }),
  example: { store: 's3://media/live' },
  paced: true,
  create(ctx) {
    return storeNode(ctx, function getThroughStore(store) {
      const { concurrency, retries, retry_delay: delay } = ctx.settings;

      async function fetchBytes(reference: ObjectReference): Promise<Buffer> {
        const object = await store().get(reference.key);
        const data = await readBody(object);
        if (data.length !== reference.size) throw new Error(`${store().where}: object \`${reference.key}\` has ${data.length} bytes, its reference says ${reference.size} (rewritten since?)`);
        return data;
      }

      return perBatchAsync<unknown, CmafItem>(ctx, async function fetchBatch(items, batch) {
        // Opened here, outside the retries: a store that cannot work (no credentials) fails the node with its message.
        store();
        const references: Array<ObjectReference | undefined> = [];
        const tasks: Array<() => Promise<Outcome<Buffer>>> = [];
        const slots: number[] = [];
        for (const item of items) {
          const parsed = referenceSchema.safeParse(item);
          if (!parsed.success) {
            ctx.fail(item, new Error(referenceProblem(parsed.error)), batch.ack);
            references.push(undefined);
            slots.push(-1);
            continue;
          }
          const reference = parsed.data;
          references.push(reference);
          if (reference.type === 'end') {
            slots.push(-1);
            continue;
          }
          slots.push(tasks.length);
          tasks.push(() => withRetries(() => fetchBytes(reference), { retries, delay, signal: ctx.signal }));
        }
        const outcomes = await inParallel(tasks, concurrency);
        const out: CmafItem[] = [];
        let bytes = 0;
        references.forEach((reference, index) => {
          if (reference === undefined) return;
          const slot = slots[index];
          if (slot === -1) {
            out.push(itemOf(reference, Buffer.alloc(0)));
            return;
          }
          const outcome = outcomes[slot];
          if (!outcome.ok) {
            ctx.fail(items[index], new Error(reasonOf(outcome.error)), batch.ack);
            return;
          }
          bytes += outcome.value.length;
          out.push(itemOf(reference, outcome.value));
        });
        ctx.metrics.bytes(bytes, 'read');
        return out;
      });
    });
  },
});
