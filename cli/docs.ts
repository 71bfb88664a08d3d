/**
 * The generated files: `docs/operators.md` (the operator reference) and
 * `config/pipeline.schema.json` (the JSON Schema editors use, through the
 * YAML language server, for completion, hover docs and errors while typing).
 * Both are built from the registry alone, in a stable order, so that a test
 * can tell when they are stale. `npm run docs` writes them.
 */
import { z } from 'zod';
import { settingKeys } from '../graph/check-settings.ts';
import { fieldMeta, hostSchema, hostsSchema, kafkaTransportSchema, nodeFieldSchemas, objectsTransportSchema, placeSchema, transportsSchema } from '../graph/node-fields.ts';
import { outputsOf, type OperatorSpec, type PortSpec, type Registry } from '../graph/operator-spec.ts';
import { registry as defaultRegistry } from '../nodes/all.ts';
import { describeSettings, exampleYaml, inlineYaml, inputDefault, presence, requirementsText, signature } from './ops.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonSchema = { [key: string]: Json };

/** A generated file: its path from the repository root and its full text. */
export interface GeneratedFile {
  path: string;
  text: string;
}

/** Every generated file, as the generator would write it now. */
export function generatedFiles(registry: Registry = defaultRegistry): GeneratedFile[] {
  return [
    { path: 'docs/operators.md', text: operatorsMarkdown(registry) },
    { path: 'config/pipeline.schema.json', text: `${JSON.stringify(pipelineSchema(registry), undefined, 2)}\n` },
  ];
}

function sortedSpecs(registry: Registry): OperatorSpec<any>[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

// ---------------------------------------------------------------------------
// docs/operators.md

/** A table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replaceAll('|', '\\|');
}

function code(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** The anchor GitHub gives a `## \`name\`` heading. */
function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replaceAll(' ', '-');
}

function portTable(spec: OperatorSpec<any>): string[] {
  const dropped = (port: PortSpec) => (port.droppedWhenUnread ? ' Left unconnected, these records are dropped, and `streams validate` warns.' : '');
  const row = (direction: string, name: string, port: PortSpec) => `| ${direction} | ${code(name)} | ${code(port.type)} | ${cell(port.doc + dropped(port))} |`;
  return [
    '| | port | type | carries |',
    '| --- | --- | --- | --- |',
    ...Object.entries(spec.inputs).map(([name, port]) => row('in', name, port)),
    ...Object.entries(outputsOf(spec)).map(([name, port]) => row('out', name, port)),
  ];
}

function settingsTable(spec: OperatorSpec<any>): string[] {
  return fieldTable(spec.settings, 'setting');
}

/** A table of the fields of an object schema: an operator's settings, or the checker's own node and host fields. */
function fieldTable(schema: z.ZodType, noun: string): string[] {
  const settings = describeSettings(schema);
  if (settings.length === 0) return ['None.'];
  return [
    `| ${noun} | type | default | description |`,
    '| --- | --- | --- | --- |',
    ...settings.map((s) => {
      const example = s.examples.length ? ` Example: ${code(inlineYaml(s.examples[0]))}` : '';
      const given = s.default !== undefined ? code(s.default) : presence(s);
      return `| ${code(s.name)} | ${cell(s.type)} | ${cell(given)} | ${cell(`${s.description ?? ''}${example}`.trim())} |`;
    }),
  ];
}

/**
 * The operator reference: an index table, then one section per operator
 * with its doc, ports, settings, host requirements and an example node.
 */
