import { describe, expect, it } from 'vitest';
import { describeSettings, operatorDoc, renderOperator, renderOperatorTable, typeWords } from '../../cli/ops.ts';
import type { OperatorSpec, Registry } from '../../graph/operator-spec.ts';
import { aggregate, duration, expression, size, z } from '../../graph/settings.ts';

describe('typeWords', () => {
  it.each([
    ['a duration', duration(), 'duration'],
    ['a size', size(), 'size'],
    ['an expression', expression(), 'expression'],
    ['an aggregate', aggregate(), 'aggregate'],
    ['a string', z.string().min(1), 'string'],
    ['a positive integer', z.number().int().positive(), 'integer >= 1'],
    ['a bounded integer', z.number().int().min(1).max(1024), 'integer from 1 to 1024'],
    ['a positive number', z.number().positive(), 'number > 0'],
    ['a choice', z.enum(['lines', 'ndjson']), 'one of: lines, ndjson'],
    ['a map of expressions', z.record(z.string(), expression()), 'map of string to expression'],
    ['a list', z.array(z.string()), 'list of string'],
    ['an optional duration with a default', duration().default(1000), 'duration'],
    ['a boolean', z.boolean(), 'boolean'],
  ])('names %s', (_what, schema, words) => {
    expect(typeWords(schema)).toBe(words);
  });
});

describe('describeSettings', () => {
  const schema = z.object({
    size: duration().meta({ description: 'Window length.', examples: ['1s'] }),
    lateness: duration().default(2000).meta({ description: 'How late.' }),
    buffer: size().default(65536).meta({ description: 'Buffer.' }),
    format: z.enum(['a', 'b']).default('a').meta({ description: 'Format.' }),
    tls: z.object({ ca: z.string().meta({ description: 'CA file.' }) }).optional().meta({ description: 'TLS.' }),
  });

  it('reads types, defaults as written, descriptions and examples from the schema', () => {
    expect(describeSettings(schema)).toEqual([
      { name: 'size', type: 'duration', required: true, description: 'Window length.', examples: ['1s'] },
      { name: 'lateness', type: 'duration', required: false, default: '2s', description: 'How late.', examples: [] },
      { name: 'buffer', type: 'size', required: false, default: '64KiB', description: 'Buffer.', examples: [] },
      { name: 'format', type: 'one of: a, b', required: false, default: 'a', description: 'Format.', examples: [] },
      { name: 'tls', type: 'map', required: false, description: 'TLS.', examples: [] },
      { name: 'tls.ca', type: 'string', required: true, description: 'CA file.', examples: [] },
    ]);
  });

  it('gives settings of the user\'s choosing one `<name>` row', () => {
    const named = z.record(z.string(), aggregate()).meta({ description: 'Field to aggregate.' });
    expect(describeSettings(named)).toEqual([{ name: '<name>', type: 'aggregate', required: false, description: 'Field to aggregate.', examples: [] }]);
  });
});

const sample: OperatorSpec<any> = {
  name: 'sample.pick',
  summary: 'Pick some records.',
  doc: 'Picks one record in `every`.',
  inputs: { in: { type: 'T: Event', doc: 'Records.' } },
  outputs: { out: { type: 'T', doc: 'The picked records.' } },
  settings: z.object({ every: z.number().int().positive().meta({ description: 'One in how many.', examples: [10] }) }),
  requires: ['gpu'],
};
const registry: Registry = new Map([[sample.name, sample]]);

describe('renderOperator', () => {
  const text = renderOperator(sample);

  it('shows ports with the implicit dead-letter port, settings, requirements and an example', () => {
    expect(text).toContain('in: T: Event');
    expect(text).toContain('dlq: Event<{error: string, node: string}>');
    expect(text).toContain('every: integer >= 1 (required)');
    expect(text).toContain('Requires: gpu');
    expect(text).toContain('op: sample.pick\n      in: upstream\n      with:\n        every: 10');
  });
});

describe('renderOperatorTable', () => {
  it('aligns names, ports and summaries', () => {
    expect(renderOperatorTable(registry)).toBe('OPERATOR     PORTS          SUMMARY\nsample.pick  T: Event -> T  Pick some records.\n');
  });

  it('cuts a wide event schema to its first fields, so the summaries still wrap beside it', () => {
    const wide: OperatorSpec<any> = { ...sample, name: 'sample.log', outputs: { log: { type: 'Event<{ts: number, edge: string, client: string, method: string, path: string}>', doc: 'Lines.' } } };
    const table = renderOperatorTable(new Map([[wide.name, wide]]));
    expect(table).toContain('T: Event -> Event<{ts, edge, client, ...}>  Pick some records.');
  });
});

describe('operatorDoc', () => {
  it('finds an operator by name', () => {
    expect(operatorDoc('sample.pick', registry)).toMatchObject({ found: true, spec: sample });
  });

  it('suggests the closest name for a typo', () => {
    expect(operatorDoc('sample.pik', registry)).toEqual({ found: false, message: 'unknown operator `sample.pik`', hint: 'did you mean `sample.pick`?' });
  });

  it('points to the list when nothing is close', () => {
    expect(operatorDoc('kafka.produce', registry)).toMatchObject({ found: false, hint: 'run `streams ops` for the list' });
  });
});
