/**
 * Runs google/cel-spec's simple conformance tests (as shipped, in protobuf
 * JSON form, by `@bufbuild/cel-spec`) through the engine's CEL, compiled and
 * evaluated exactly as a pipeline does (`compileExpression`, fast path
 * included). Tests whose inputs or results are protobuf messages or enums
 * cannot be expressed as records and are not runnable here.
 */
import { tests } from '@bufbuild/cel-spec/testdata/conformance.js';
import { UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import { compileExpression } from '../../graph/expression.ts';

/** One conformance case as the package stores it (protobuf JSON of `SimpleTest`). */
interface SimpleTest {
  name?: string;
  expr: string;
  value?: JsonValue;
  evalError?: unknown;
  bindings?: Record<string, { value?: JsonValue }>;
  disableCheck?: boolean;
}

/** A `cel.expr.Value` in protobuf JSON. */
type JsonValue = Record<string, unknown>;

interface Suite {
  name: string;
  suites?: Suite[];
  tests?: { original: SimpleTest }[];
}

/** The outcome of one case: `pass`, `fail` with what happened, or `skip` when it needs protobuf messages. */
export type CaseOutcome = { status: 'pass' } | { status: 'fail'; got: string } | { status: 'skip' };

/** A case's id: `file/section/name`, as the known-unsupported list names it. */
export interface ConformanceCase {
  id: string;
  test: SimpleTest;
}

/** The cases of the named files (`basic`, `comparisons`, ...), in file order. */
export function conformanceCases(files: readonly string[]): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const walk = (suite: Suite, prefix: string): void => {
    for (const { original } of suite.tests ?? []) cases.push({ id: `${prefix}/${original.name ?? original.expr}`, test: original });
    for (const inner of suite.suites ?? []) walk(inner, `${prefix}/${inner.name}`);
  };
  for (const file of (tests as Suite).suites ?? []) if (files.includes(file.name)) walk(file, file.name);
  return cases;
}

/** Whether a value (or anything inside it) is a protobuf message or enum, which records cannot carry. */
function needsProtobuf(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if ('objectValue' in value || 'enumValue' in value) return true;
  return Object.values(value).some(needsProtobuf);
}

/** Protobuf message types and enums of the conformance suite, and message literals (`Name{...}`). */
const protobufText = /\b(?:TestAllTypes|NestedTestAllTypes|TestRequired|GlobalEnum|NestedEnum|google\.protobuf\.\w+|google\.type\.\w+)\b|(?<![\w.])(?:[A-Z]\w*|\w+(?:\.\w+)+)\s*\{/;

/** A `cel.expr.Value` as the evaluator's own representation. */
function toEngine(value: JsonValue): unknown {
  const [kind, inner] = Object.entries(value)[0] ?? ['nullValue', null];
  switch (kind) {
    case 'int64Value':
      return BigInt(inner as string);
    case 'uint64Value':
      return new UnsignedInt(BigInt(inner as string));
    case 'doubleValue':
      return Number(inner);
    case 'stringValue':
    case 'boolValue':
      return inner;
    case 'nullValue':
      return null;
    case 'bytesValue':
      return new Uint8Array(Buffer.from(inner as string, 'base64'));
    case 'listValue':
      return ((inner as { values?: JsonValue[] }).values ?? []).map(toEngine);
    case 'mapValue':
      return Object.fromEntries(((inner as { entries?: { key: JsonValue; value: JsonValue }[] }).entries ?? []).map((e) => [String(toEngine(e.key)), toEngine(e.value)]));
    default:
      throw new Error(`unsupported binding kind ${kind}`);
  }
}

/** A canonical text of an expected value, comparable with {@link canonicalResult}. */
function canonicalExpected(value: JsonValue): string {
  const [kind, inner] = Object.entries(value)[0] ?? ['nullValue', null];
  switch (kind) {
    case 'int64Value':
      return `int(${String(inner)})`;
    case 'uint64Value':
      return `uint(${String(inner)})`;
    case 'doubleValue':
      return `double(${String(Number(inner))})`;
    case 'stringValue':
      return `string(${JSON.stringify(inner)})`;
    case 'boolValue':
      return `bool(${String(inner)})`;
    case 'nullValue':
      return 'null';
    case 'bytesValue':
      return `bytes(${Buffer.from(inner as string, 'base64').toString('hex')})`;
    case 'typeValue':
      return `type(${inner === 'null_type' ? 'null' : String(inner)})`;
    case 'listValue':
      return `[${((inner as { values?: JsonValue[] }).values ?? []).map(canonicalExpected).join(', ')}]`;
    case 'mapValue': {
      const entries = (inner as { entries?: { key: JsonValue; value: JsonValue }[] }).entries ?? [];
      return `{${entries.map((e) => `${mapKey(canonicalExpected(e.key))}: ${canonicalExpected(e.value)}`).sort().join(', ')}}`;
    }
    default:
      return `${kind}?`;
  }
}

/** Map keys lose their CEL type in the evaluator's plain-object maps: compare them by text. */
function mapKey(canonical: string): string {
  const match = /^(?:int|uint|bool|string)\((.*)\)$/.exec(canonical);
  if (!match) return canonical;
  return canonical.startsWith('string(') ? (JSON.parse(match[1]) as string) : match[1];
}

/** A canonical text of what the evaluator returned. */
function canonicalResult(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return `int(${value})`;
  if (typeof value === 'number') return `double(${String(value)})`;
  if (typeof value === 'string') return `string(${JSON.stringify(value)})`;
  if (typeof value === 'boolean') return `bool(${value})`;
  if (value instanceof Uint8Array) return `bytes(${Buffer.from(value).toString('hex')})`;
  if (Array.isArray(value)) return `[${value.map(canonicalResult).join(', ')}]`;
  const tag = Object.prototype.toString.call(value);
  if (/^\[object Type<(.*)>\]$/.test(tag)) return `type(${/^\[object Type<(.*)>\]$/.exec(tag)![1]})`;
  if (value.constructor?.name === 'UnsignedInt' || value.constructor?.name === 'UnsignedInteger') return `uint(${String((value as { value: unknown }).value)})`;
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return `{${entries.map(([k, v]) => `${String(k)}: ${canonicalResult(v)}`).sort().join(', ')}}`;
}

/** Runs one case through `compileExpression` and compares the outcome with the expected value or error. */
export function runCase(test: SimpleTest): CaseOutcome {
  if (needsProtobuf(test.value) || needsProtobuf(test.bindings) || protobufText.test(test.expr) || (test.value === undefined && test.evalError === undefined)) return { status: 'skip' };
  let result: unknown;
  try {
    const fields = Object.fromEntries(Object.entries(test.bindings ?? {}).map(([name, b]) => [name, toEngine(b.value ?? {})]));
    result = compileExpression(test.expr)(fields);
  } catch (error) {
    if (test.evalError !== undefined) return { status: 'pass' };
    return { status: 'fail', got: `error: ${String((error as Error).message).split('\n')[0]}` };
  }
  const got = canonicalResult(result);
  if (test.evalError !== undefined) return { status: 'fail', got: `${got} (an error was expected)` };
  return got === canonicalExpected(test.value!) ? { status: 'pass' } : { status: 'fail', got: `${got}, expected ${canonicalExpected(test.value!)}` };
}