export function operatorsMarkdown(registry: Registry): string {
  const specs = sortedSpecs(registry);
  const lines: string[] = [
    '# Operators',
    '',
    '<!-- Generated from the operator definitions by `npm run docs`; do not edit by hand. -->',
    '',
    'Every operator a pipeline can use, as `streams ops` lists them. Port types are those of',
    '`graph/port-types.ts`: `Event`, `Bytes`, `Media<caps>`, `Segment<format>`, `Object` and `Any`;',
    '`T: Event` names the type that flows in, and `T` on an output passes it on. Besides the outputs',
    'listed, every node has a `dlq` port for the records it could not process. A setting may be',
    'written as `${env:NAME}`, `${env:NAME:-default}` (the default used when the variable is unset or empty)',
    'or `${params.NAME}`.',
    '',
    '| operator | ports | summary |',
    '| --- | --- | --- |',
    ...specs.map((spec) => `| [${code(spec.name)}](#${anchor(spec.name)}) | ${cell(code(signature(spec)))} | ${cell(spec.summary)} |`),
    '',
    '## Node fields',
    '',
    'Besides `op`, `in` and `with`, any node may have these fields.',
    '',
    ...fieldTable(z.object(nodeFieldSchemas), 'field'),
    '',
    '## Hosts',
    '',
    `${fieldMeta(hostsSchema).description} Each host may have these fields.`,
    '',
    ...fieldTable(hostSchema, 'field'),
    '',
    '## Transports',
    '',
    `${fieldMeta(transportsSchema).description} A hosts file may declare them too; see [plan.md](plan.md).`,
    '',
    `\`kafka\`: ${fieldMeta(kafkaTransportSchema).description}`,
    '',
    ...fieldTable(kafkaTransportSchema, 'field'),
    '',
    `\`objects\`: ${fieldMeta(objectsTransportSchema).description}`,
    '',
    ...fieldTable(objectsTransportSchema, 'field'),
  ];
  for (const spec of specs) {
    lines.push(
      '',
      `## ${code(spec.name)}`,
      '',
      `*${cell(spec.summary)}*`,
      '',
      spec.doc,
      '',
      '**Ports**',
      '',
      ...portTable(spec),
      '',
      '**Settings**',
      '',
      ...settingsTable(spec),
      '',
      `**Requires:** ${requirementsText(spec)}.`,
      '',
      '**Example**',
      '',
      '```yaml',
      exampleYaml(spec).trimEnd(),
      '```',
    );
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// config/pipeline.schema.json

/**
 * A whole-value `${env:NAME}`, `${env:NAME:-default}` or `${params.NAME}` reference: the checker
 * substitutes it before validating, so a number, a boolean or a choice may
 * be written as one. Mirrors the syntax `graph/resolve.ts` accepts.
 */
const referenceSchema: JsonSchema = {
  type: 'string',
  pattern: '^\\$\\{(env:[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?|params\\.[A-Za-z_][A-Za-z0-9_]*)\\}$',
  description: 'A `${env:NAME}`, `${env:NAME:-default}` or `${params.NAME}` reference, substituted before the pipeline is checked.',
};

/** Formats draft-07 defines; any other (`duration`, `cel`, ...) is ours and would confuse validators. */
const standardFormats = new Set([
  'date-time', 'date', 'time', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6',
  'uri', 'uri-reference', 'iri', 'iri-reference', 'uri-template', 'json-pointer', 'relative-json-pointer', 'regex',
]);

const annotationKeys = ['title', 'description', 'default', 'examples'];

function isSchemaObject(value: Json | undefined): value is JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Whether a schema already accepts any string, so a `${...}` reference passes as it is. */
function acceptsAnyString(schema: JsonSchema): boolean {
  if (schema.type === 'string' || (Array.isArray(schema.type) && schema.type.includes('string'))) {
    return !('pattern' in schema || 'enum' in schema || 'const' in schema || 'format' in schema);
  }
  if (Array.isArray(schema.anyOf)) return schema.anyOf.some((option) => isSchemaObject(option) && acceptsAnyString(option));
  return false;
}

/** A scalar that a reference could stand for but the schema would refuse: a number, a boolean, a choice, a pattern. */
function wantsReference(schema: JsonSchema): boolean {
  if (acceptsAnyString(schema)) return false;
  if (Array.isArray(schema.anyOf)) return schema.anyOf.some((option) => isSchemaObject(option) && wantsReference(option));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.some((t) => t === 'number' || t === 'integer' || t === 'boolean' || t === 'string') || 'enum' in schema || 'const' in schema;
}

/** `schema`, or a reference to a value that will be checked after substitution. Annotations stay outside, for hover docs. */
function orReference(schema: JsonSchema): JsonSchema {
  if (!wantsReference(schema)) return schema;
  const outer: JsonSchema = {};
  const inner: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) (annotationKeys.includes(key) ? outer : inner)[key] = value;
  return { ...outer, anyOf: [inner, { $ref: '#/definitions/reference' }] };
}

const childSchemas = new Set(['items', 'additionalProperties', 'not']);
const childMaps = new Set(['properties', 'definitions']);
const alternatives = new Set(['anyOf', 'oneOf', 'allOf']);

/**
 * Tidies what zod emits, depth first: drops formats only we know, drops the
 * ±2^53 bounds every zod integer carries, and lets scalar values be
 * references. Members of an `anyOf` are not wrapped one by one (`wrap`
 * false): the `anyOf` as a whole is.
 */
function tidy(schema: JsonSchema, wrap = true): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'format' && typeof value === 'string' && !standardFormats.has(value)) continue;
    if ((key === 'maximum' || key === 'minimum') && Math.abs(value as number) === Number.MAX_SAFE_INTEGER) continue;
    if (childMaps.has(key) && isSchemaObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, isSchemaObject(sub) ? tidy(sub) : sub]));
    } else if (alternatives.has(key) && Array.isArray(value)) {
      out[key] = value.map((sub) => (isSchemaObject(sub) ? tidy(sub, false) : sub));
    } else if (childSchemas.has(key) && isSchemaObject(value)) {
      out[key] = tidy(value);
    } else {
      out[key] = value;
    }
  }
  return wrap ? orReference(out) : out;
}

