import { defineOperator, perRecord, z, type BytesItem, type EventRecord } from '../../runtime/api.ts';

export default defineOperator({
  name: 'encode.json',
  summary: 'Serialise events as JSON text.',
  doc: 'Serialises each event as one line of JSON text (no trailing newline; file and network sinks add their own framing). With `pretty`, indents by two spaces. A record that cannot be serialised (a cycle, a BigInt) goes to the dead-letter port.',
  inputs: { in: { type: 'Event', doc: 'Events to serialise.' } },
  outputs: { out: { type: 'Bytes', doc: 'JSON text, one item per event.' } },
  settings: z.object({
    pretty: z.boolean().default(false).meta({ description: 'Indent the JSON by two spaces.' }),
  }),
  create(ctx) {
    const indent = ctx.settings.pretty ? 2 : undefined;
    return perRecord<EventRecord, BytesItem>(ctx, function encodeJson(record) {
      return { text: JSON.stringify(record, undefined, indent) };
    });
  },
});
