/**
 * Property tests: random edits of valid pipelines (and of the invalid
 * corpus) never make the checker throw. It returns diagnostics only, each
 * located inside the file with a known code and a message, and the same
 * text always gives the same diagnostics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPipeline, type CheckResult } from '../../graph/check.ts';
import { settingKeys } from '../../graph/check-settings.ts';
import { formatDiagnostic, type DiagnosticCode } from '../../graph/diagnostics.ts';
import { registry } from '../../nodes/all.ts';
import { testRegistry } from './test-registry.ts';

/** Every code the checker may give; the type makes this list exhaustive both ways. */
const knownCodes: Record<DiagnosticCode, true> = {
  yaml_syntax: true,
  bad_document: true,
  bad_version: true,
  missing_field: true,
  unknown_field: true,
  bad_field: true,
  unknown_operator: true,
  unknown_setting: true,
  missing_setting: true,
  bad_setting: true,
  bad_expression: true,
  expression_type: true,
  expression_field: true,
  bad_duration: true,
  bad_size: true,
  unknown_input: true,
  unknown_port: true,
  missing_input: true,
  too_many_inputs: true,
  type_mismatch: true,
  cycle: true,
  duplicate_node: true,
  duplicate_key: true,
  missing_variable: true,
  unknown_param: true,
  unknown_host: true,
  unplaceable: true,
  unmet_requirement: true,
  unused_output: true,
  dropped_output: true,
  capabilities_differ: true,
  missing_key: true,
  unreachable_transport: true,
  unsupported_transport: true,
};

/** The environment for every check: `HOME`, and each variable the example pipelines name, set to a placeholder. */
const env: Record<string, string> = { HOME: '/home/user' };

function read(folder: URL): { name: string; text: string }[] {
  return readdirSync(folder)
    // `NAME.test.yaml` files hold pipeline unit tests, not pipelines.
    .filter((name) => name.endsWith('.yaml') && !name.endsWith('.test.yaml'))
    .sort()
    .map((name) => ({ name, text: readFileSync(new URL(name, folder), 'utf8') }));
}

const examples = read(new URL('../../pipelines/', import.meta.url));
for (const { text } of examples) for (const [, name] of text.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[name] ??= 'x';

/** The valid example pipelines (that every example is valid is `test/pipelines/examples.test.ts`'s to say). */
const pipelines = examples.filter(
  ({ name, text }) => !checkPipeline({ file: name, text, registry, env }).diagnostics.some((d) => d.severity === 'error'),
);
const corpus = read(new URL('./invalid/', import.meta.url));

/** 300 runs per pipeline, fewer as examples are added, so the whole file stays within seconds. */
const runsPerPipeline = Math.min(300, Math.max(100, Math.floor(1200 / Math.max(1, pipelines.length))));

/** One edit of a file's lines, as data so that a counterexample prints readably; positions are fractions so they fit any length. */
type Edit =
  | { kind: 'delete'; line: number }
  | { kind: 'duplicate'; line: number }
  | { kind: 'swap'; line: number; other: number }
  | { kind: 'insert'; line: number; column: number; chars: string }
  | { kind: 'indent'; line: number; by: number; tab: boolean }
  | { kind: 'replace-value'; line: number; value: string }
  | { kind: 'truncate'; at: number };

const position = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const at = (fraction: number, length: number): number => Math.floor(fraction * length);

/** Characters that mean something to YAML, to CEL or to `${...}`, and some that mean nothing. */
const noise = fc.string({
  unit: fc.constantFrom(...':{}[]-#&*!|>\'"%@`,?$.\\()=<+ \t\n'.split(''), 'a', 'Z', '0', '9', 'é', '\u0000', '\r', '${', '${env:', '${params.'),
  maxLength: 12,
});

const randomValue = fc.oneof(
  fc.string({ maxLength: 10 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 10 }),
  fc.integer().map(String),
  fc.double().map(String),
  fc.array(fc.oneof(fc.integer().map(String), fc.string({ maxLength: 5 }).map((s) => JSON.stringify(s))), { maxLength: 4 }).map((items) => `[${items.join(', ')}]`),
  fc.constantFrom('', '{}', '[]', 'null', 'true', '~', '1s', '64KiB', '${env:MISSING}', '${params.nope}', 'gen', 'gen.dlq', 'generate'),
);

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), line: position }),
  fc.record({ kind: fc.constant('duplicate' as const), line: position }),
  fc.record({ kind: fc.constant('swap' as const), line: position, other: position }),
  fc.record({ kind: fc.constant('insert' as const), line: position, column: position, chars: noise }),
  fc.record({ kind: fc.constant('indent' as const), line: position, by: fc.integer({ min: -4, max: 4 }), tab: fc.boolean() }),
  fc.record({ kind: fc.constant('replace-value' as const), line: position, value: randomValue }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
);

const edits = fc.array(edit, { minLength: 1, maxLength: 4 });

