import { duration, z } from '../../runtime/api.ts';
import { SliceAssigner } from './windowing/slice-assigner.ts';
import { defineWindowOperator, windowSettings } from './windowing/define-window-operator.ts';

const settings = z
  .object({
    size: duration().meta({ description: 'The length of each window.', examples: ['1m'] }),
    every: duration().meta({ description: 'How far apart windows start (the slide); at most `size`.', examples: ['10s'] }),
    ...windowSettings(),
  })
  .superRefine(function everyWithinSize(value, issues) {
    if (value.every > value.size) {
      issues.addIssue({
        code: 'custom',
        path: ['every'],
        message: '`every` must not exceed `size`, or records between windows would belong to none (use `window.tumbling` for `every` = `size`)',
        params: { code: 'bad_setting' },
      });
    }
  });

/**
 * `window.sliding`: overlapping windows of `size` starting every `every`,
 * per key, in event or processing time; fuses with a following `aggregate`.
 */
export default defineWindowOperator({
  name: 'window.sliding',
  summary: 'Group records into overlapping time windows per key.',
  doc: 'Groups records into windows of length `size` that start every `every` (aligned to the epoch), so each record belongs to `size / every` windows (rounded up), one set per `key`: a moving average over the last minute, updated every ten seconds, is `size: 1m, every: 10s`. Time, watermark and lateness work as in `window.tumbling`: with `time` the watermark is the largest event time seen and a window closes when it reaches the window\'s end plus `lateness`; without `time` windows follow the clock. A record is folded into those of its windows still open; only a record whose windows have all closed goes to the `late` port. Each closing window emits one record per key `{key, start, end, records}`, ordered by start then key; followed by an `aggregate` the two run fused and emit `{key, start, end, …aggregates}` without buffering records: each record is folded once, into the slice of time between two window boundaries it falls in, and a closing window merges its slices, so state grows with the number of slices, not with `size / every` copies of each record. The input\'s end flushes every open window; a reload carries them over, and when it changes `size`, `every` or the clock, folds their records again into the new windows as `window.tumbling` does. A source batch is acknowledged once every window holding one of its records has been emitted and acknowledged.',
  settings,
  example: { size: '1m', every: '10s', time: 'ts', key: 'device' },
  assigner(settings, folder) {
    return new SliceAssigner({ size: settings.size, every: settings.every, lateness: settings.lateness }, folder);
  },
});
