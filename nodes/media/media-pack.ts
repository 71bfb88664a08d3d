import { defineOperator, perRecord, z, type BytesItem } from '../../runtime/api.ts';
import type { MediaItem } from '../../media/packet.ts';
import { encodeMediaItem } from '../../media/packet-wire.ts';

/**
 * `media.pack`: media packets to Bytes, one self-contained message each, so
 * they can cross hosts on a Kafka topic (`media.unpack` reads them back).
 */
export default defineOperator({
  name: 'media.pack',
  summary: 'Turn media packets into Bytes messages (for a Kafka topic between hosts); `media.unpack` reverses it.',
  doc: 'Encodes each media packet or stream end as one Bytes item (`media/packet-wire.ts`, version 1: the mark `AMW1`, a JSON header with the stream, rendition, track (its decoder configuration in base64), timestamps, keyframe and discontinuity flags, then the packet\'s data), with `meta.stream` and `meta.rendition` set (and `meta.keyframe: true` on a video keyframe), so `kafka.produce` can key by `stream` and keep a stream in one partition, in order. Every message stands alone, so a consumer may start at any offset. `streams worker` puts one before the producer of every edge that carries media between hosts; that producer packs several of these messages into one Kafka message (`pack_bytes: 64KiB`, a keyframe larger than that alone) and the consumer on the other host unpacks them.',
  inputs: { in: { type: 'Media<*/*>', doc: 'Media packets and stream ends.' } },
  outputs: { out: { type: 'Bytes', doc: 'One message per item, `meta: {stream, rendition, keyframe}`.' } },
  settings: z.object({}),
  example: {},
  create(ctx) {
    return perRecord<MediaItem, BytesItem>(ctx, function packMediaItem(item) {
      const data = encodeMediaItem(item);
      ctx.metrics.bytes(data.length, 'written');
      const rendition = (item as { rendition?: string }).rendition;
      // `keyframe` lets the producer say what a consumer misses when the broker refuses this message.
      // Video only: every audio frame is a keyframe, and losing one leaves no gap to wait out.
      const packet = item as { keyframe?: boolean; track?: { kind?: string } };
      const keyframe = packet.keyframe === true && packet.track?.kind === 'video';
      return { data, meta: { stream: item.stream, ...(rendition !== undefined && { rendition }), ...(keyframe && { keyframe }) } };
    });
  },
});
