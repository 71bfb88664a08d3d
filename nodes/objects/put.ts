import { defineOperator, perBatchAsync, reasonOf, z } from '../../runtime/api.ts';
import type { CmafItem } from '../../media/segment.ts';
import type { ObjectInfo } from '../../native/s3/object-store.ts';
import { keyFor, referenceOf, referencePortType, type ObjectReference } from './reference.ts';
import { storeFields, storeNode } from './store-settings.ts';
import { inParallel, transferFields, withRetries, type Outcome } from './transfer.ts';

/**
 * `objects.put`: CMAF items into an object store, a reference record out
 * for each, so another host can fetch them (`objects.get`).
 */
export default defineOperator({
  name: 'objects.put',
  summary: 'Write CMAF init segments, parts and segments to object storage (S3 or a folder) and emit a reference to each.',
  doc: 'Writes the bytes of each item of a `Segment<cmaf>` stream (from `segment.hls`) to `store`, an S3-compatible bucket (`s3://bucket/prefix`) or a folder, under keys after the origin\'s URLs: `STREAM/TRACK/init-EPOCH-HASH.mp4`, `STREAM/TRACK/EPOCH-MSN.m4s` and `STREAM/TRACK/EPOCH-MSN.PART.m4s` (below `prefix`; stream and track names percent-encoded). Every key names one content for good, so objects get `cache_control` (a year, immutable, by default) and the content type of their kind. Then it emits, in the input\'s order, one reference record per item: `{type, stream, track, rendition, key, size, etag, content_type}` with the item\'s own fields (`msn`, `part`, `duration`, `independent`, `program_date_time`, `start_time`, `discontinuity`, `closed_at`; for an init its track `info` with the decoder configuration in base64, its `playlist` settings and `epoch`); an `end` item writes nothing and is emitted as `{type: end, stream, track?}`. References are small JSON records, for a Kafka topic: `objects.get` on another host turns them back into the items, so a `serve.http` there serves the same stream. Up to `concurrency` objects of a batch are written at once; a batch\'s references are emitted once all its objects are stored, so a reference never names an object that is not there yet. An unreachable store is retried `retries` times with backoff from `retry_delay`; an item that still cannot be written, or one refused for good (bad credentials, a key with `..`), goes to the dead-letter port with a message naming the store and the key, and the stream goes on. With `retain`, objects below `prefix` older than it are deleted by a sweep at start (a previous run\'s leftovers too) and then every quarter of it, counted in `streams_objects_expired_total`: a 24/7 stream no longer fills the store. S3 credentials come from the environment (`STREAMS_S3_URL`, `STREAMS_S3_ACCESS_KEY`, `STREAMS_S3_SECRET_KEY`, `STREAMS_S3_REGION`) or from the settings as `${env:NAME}`, and are never logged. Playlists are not written: the origin renders them from the items (see docs/object-storage.md).',
  inputs: { in: { type: 'Segment<cmaf>', doc: 'CMAF items from `segment.hls`: inits, parts, segments, ends.' } },
  outputs: { out: { type: referencePortType, doc: 'One reference record per item, in order, once its object is stored.', optional: true } },
  settings: z.object({
    ...storeFields,
    cache_control: z.string().min(1).default('public, max-age=31536000, immutable').meta({ description: 'The `Cache-Control` stored with each object (keys never change content, so caches may keep them).', examples: ['public, max-age=60'] }),
    ...transferFields({ moved: 'written', retried: 'the store cannot be reached' }),
  }),
  example: { store: 's3://media/live' },
  paced: true,
  create(ctx) {
    return storeNode(ctx, function putThroughStore(store) {
      const { cache_control: cacheControl, concurrency, retries, retry_delay: delay } = ctx.settings;
      /** Each track's epoch, from its last init: later parts and segments are named by it. */
      const epochs = new Map<string, string>();

      function epochKey(stream: string, track: string): string {
        return `${stream}\u0000${track}`;
      }

      function write(item: Exclude<CmafItem, { type: 'end' }>): () => Promise<Outcome<ObjectInfo>> {
        const key = keyFor(item, epochs.get(epochKey(item.stream, item.track)));
        if (item.type === 'init') {
          if (item.epoch === undefined) epochs.delete(epochKey(item.stream, item.track));
          else epochs.set(epochKey(item.stream, item.track), item.epoch);
        }
        return () => withRetries(() => store().put(key, item.data, { cacheControl }), { retries, delay, signal: ctx.signal });
      }

      return perBatchAsync<CmafItem, ObjectReference>(ctx, async function storeBatch(items, batch) {
        // Opened here, outside the retries: a store that cannot work (no credentials) fails the node with its message.
        store();
        const tasks: Array<() => Promise<Outcome<ObjectInfo>>> = [];
        const slots: number[] = [];
        for (const item of items) {
          if (item.type === 'end') {
            if (item.track === undefined) for (const key of epochs.keys()) if (key.startsWith(`${item.stream}\u0000`)) epochs.delete(key);
            slots.push(-1);
            continue;
          }
          slots.push(tasks.length);
          tasks.push(write(item));
        }
        const outcomes = await inParallel(tasks, concurrency);
        const out: ObjectReference[] = [];
        let bytes = 0;
        items.forEach((item, index) => {
          const slot = slots[index];
          if (slot === -1) {
            out.push(referenceOf(item, undefined));
            return;
          }
          const outcome = outcomes[slot];
          if (!outcome.ok) {
            ctx.fail({ ...referenceOf(item, { key: '', size: 0, etag: '', content_type: '' }) }, new Error(reasonOf(outcome.error)), batch.ack);
            return;
          }
          const object = outcome.value;
          bytes += object.size;
          out.push(referenceOf(item, { key: object.key, size: object.size, etag: object.etag, content_type: object.contentType ?? '' }));
        });
        ctx.metrics.bytes(bytes, 'written');
        return out;
      });
    });
  },
});
