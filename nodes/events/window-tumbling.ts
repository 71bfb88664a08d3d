import { duration, z } from '../../runtime/api.ts';
import { SliceAssigner } from './windowing/slice-assigner.ts';
import { defineWindowOperator, windowSettings } from './windowing/define-window-operator.ts';

/**
 * `window.tumbling`: fixed, non-overlapping windows per key, in event or
 * processing time; fuses with a following `aggregate`.
 */
export default defineWindowOperator({
  name: 'window.tumbling',
  summary: 'Group records into fixed, non-overlapping time windows per key.',
  doc: 'Groups records into consecutive windows of length `size`, aligned to the epoch (`[0, size)`, `[size, 2·size)`, …), one set per `key`. With `time`, windows follow event time: the watermark is the largest event time the node has seen (across keys), and a window closes when the watermark reaches its end plus `lateness`; a record whose window has already closed goes, unchanged, to the `late` port, and a record whose time field is missing or not a date goes to the dead-letter port. Without `time`, records are stamped with the clock as they arrive and windows close on timers. When a window closes, each key emits one record `{key, start, end, records}` (epoch ms, end exclusive, records in time order), ordered by start then key. Followed directly by an `aggregate` (as its only consumer), the two run fused: records are folded into the aggregates as they arrive and never buffered, and the results `{key, start, end, …aggregates}` are emitted instead. When the input ends, every open window is emitted; when the node is replaced by a reload, open windows carry over to its successor; if the reload changed `size` or the clock (`time` set or not), their records are folded again, in arrival order, into the new windows, and those whose new window the watermark has already closed go to `late` (in processing time they join the current window instead; running fused aggregates cannot be split: the old windows are emitted early instead). A longer `lateness` does not reopen a window emitted before the reload: its records are late. State that these settings cannot read (restored with `--state` from another window operator or version) is dropped and counted (`window_state_unreadable` in records, or `window_panes_unreadable` in panes for fused aggregates). Source acknowledgements are held by the windows until their results are acknowledged downstream.',
  settings: z.object({
    size: duration().meta({ description: 'The length of each window.', examples: ['1s', '5m'] }),
    ...windowSettings(),
  }),
  example: { size: '1s', time: 'ts', key: 'device', lateness: '2s' },
  assigner(settings, folder) {
    return new SliceAssigner({ size: settings.size, every: settings.size, lateness: settings.lateness }, folder);
  },
});
