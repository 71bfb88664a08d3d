/**
 * MQTT topic names and filters: their rules (MQTT 3.1.1 §4.7, MQTT 5 §4.7
 * and §4.8.2 for shared subscriptions), as settings and as checks.
 */
import { z } from '../../../runtime/api.ts';

/** Why `filter` is not a valid topic filter, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'a topic filter cannot be empty';
  if (filter.includes('\u0000')) return 'a topic filter cannot contain a NUL character';
  let levels = filter.split('/');
  if (levels[0] === '$share') {
    if (levels.length < 3 || levels[1] === '') return `\`${filter}\`: a shared subscription is \`$share/GROUP/FILTER\``;
    if (/[+#]/.test(levels[1])) return `\`${filter}\`: the group name of a shared subscription cannot contain \`+\` or \`#\``;
    levels = levels.slice(2);
  }
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `\`${filter}\`: \`#\` must be a whole level and the last one (\`a/b/#\`)`;
    if (level.includes('+') && level !== '+') return `\`${filter}\`: \`+\` must be a whole level (\`a/+/c\`)`;
  }
  return undefined;
}

/** Why `topic` cannot be published to, or undefined when it can. */
export function topicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'the topic is empty';
  if (/[+#]/.test(topic)) return `topic \`${topic}\` contains a wildcard (\`+\` or \`#\`), which only subscriptions may use`;
  if (topic.includes('\u0000')) return `topic \`${topic}\` contains a NUL character`;
  if (Buffer.byteLength(topic) > 65535) return 'the topic is longer than 65535 bytes';
  return undefined;
}

/** The filter to subscribe to: `$share/GROUP/filter` when the node has a `group`. */
export function sharedFilter(filter: string, group: string | undefined): string {
  return group === undefined || filter.startsWith('$share/') ? filter : `$share/${group}/${filter}`;
}

/** The `topics` setting: one topic filter or a list, each checked. */
export function topicsSetting(description: string, fallback?: string[]) {
  const schema = z
    .union([z.string(), z.array(z.string()).min(1)])
    .transform(function checkTopicFilters(value, ctx): string[] {
      const filters = Array.isArray(value) ? value : [value];
      for (const filter of filters) {
        const problem = filterProblem(filter);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }
      return filters;
    });
  const withDefault = fallback ? schema.prefault(fallback) : schema;
  return withDefault.meta({ description, examples: [['sensors/#'], ['site/+/temperature', 'site/+/humidity']] });
}

/** The `qos` setting. */
export function qosSetting(description: string) {
  return z
    .union([z.literal(0), z.literal(1), z.literal(2)])
    .default(1)
    .meta({ description, examples: [0, 2] });
}