/** Rewrites local `$ref`s of an operator's settings schema once its definitions are moved to the root. */
function rehome(value: Json, prefix: string, root: string): Json {
  if (Array.isArray(value)) return value.map((item) => rehome(item, prefix, root));
  if (!isSchemaObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, sub]) => {
    if (key === '$ref' && typeof sub === 'string') {
      if (sub === '#') return [key, `#/definitions/${root}`];
      return [key, sub.replace(/^#\/(definitions|\$defs)\//, `#/definitions/${prefix}`)];
    }
    return [key, rehome(sub, prefix, root)];
  }));
}

function definitionName(op: string): string {
  return `settings:${op}`;
}

/**
 * The JSON Schema of one operator's `with:` block, from its zod schema with
 * io `input` (what a user writes: `1s`, not 1000). Defaults of parsing
 * settings are given back in their written form; unknown keys are refused
 * where the checker refuses them.
 */
export function settingsSchema(spec: OperatorSpec<any>): { schema: JsonSchema; definitions: Record<string, JsonSchema> } {
  const raw = z.toJSONSchema(spec.settings, {
    target: 'draft-07',
    io: 'input',
    unrepresentable: 'any',
    // zod leaves out the defaults and examples of parsing settings (durations, sizes) in input mode; they are given back as written.
    override(ctx) {
      const given = ctx.jsonSchema.default === undefined ? inputDefault(ctx.zodSchema) : undefined;
      if (given && given.value !== undefined) ctx.jsonSchema.default = given.value as never;
      const examples = z.globalRegistry.get(ctx.zodSchema)?.examples;
      if (ctx.jsonSchema.examples === undefined && Array.isArray(examples)) ctx.jsonSchema.examples = examples;
    },
  }) as JsonSchema;
  const root = definitionName(spec.name);
  const { $schema: _schema, definitions, $defs, ...body } = rehome(raw, `${root}:`, root) as JsonSchema;
  const extracted: Record<string, JsonSchema> = {};
  for (const [name, sub] of Object.entries({ ...(isSchemaObject(definitions) ? definitions : {}), ...(isSchemaObject($defs) ? $defs : {}) })) {
    if (isSchemaObject(sub)) extracted[`${root}:${name}`] = tidy(sub);
  }
  const schema = tidy(body);
  if (schema.type === 'object' && schema.additionalProperties === undefined && settingKeys(spec.settings)) schema.additionalProperties = false;
  const own = typeof schema.description === 'string' ? `\n\n${schema.description}` : '';
  return { schema: { ...schema, description: `\`${spec.name}\`: ${spec.summary}\n\n${spec.doc}${own}` }, definitions: extracted };
}

const nodeNamePattern = '^[A-Za-z_][A-Za-z0-9_-]*$';

function describedString(description: string, extra: JsonSchema = {}): JsonSchema {
  return { type: 'string', description, ...extra };
}

/** Meta keys that only the checker reads (`graph/node-fields.ts`); not JSON Schema. */
const checkerMetaKeys = new Set(['expects', 'item']);

