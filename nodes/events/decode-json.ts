import { bytesText, defineOperator, perRecord, z, type BytesItem, type EventRecord, type EventSchema, type FieldType } from '../../runtime/api.ts';
import { compileJsonDecoder } from './json-objects.ts';

const fieldType = z.enum(['string', 'number', 'bool', 'list', 'map', 'any']);

export default defineOperator({
  name: 'decode.json',
  summary: 'Parse bytes as JSON objects.',
  doc: 'Parses each input as one JSON object and emits it as an event. Input that is not JSON, or is JSON but not an object, goes to the dead-letter port with the parser\'s reason. With `schema`, the output type names those fields so downstream operators are checked against them, and records lacking a field, or holding a value of another type, go to the dead-letter port.',
  inputs: { in: { type: 'Bytes', doc: 'JSON text, one object per item.' } },
  outputs: { out: { type: 'Event', doc: 'The parsed objects.' } },
  settings: z.object({
    schema: z.record(z.string(), fieldType).optional().meta({ description: 'Fields every record must have, with their types (`string`, `number`, `bool`, `list`, `map`, `any`).', examples: [{ ts: 'number', device: 'string', value: 'number' }] }),
  }),
  example: { schema: { ts: 'number', device: 'string', value: 'number' } },
  infer(settings) {
    return settings.schema ? { out: { kind: 'event', schema: settings.schema as EventSchema } } : {};
  },
  create(ctx) {
    const decode = compileJsonDecoder(ctx.settings.schema as Record<string, FieldType> | undefined);
    return perRecord<BytesItem, EventRecord>(ctx, function decodeJson(item) {
      return decode(bytesText(item));
    });
  },
});
