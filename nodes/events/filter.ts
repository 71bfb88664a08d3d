import { compileExpression, defineOperator, expression, perRecord, skip, z, type EventRecord } from '../../runtime/api.ts';

export default defineOperator({
  name: 'filter',
  summary: 'Keep the records for which an expression is true.',
  doc: 'Evaluates the CEL expression `where` against each record (its fields are the variables) and passes on the records for which it is `true`. A record for which the expression fails (a missing field, a wrong type) or gives something other than a boolean goes to the dead-letter port with the reason.',
  inputs: { in: { type: 'T: Event', doc: 'Records to test.' } },
  outputs: { out: { type: 'T', doc: 'The records that passed.' } },
  settings: z.object({
    where: expression().meta({ description: 'A CEL expression over the record\'s fields that yields a boolean.', examples: ['value >= 0 && device != "test"'] }),
  }),
  example: { where: 'value >= 0' },
  create(ctx) {
    const where = compileExpression(ctx.settings.where);
    return perRecord<EventRecord, EventRecord>(ctx, function filterRecord(record) {
      const verdict = where(record);
      if (verdict === true) return record;
      if (verdict === false) return skip;
      throw new TypeError(`\`where\` gave ${typeof verdict}, not a boolean`);
    });
  },
});
