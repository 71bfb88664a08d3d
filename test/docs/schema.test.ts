import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleNode } from '../../cli/ops.ts';
import { checkPipeline } from '../../graph/check.ts';
import { hostSchema, nodeKeys, placeSchema } from '../../graph/node-fields.ts';
import { registry } from '../../nodes/all.ts';

const root = join(import.meta.dirname, '..', '..');
const schemaFile = join(root, 'config', 'pipeline.schema.json');
/** The example pipelines; `*.test.yaml` files beside them are pipeline unit tests, another format. */
const pipelines = readdirSync(join(root, 'pipelines')).filter((name) => name.endsWith('.yaml') && !name.endsWith('.test.yaml')).sort();

/** The schema as shipped, which editors read; `generated.test.ts` checks that it is current. */
const schema = existsSync(schemaFile) ? (JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>) : undefined;

let validate: ValidateFunction;

beforeAll(() => {
  if (!schema) throw new Error('config/pipeline.schema.json is missing: run `npm run docs`');
  // Formats are annotations here: editors and the checker hold the real rules.
  const ajv = new Ajv({ allErrors: true, strictTypes: false, validateFormats: false });
  validate = ajv.compile(schema);
});

function errorsOf(document: unknown): string[] {
  if (validate(document)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}

function pipeline(nodes: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown {
  return { streams: 1, name: 'schema-test', ...extra, nodes };
}

describe('config/pipeline.schema.json', () => {
  it('is a valid draft-07 schema that compiles in strict mode', () => {
    expect(typeof validate).toBe('function');
  });

  it.each(pipelines)('accepts pipelines/%s', (file) => {
    expect(errorsOf(parse(readFileSync(join(root, 'pipelines', file), 'utf8')))).toEqual([]);
  });

  it('refuses an unknown operator', () => {
    const errors = errorsOf(pipeline({ numbers: { op: 'generat', with: { count: 3 } } }));
    expect(errors.some((e) => e.startsWith('/nodes/numbers/op') && e.includes('allowed values'))).toBe(true);
  });

  it('refuses an unknown setting', () => {
    const errors = errorsOf(pipeline({ numbers: { op: 'generate', with: { count: 3, sead: 7 } } }));
    expect(errors.some((e) => e.startsWith('/nodes/numbers/with') && e.includes('"additionalProperty":"sead"'))).toBe(true);
  });

  it('refuses a setting of the wrong type', () => {
    expect(errorsOf(pipeline({ numbers: { op: 'generate', with: { count: 'many' } } }))).not.toEqual([]);
  });

  it('refuses a missing required setting', () => {
    expect(errorsOf(pipeline({ keep: { op: 'filter', in: 'numbers' }, numbers: { op: 'generate' } }))).not.toEqual([]);
  });

  it('refuses unknown keys in the document, a node, a place and a host', () => {
    expect(errorsOf({ ...(pipeline({ numbers: { op: 'generate' } }) as object), nods: {} })).not.toEqual([]);
    expect(errorsOf(pipeline({ numbers: { op: 'generate', wiht: {} } }))).not.toEqual([]);
    expect(errorsOf(pipeline({ numbers: { op: 'generate', place: { rol: 'edge' } } }))).not.toEqual([]);
    expect(errorsOf(pipeline({ numbers: { op: 'generate' } }, { hosts: { a: { offer: ['gpu'] } } }))).not.toEqual([]);
  });

  it('accepts `${env:...}` and `${params...}` references where a number or a choice is expected', () => {
    const document = pipeline(
      { numbers: { op: 'generate', parallelism: '${params.workers}', with: { count: '${params.n}', rate: '${env:RATE}' } } },
      { params: { n: 10, workers: 2 } },
    );
    expect(errorsOf(document)).toEqual([]);
  });

  it('accepts every operator\'s documented example node', () => {
    for (const spec of registry.values()) {
      const { name, node } = exampleNode(spec);
      expect(errorsOf(pipeline({ [name]: node })), spec.name).toEqual([]);
    }
  });
});

/**
 * The schema lists the keys the checker accepts, which `graph/` keeps in
 * private constants; reading them from the source keeps the two in step
 * until they are exported.
 */
function keysIn(file: string, constant: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const match = new RegExp(`const ${constant}[^=]*=\\s*\\[([^\\]]*)\\]`).exec(text);
  if (!match) throw new Error(`cannot find \`${constant}\` in ${file}; update this test to read the checker's keys`);
  return [...match[1].matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
}

describe('the schema and the checker agree on structural keys', () => {
  const shape = (schema ?? { properties: {}, definitions: {} }) as { properties: object; definitions: Record<string, { properties?: object }> };
  const keysOf = (definition: string) => Object.keys(shape.definitions[definition]?.properties ?? {});
  it.each([
    ['top level', Object.keys(shape.properties), 'graph/check.ts', 'topLevelKeys'],
  ])('%s keys', (_what, keys, file, constant) => {
    expect([...keys].sort()).toEqual(keysIn(file, constant));
  });

  // The node, place and host keys the checker accepts are exported by the schema module they both read.
  it.each([
    ['node', keysOf('node'), nodeKeys],
    ['place', keysOf('place'), Object.keys(placeSchema.shape)],
    ['host', keysOf('host'), Object.keys(hostSchema.shape)],
  ])('%s keys', (_what, keys, accepted) => {
    expect([...keys].sort()).toEqual([...accepted].sort());
  });

  it('and every node key the schema offers passes the checker', () => {
    const text = [
      'streams: 1',
      'name: keys',
      'nodes:',
      '  numbers:',
      '    op: generate',
      '    with: { count: 1 }',
      '    place: { role: origin }',
      '    parallelism: 1',
      '    on_error: dlq',
      '    capacity: 10',
      '    capacity_bytes: 1MiB',
      '    when_full: block',
      '    description: numbers',
      '  out:',
      '    op: stdout',
      '    in: numbers',
    ].join('\n');
    const document = parse(text);
    expect(errorsOf(document)).toEqual([]);
    expect(checkPipeline({ file: 'keys.yaml', text, registry }).diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});