function applyOne(lines: string[], change: Edit): string[] {
  if (lines.length === 0) return lines;
  const i = change.kind === 'truncate' ? 0 : at(change.line, lines.length);
  switch (change.kind) {
    case 'delete':
      return lines.filter((_, k) => k !== i);
    case 'duplicate':
      return lines.flatMap((line, k) => (k === i ? [line, line] : [line]));
    case 'swap': {
      const out = [...lines];
      const j = at(change.other, lines.length);
      [out[i], out[j]] = [out[j], out[i]];
      return out;
    }
    case 'insert':
      return lines.map((line, k) => {
        if (k !== i) return line;
        const c = at(change.column, line.length + 1);
        return line.slice(0, c) + change.chars + line.slice(c);
      });
    case 'indent':
      return lines.map((line, k) => {
        if (k !== i) return line;
        if (change.tab) return `\t${line}`;
        return change.by >= 0 ? ' '.repeat(change.by) + line : line.replace(new RegExp(`^ {0,${-change.by}}`), '');
      });
    case 'replace-value': {
      // The n-th `key: value` line, n chosen like a line.
      const keyed = lines.flatMap((line, k) => (/^\s*[\w.-]+:/.test(line) ? [k] : []));
      if (keyed.length === 0) return lines;
      const target = keyed[at(change.line, keyed.length)];
      return lines.map((line, k) => (k === target ? line.replace(/^(\s*[\w.-]+:).*$/, (_, key: string) => `${key} ${change.value}`) : line));
    }
    case 'truncate': {
      const text = lines.join('\n');
      return text.slice(0, at(change.at, text.length + 1)).split('\n');
    }
  }
}

function apply(text: string, list: Edit[]): string {
  return list.reduce(applyOne, text.split('\n')).join('\n');
}

/** The invariants every result holds, whatever the text. */
function expectWellFormed(result: CheckResult, file: string, text: string): void {
  const lineCount = text.split('\n').length;
  for (const d of result.diagnostics) {
    expect(d.file).toBe(file);
    expect(Number.isInteger(d.line) && d.line >= 1 && d.line <= lineCount, `line ${d.line} of ${lineCount}: ${d.message}`).toBe(true);
    expect(Number.isInteger(d.col) && d.col >= 1, `col ${d.col}: ${d.message}`).toBe(true);
    expect(Object.hasOwn(knownCodes, d.code), `unknown code ${d.code}`).toBe(true);
    expect(['error', 'warning']).toContain(d.severity);
    expect(d.message.trim()).not.toBe('');
  }
  const hasError = result.diagnostics.some((d) => d.severity === 'error');
  if (result.graph) expect(hasError).toBe(false);
}

function checkTwice(file: string, text: string): void {
  let first: CheckResult;
  try {
    first = checkPipeline({ file, text, registry, env });
  } catch (error) {
    throw new Error(`the checker threw on this text:\n${text}`, { cause: error });
  }
  expectWellFormed(first, file, text);
  const second = checkPipeline({ file, text, registry, env });
  expect(second.diagnostics).toEqual(first.diagnostics);
}

describe('the checker under random edits', () => {
  it('has valid pipelines to edit', () => {
    expect(pipelines.length).toBeGreaterThan(0);
  });

  it.each(pipelines)('never throws on edits of pipelines/$name, and gives the same diagnostics twice', ({ name, text }) => {
    fc.assert(
      fc.property(edits, (list) => {
        checkTwice(`pipelines/${name}`, apply(text, list));
      }),
      { seed: 20_240_601, numRuns: runsPerPipeline },
    );
  });

  it('never throws on edits of the invalid corpus', () => {
    fc.assert(
      fc.property(fc.constantFrom(...corpus), edits, ({ name, text }, list) => {
        checkTwice(`test/checker/invalid/${name}`, apply(text, list));
      }),
      { seed: 20_240_602, numRuns: 400 },
    );
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        checkTwice('any.yaml', text);
      }),
      { seed: 20_240_603, numRuns: 300 },
    );
  });

  it('says what is wrong with any value given to any setting, without leaking `undefined` or `[object Object]`', () => {
    const operators = [...testRegistry.values()];
    const value = fc.oneof(
      fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom('[1, 2]', '{a: 1}', '{a: [1]}', 'null', '~', '""', '1s', '-1', '1.5', '64KiB', '[1s]', 'true', '[]', '{}', 'value >', 'strng(x)'),
    );
    const node = fc.constantFrom(...operators).chain((spec) =>
      fc.record({
        op: fc.constant(spec.name),
        settings: fc.uniqueArray(fc.tuple(fc.constantFrom(...(settingKeys(spec.settings) ?? ['any']), 'unknown'), value), { maxLength: 4, selector: ([key]) => key }),
        input: fc.constantFrom('in: gen', '', 'in: [gen, gen.dlq]'),
      }),
    );
    fc.assert(
      fc.property(node, ({ op, settings, input }) => {
        const withLines = settings.map(([key, v]) => `      ${key}: ${v}`);
        const text = ['streams: 1', 'name: settings', 'nodes:', '  gen:', '    op: generate', '  n:', `    op: ${op}`, `    ${input}`, '    with:', ...withLines, ''].join('\n');
        const result = checkPipeline({ file: 's.yaml', text, registry: testRegistry, env });
        expectWellFormed(result, 's.yaml', text);
        for (const d of result.diagnostics) expect(formatDiagnostic(d)).not.toMatch(/undefined|\[object|NaN`/);
      }),
      { seed: 20_240_604, numRuns: 300 },
    );
  });
});
