import { bytesText, defineOperator, perRecord, z, type BytesItem, type EventRecord } from '../../runtime/api.ts';
import type { EventSchema, FieldType } from '../../graph/port-types.ts';

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
    const schema = Object.entries(ctx.settings.schema ?? {}) as [string, FieldType][];
    if (schema.length === 0) return perRecord<BytesItem, EventRecord>(ctx, parseObject);
    return perRecord<BytesItem, EventRecord>(ctx, function decodeJsonWithSchema(item) {
      const record = parseObject(item);
      for (const [field, type] of schema) {
        if (!(field in record)) throw new TypeError(`missing field \`${field}\``);
        if (!matches(record[field], type)) throw new TypeError(`field \`${field}\` is not a ${type}`);
      }
      return record;
    });
  },
});

/** One item's JSON text as an object; throws for anything else (a dead letter). */
function parseObject(item: BytesItem): EventRecord {
  // Lines from `file.read` and most sources carry text: read it without the general helper.
  const value: unknown = JSON.parse(typeof item.text === 'string' ? item.text : bytesText(item));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  return value as EventRecord;
}

function matches(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'any':
      return true;
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'list':
      return Array.isArray(value);
    case 'map':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
  }
}
