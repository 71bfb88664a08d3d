/**
 * User expressions in CEL, the Common Expression Language: safe by
 * construction (no reach into JavaScript, the file system or the network),
 * checked when the graph is checked, compiled once per node.
 *
 * A record's fields are the expression's variables: `value >= 0 && device != "x"`.
 * JSON numbers are CEL doubles, so mixed `double`/`int` arithmetic is
 * defined here (`value * 2`), as a user of JSON data expects.
 */
import { Environment } from '@marcbachmann/cel-js';

/** A compiled expression: evaluate it against one record's fields. */
export type CompiledExpression = (fields: Record<string, unknown>) => unknown;

let shared: Environment | undefined;

function environment(): Environment {
  if (shared) return shared;
  const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
  const arithmetic: Record<string, (a: number, b: number) => number> = {
    '+': (a, b) => a + b,
    '-': (a, b) => a - b,
    '*': (a, b) => a * b,
    '/': (a, b) => a / b,
    '%': (a, b) => a % b,
  };
  for (const [op, apply] of Object.entries(arithmetic)) {
    for (const [left, right] of [['double', 'int'], ['int', 'double']]) {
      env.registerOperator(`${left} ${op} ${right}`, (a: unknown, b: unknown) => apply(Number(a), Number(b)));
    }
  }
  shared = env;
  return env;
}

/** Why an expression is refused, and where in its text. */
export interface ExpressionProblem {
  message: string;
  /** Character offset inside the expression text. */
  offset: number;
}

interface CelFailure {
  summary?: string;
  message: string;
  range?: { start: number };
}

function problemOf(error: unknown): ExpressionProblem {
  const failure = error as CelFailure;
  const message = (failure.summary ?? failure.message.split('\n')[0]).trim();
  return { message: message.charAt(0).toLowerCase() + message.slice(1), offset: failure.range?.start ?? 0 };
}

/**
 * Checks an expression's syntax and the functions it calls; field names are
 * dynamic (they depend on the records), so only their use is checked at run time.
 */
export function checkExpression(text: string): ExpressionProblem | undefined {
  try {
    const parsed = environment().parse(text);
    const result = parsed.check() as { valid: boolean; error?: unknown };
    return result.valid ? undefined : problemOf(result.error);
  } catch (error) {
    return problemOf(error);
  }
}

/** Compiles an expression once; the result evaluates it per record without re-parsing. */
export function compileExpression(text: string): CompiledExpression {
  const evaluate = environment().parse(text);
  return function evaluateExpression(fields) {
    return evaluate(fields);
  };
}

/** Converts CEL results to plain JSON-friendly values (CEL integers are BigInt). */
export function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}
