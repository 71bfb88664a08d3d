import { defineOperator, duration, perRecord, z } from '../../runtime/api.ts';
import type { CmafItem } from '../../media/segment.ts';

/**
 * `segment.dash`: marks a packager's CMAF tracks for DASH as well, so the
 * origin publishes an MPD over the same segment bytes it serves for HLS.
 */
export default defineOperator({
  name: 'segment.dash',
  summary: 'Publish a packager\'s CMAF segments as DASH too (one set of bytes for HLS and DASH).',
  doc: 'Placed after `segment.hls`, passes every CMAF item through unchanged except init segments, whose playlist settings gain `dash: {minBufferTime, suggestedPresentationDelay}` (seconds). The origin (`serve.http`) then renders a dynamic MPD (SegmentTemplate over the same `init-{epoch}-{version}.mp4` and `{epoch}-{msn}.m4s`, low-latency `availabilityTimeOffset` when the packager makes parts) beside the HLS playlists: the segments are cut and stored once.',
  inputs: { in: { type: 'Segment<cmaf>', doc: 'CMAF items from `segment.hls`.' } },
  outputs: { out: { type: 'Segment<cmaf>', doc: 'The same items; init segments carry the DASH settings.' } },
  settings: z.object({
    min_buffer_time: duration().prefault('2s').meta({ description: 'The MPD\'s `minBufferTime`: how much a player buffers before it starts.', examples: ['2s', '1s'] }),
    suggested_presentation_delay: duration().optional().meta({ description: 'The MPD\'s `suggestedPresentationDelay`: how far behind the live edge players aim to play. Absent: the players decide.', examples: ['3s'] }),
  }),
  example: { min_buffer_time: '2s', suggested_presentation_delay: '3s' },
  create(ctx) {
    const dash = {
      minBufferTime: ctx.settings.min_buffer_time / 1000,
      ...(ctx.settings.suggested_presentation_delay === undefined ? {} : { suggestedPresentationDelay: ctx.settings.suggested_presentation_delay / 1000 }),
    };
    return perRecord<CmafItem, CmafItem>(ctx, function markDash(item) {
      if (item.type !== 'init') return item;
      // A new object: the same item may also reach an HLS-only branch.
      return { ...item, playlist: { ...item.playlist, dash } };
    });
  },
});