function withoutCheckerMeta(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutCheckerMeta);
  if (!isSchemaObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !checkerMetaKeys.has(key)).map(([key, sub]) => [key, withoutCheckerMeta(sub)]));
}

/** The JSON Schema of one of the checker's own field schemas (`graph/node-fields.ts`), as a user writes it. */
function fieldSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _schema, ...body } = z.toJSONSchema(schema, { target: 'draft-07', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return tidy(withoutCheckerMeta(body) as JsonSchema);
}

const inputRef: JsonSchema = {
  type: 'string',
  minLength: 1,
  description: 'An upstream node by name, or `node.port` for one of its named output ports (`parse.dlq`).',
};

function inputsSchema(): JsonSchema {
  const list: JsonSchema = { type: 'array', items: { $ref: '#/definitions/input' } };
  return {
    description: 'Where the records come from: a node name, `node.port`, a list of them, or a map from this node\'s input ports to them.',
    anyOf: [
      { $ref: '#/definitions/input' },
      list,
      { type: 'object', additionalProperties: { anyOf: [{ $ref: '#/definitions/input' }, list] } },
    ],
  };
}

function nodeSchema(specs: OperatorSpec<any>[]): JsonSchema {
  const names = specs.map((spec) => spec.name);
  return {
    type: 'object',
    description: 'A node: an operator, its inputs and its settings.',
    required: ['op'],
    additionalProperties: false,
    properties: {
      op: { type: 'string', description: 'The operator this node runs; `streams ops` lists them, `streams ops NAME` documents one.', enum: names },
      in: { $ref: '#/definitions/inputs' },
      with: { type: 'object', description: 'The operator\'s settings.' },
      ...Object.fromEntries(Object.entries(nodeFieldSchemas).map(([key, schema]) => [key, key === 'place' ? { $ref: '#/definitions/place' } : fieldSchema(schema)])),
    },
    // One branch per operator: once `op` is known, `with` is checked against that operator's settings.
    allOf: specs.map((spec) => {
      const then: JsonSchema = { properties: { with: { $ref: `#/definitions/${definitionName(spec.name)}` } } };
      if (describeSettings(spec.settings).some((s) => s.required)) then.required = ['with'];
      return { if: { properties: { op: { const: spec.name } }, required: ['op'] }, then };
    }),
  };
}

/**
 * The JSON Schema (draft-07, which the YAML language server supports best)
 * for pipeline files. Structural keys mirror what the checker accepts; `with`
 * is checked against the chosen operator's settings.
 */
export function pipelineSchema(registry: Registry): JsonSchema {
  const specs = sortedSpecs(registry);
  const settings: Record<string, JsonSchema> = {};
  for (const spec of specs) {
    const { schema, definitions } = settingsSchema(spec);
    settings[definitionName(spec.name)] = schema;
    Object.assign(settings, definitions);
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'AMI Streams pipeline',
    description: 'A graph of named operators, checked by `streams validate` and run by `streams run`.',
    type: 'object',
    required: ['streams', 'name', 'nodes'],
    additionalProperties: false,
    properties: {
      streams: { const: 1, description: 'The format version of this file: `1`.' },
      name: describedString('The pipeline\'s name: letters, digits, `-`, `_` and `.`.', { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }),
      description: describedString('What this pipeline does, for people.'),
      params: { type: 'object', description: 'Parameters with their default values, used as `${params.NAME}` and overridden by `--param NAME=value`.' },
      hosts: { type: 'object', description: fieldMeta(hostsSchema).description, additionalProperties: { $ref: '#/definitions/host' } },
      transports: fieldSchema(transportsSchema),
      nodes: {
        type: 'object',
        description: 'The operators of the graph, by node name.',
        minProperties: 1,
        propertyNames: { pattern: nodeNamePattern },
        additionalProperties: { $ref: '#/definitions/node' },
      },
    },
    definitions: {
      reference: referenceSchema,
      input: inputRef,
      inputs: inputsSchema(),
      place: fieldSchema(placeSchema),
      // A host may be given by name alone (`box:`), so null stands for an empty map.
      host: { ...fieldSchema(hostSchema), type: ['object', 'null'] },
      node: nodeSchema(specs),
      ...settings,
    },
  };
}
