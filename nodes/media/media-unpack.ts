import { bytesBuffer, defineOperator, perRecord, z, type BytesItem } from '../../runtime/api.ts';
import type { MediaItem } from '../../media/packet.ts';
import { decodeMediaItem } from '../../media/packet-wire.ts';

/**
 * `media.unpack`: Bytes messages written by `media.pack` back into media
 * packets, on the host that reads the topic.
 */
export default defineOperator({
  name: 'media.unpack',
  summary: 'Turn Bytes messages written by `media.pack` back into media packets.',
  doc: 'Decodes each Bytes item (from `kafka.consume` with `format: bytes`) written by `media.pack` into the media packet or stream end it holds, with its track, timestamps and flags as they were. A message that is not one (no `AMW1` mark, a malformed header) goes to the dead-letter port saying why, and the stream goes on. `streams worker` puts one after the consumer of every edge that carries media between hosts, so an `encode` on a `gpu` host reads the packets of an ingest on another.',
  inputs: { in: { type: 'Bytes', doc: 'Messages written by `media.pack`.' } },
  outputs: { out: { type: 'Media<*/*>', doc: 'The media packets and stream ends, in the messages\' order.' } },
  settings: z.object({}),
  example: {},
  create(ctx) {
    return perRecord<BytesItem, MediaItem>(ctx, function unpackMediaItem(item) {
      const bytes = bytesBuffer(item);
      ctx.metrics.bytes(bytes.length, 'read');
      const decoded = decodeMediaItem(bytes);
      if (decoded instanceof Error) throw decoded;
      return decoded;
    });
  },
});
