import { duration, z } from '../../runtime/api.ts';
import { defineWindowOperator, windowSettings } from './windowing/define-window-operator.ts';
import { SessionAssigner } from './windowing/session-assigner.ts';

const settings = z
  .object({
    gap: duration().meta({ description: 'Records of one key less than this apart belong to the same session.', examples: ['30m'] }),
    ...windowSettings(),
    max_size: duration().optional().meta({ description: 'The longest a session may last, from its first record to its last plus `gap`; at least `gap`.', examples: ['24h'] }),
  })
  .superRefine(function maxSizeWithinGap(value, issues) {
    if (value.max_size !== undefined && value.max_size < value.gap) {
      issues.addIssue({ code: 'custom', path: ['max_size'], message: '`max_size` must be at least `gap`', params: { code: 'bad_setting' } });
    }
  });

/**
 * `window.session`: per-key sessions of activity separated by `gap`, in
 * event or processing time; fuses with a following `aggregate`.
 */
export default defineWindowOperator({
  name: 'window.session',
  summary: 'Group each key\'s records into sessions separated by a gap of inactivity.',
  doc: 'Groups each key\'s records into sessions: records less than `gap` apart share a session, which runs from its first record\'s time to its last record\'s time plus `gap`. An out-of-order record that bridges two sessions merges them. With `max_size`, a session never grows longer than that: a record that would stretch it further starts a new session (or joins the latest-starting session it overlaps that can take it). With `time`, the watermark is the largest event time seen (across keys) and a session closes when the watermark reaches its end plus `lateness`; a record that would only make a session that has already closed goes to the `late` port. Without `time`, records are stamped with the clock and sessions close on timers. Each closing session emits `{key, start, end, records}` (records in time order), ordered by start then key; followed by an `aggregate` the two run fused and emit `{key, start, end, …aggregates}`, merging aggregates (sketches included) when sessions merge. The input\'s end flushes every open session; a reload carries them over, and when it changes `gap`, `max_size` or the clock, folds their records again into new sessions as `window.tumbling` does. A source batch is acknowledged once every session holding one of its records has been emitted and acknowledged.',
  settings,
  example: { gap: '30m', time: 'ts', key: 'user', max_size: '24h' },
  assigner(settings, folder) {
    return new SessionAssigner({ gap: settings.gap, lateness: settings.lateness, maxSize: settings.max_size ?? Infinity }, folder);
  },
});
