import { compileExpression, defineOperator, expression, perRecord, toPlain, z, type EventRecord } from '../../runtime/api.ts';

export default defineOperator({
  name: 'map',
  summary: 'Compute, drop or keep fields of each record.',
  doc: 'Builds a new record from each input record: `keep` first narrows it to the listed fields, `set` computes fields from CEL expressions over the input record\'s fields (all evaluated against the input, so they do not see each other), and `drop` removes fields last. A record whose expression fails goes to the dead-letter port with the reason.',
  inputs: { in: { type: 'Event', doc: 'Records to transform.' } },
  outputs: { out: { type: 'Event', doc: 'The transformed records.' } },
  settings: z.object({
    set: z.record(z.string(), expression()).optional().meta({ description: 'Fields to compute: field name to CEL expression.', examples: [{ fahrenheit: 'value * 9.0 / 5.0 + 32.0' }] }),
    drop: z.array(z.string()).optional().meta({ description: 'Fields to remove.' }),
    keep: z.array(z.string()).optional().meta({ description: 'Fields to keep (all others are removed), applied before `set`.' }),
  }),
  example: { set: { doubled: 'value * 2' }, drop: ['raw'] },
  create(ctx) {
    const set = Object.entries(ctx.settings.set ?? {}).map(([field, text]) => [field, compileExpression(text)] as const);
    const drop = ctx.settings.drop ?? [];
    const keep = ctx.settings.keep;
    return perRecord<EventRecord, EventRecord>(ctx, function mapRecord(record) {
      let out: EventRecord;
      if (keep) {
        out = {};
        for (const field of keep) if (field in record) out[field] = record[field];
      } else {
        out = { ...record };
      }
      for (const [field, expr] of set) out[field] = toPlain(expr(record));
      for (const field of drop) delete out[field];
      return out;
    });
  },
});
