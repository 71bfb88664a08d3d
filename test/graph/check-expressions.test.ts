import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { expressionSettings, requiredResults } from '../../graph/check-expressions.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { checkTyped } from '../../graph/expression-types.ts';
import { registry } from '../../nodes/all.ts';

/** Checks a pipeline and returns its expression diagnostics, formatted. */
function expressionDiagnostics(nodes: string, file = 'p.yaml'): string[] {
  const text = `streams: 1\nname: p\nnodes:\n${nodes}`;
  return checkPipeline({ file, text, registry, env: { HOME: '/home/user' } })
    .diagnostics.filter((d) => d.code.startsWith('expression_'))
    .map(formatDiagnostic);
}

/** `generate` -> `encode.json` -> `decode.json` with a schema, then the given nodes reading `readings`. */
function withSchema(schema: string, nodes: string): string[] {
  return expressionDiagnostics(
    `  gen: { op: generate }\n  text: { op: encode.json, in: gen }\n  readings: { op: decode.json, in: text, with: { schema: ${schema} } }\n${nodes}`,
  );
}

describe('CEL type checking at validate time', () => {
  it('says nothing of the shipped pipelines', () => {
    const folder = new URL('../../pipelines/', import.meta.url);
    const files = readdirSync(folder).filter((name) => name.endsWith('.yaml') && !name.endsWith('.test.yaml'));
    expect(files.length).toBeGreaterThan(0);
    // Every `${env:NAME}` the examples use is set to a placeholder, so that only expressions are judged.
    const env = new Proxy({}, { get: (_, name) => (typeof name === 'string' ? 'x' : undefined), has: () => true });
    for (const name of files) {
      const result = checkPipeline({ file: name, text: readFileSync(new URL(name, folder), 'utf8'), registry, env });
      expect(result.diagnostics.filter((d) => d.code.startsWith('expression_')).map(formatDiagnostic), name).toEqual([]);
    }
  });

  it('refuses a `where` that is not a boolean even when nothing is known of the records', () => {
    expect(expressionDiagnostics('  gen: { op: generate }\n  keep: { op: filter, in: gen, with: { where: "value + 1.0" } }\n  out: { op: stdout, in: keep }\n')).toEqual([
      'p.yaml:5:48: error: setting `where` of `filter`: the expression gives `double`, not a boolean',
    ]);
  });

  it('types declared fields: a number compared with a string is refused, at the comparison', () => {
    expect(withSchema('{ value: number }', '  keep: { op: filter, in: readings, with: { where: \'true && value > "3"\' } }\n  out: { op: stdout, in: keep }\n')).toEqual([
      'p.yaml:7:61: error: setting `where` of `filter`: no `>` for `double` and `string` (the records carry `value: double`)',
    ]);
  });

  it('says nothing where types are unknown (`Event<unknown>`): fields are `dyn`', () => {
    expect(expressionDiagnostics('  src: { op: redis.stream, with: { url: "redis://127.0.0.1", stream: s, group: g } }\n  keep: { op: filter, in: src, with: { where: \'value > "3" || size(value) > 2\' } }\n  out: { op: stdout, in: keep }\n')).toEqual([]);
  });

  it('refuses a misspelt field only when it is one edit from a declared one, since records may carry more fields than their schema names', () => {
    const where = (expr: string) => withSchema('{ value: number, device: string }', `  keep: { op: filter, in: readings, with: { where: '${expr}' } }\n  out: { op: stdout, in: keep }\n`);
    expect(where('vlaue > 1.0')).toEqual(['p.yaml:7:53: error: setting `where` of `filter`: unknown field `vlaue` (did you mean `value`?)']);
    expect(where('temperature > 1.0 && x > 1')).toEqual([]);
  });

  it('leaves equality and `in` across types to run time, where they give false rather than fail', () => {
    expect(withSchema('{ value: number, device: string }', '  keep: { op: filter, in: readings, with: { where: \'value != null && device != 1 && value in [1, 2]\' } }\n  out: { op: stdout, in: keep }\n')).toEqual([]);
  });

  it('follows fields through `generate`, pass-through operators and `map` (set, keep, drop)', () => {
    const nodes = [
      '  gen: { op: generate, with: { fields: { device: \'"d" + string(i)\', value: "random * 2.0", n: "i" } } }',
      '  slow: { op: throttle, in: gen, with: { rate: 10 } }',
      '  shape: { op: map, in: slow, with: { keep: [device, value], set: { len: "size(device)" }, drop: [device] } }',
      '  keep: { op: filter, in: shape, with: { where: "size(len) > 0" } }',
      '  out: { op: stdout, in: keep }',
    ].join('\n');
    expect(expressionDiagnostics(`${nodes}\n`)).toEqual([
      'p.yaml:7:50: error: setting `where` of `filter`: no `size` for `(double)` (the records carry `value: double`, `len: double`)',
    ]);
  });

  it('refuses a variable `generate` does not give, naming those it does', () => {
    expect(expressionDiagnostics('  gen: { op: generate, with: { fields: { v: "x + 1" } } }\n  out: { op: stdout, in: gen }\n')).toEqual([
      'p.yaml:4:46: error: setting `fields.v` of `generate`: unknown variable `x` (known here: `i`, `now`, `random`, `random_int`)',
    ]);
  });

  it('accepts fields whose names cannot be CEL variables, leaving them to run time', () => {
    expect(checkTyped('size(x) > 1', { variables: { 'content-type': 'string', x: 'string' }, noun: 'field', closed: false })).toEqual({ ok: true, type: 'bool' });
    expect(checkTyped('size(int) > 1', { variables: { int: 'string' }, noun: 'field', closed: false })).toEqual({ ok: 'unknown' });
  });

  it('finds expressions inside records and lists of settings, and only there', () => {
    const spec = registry.get('pg.query')!;
    expect(expressionSettings(spec.settings, { url: 'postgres://x', query: 'select 1', params: ['device', 'value + 1'] })).toEqual([
      { path: ['params', 0], text: 'device' },
      { path: ['params', 1], text: 'value + 1' },
    ]);
    expect(expressionSettings(registry.get('generate')!.settings, { fields: { a: 'i' }, count: 3 })).toEqual([{ path: ['fields', 'a'], text: 'i' }]);
    expect(expressionSettings(registry.get('stdout')!.settings, {})).toEqual([]);
  });

  it('names in its result requirements only settings that are expressions', () => {
    for (const [op, settings] of Object.entries(requiredResults)) {
      const spec = registry.get(op);
      expect(spec, op).toBeDefined();
      for (const setting of Object.keys(settings)) {
        expect(expressionSettings(spec!.settings, { [setting]: 'true' }).map((s) => s.path.join('.')), `${op}.${setting}`).toContain(setting);
      }
    }
  });
});
