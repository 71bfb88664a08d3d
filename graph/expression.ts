/**
 * User expressions in CEL, the Common Expression Language: safe by
 * construction (no reach into JavaScript, the file system or the network),
 * checked when the graph is checked, compiled once per node.
 *
 * A record's fields are the expression's variables: `value >= 0 && device != "x"`.
 * JSON numbers are CEL doubles, so mixed `double`/`int` arithmetic is
 * defined (`value * 2`), as a user of JSON data expects: see
 * `expression-overloads.ts`.
 */
import { Environment } from '@marcbachmann/cel-js';
import { didYouMean } from './diagnostics.ts';
import { withFastPath } from './expression-fast.ts';
import { registerEngineOverloads } from './expression-overloads.ts';

/** A compiled expression: evaluate it against one record's fields. */
export type CompiledExpression = (fields: Record<string, unknown>) => unknown;

let shared: Environment | undefined;

/** The engine's CEL environment: the library's, with the engine's overloads; every variable is `dyn`. */
export function environment(): Environment {
  if (shared) return shared;
  const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
  registerEngineOverloads(env);
  shared = env;
  return env;
}

/** Why an expression is refused, and where in its text. */
export interface ExpressionProblem {
  message: string;
  /** Character offset inside the expression text. */
  offset: number;
  /** An obvious fix ("did you mean `string`?"). */
  hint?: string;
}

interface CelFailure {
  summary?: string;
  message: string;
  code?: string;
  range?: { start: number };
}

/** How a user wrote the tokens the CEL parser names (`AND` is `&&`). */
const tokenText: Record<string, string> = {
  EOF: 'end of expression', NUMBER: 'number', STRING: 'string', BOOLEAN: 'boolean', NULL: '`null`', IDENTIFIER: 'name',
  PLUS: '`+`', MINUS: '`-`', MULTIPLY: '`*`', DIVIDE: '`/`', MODULO: '`%`', EQ: '`==`', NE: '`!=`', LT: '`<`', LE: '`<=`',
  GT: '`>`', GE: '`>=`', AND: '`&&`', OR: '`||`', NOT: '`!`', IN: '`in`', LPAREN: '`(`', RPAREN: '`)`', LBRACKET: '`[`',
  RBRACKET: '`]`', LBRACE: '`{`', RBRACE: '`}`', DOT: '`.`', COMMA: '`,`', COLON: '`:`', QUESTION: '`?`', BYTES: 'bytes',
};

function problemOf(error: unknown, text: string): ExpressionProblem {
  const failure = error as CelFailure;
  const offset = failure.range?.start ?? 0;
  // The library types the elements of an empty list literal by a type parameter, on which overloads across
  // number kinds are ambiguous; it says so in an internal message without a position.
  const overlap = /^Operator overload '([^:']+)[^']*' overlaps with '([^:']+)/.exec(failure.message);
  if (overlap) {
    const at = text.search(/\[\s*\]/);
    return { message: `cannot choose between \`${overlap[1]}\` and \`${overlap[2]}\`: an operand's type is not known (an element of an empty list \`[]\`)`, offset: at >= 0 ? at : offset };
  }
  const called = failure.code === 'no_matching_overload' ? /overload for '(?:[^'(]*\.)?(\w+)\(/.exec(failure.message)?.[1] : undefined;
  if (called && !functionNames().has(called)) {
    const at = text.indexOf(`${called}(`, offset);
    return { message: `unknown function \`${called}\``, offset: at >= 0 ? at : offset, hint: didYouMean(called, functionNames()) };
  }
  const message = (failure.summary ?? failure.message.split('\n')[0])
    .trim()
    .replace(/\b(?:Unexpected token: |Expected |, got )([A-Z]+)\b/g, (match, token: string) => match.replace(token, tokenText[token] ?? token))
    .replace(/^Unexpected token: end of expression/, 'Unexpected end of expression')
    .replace(/^Unexpected character: '?([^']+?)'?$/, 'Unexpected character `$1`');
  return { message: message.charAt(0).toLowerCase() + message.slice(1), offset };
}

let functions: Set<string> | undefined;

function functionNames(): Set<string> {
  functions ??= new Set(environment().getDefinitions().functions.map((f: { name: string }) => f.name));
  return functions;
}

/**
 * Checks an expression's syntax and the functions it calls; field names are
 * dynamic (they depend on the records), so only their use is checked at run time.
 */
export function checkExpression(text: string): ExpressionProblem | undefined {
  if (syntaxChecks.has(text)) return syntaxChecks.get(text);
  // Bounded like the typed checks' cache: a process that checks many reloads sees many texts.
  if (syntaxChecks.size >= syntaxCheckLimit) syntaxChecks.clear();
  const problem = checkUncached(text);
  syntaxChecks.set(text, problem);
  return problem;
}

/** Syntax checks by text: a large pipeline repeats the same few expressions, and parsing one is most of checking its setting. */
const syntaxChecks = new Map<string, ExpressionProblem | undefined>();
const syntaxCheckLimit = 10_000;

function checkUncached(text: string): ExpressionProblem | undefined {
  try {
    const parsed = environment().parse(text);
    const result = parsed.check() as { valid: boolean; error?: unknown };
    return result.valid ? undefined : problemOf(result.error, text);
  } catch (error) {
    return problemOf(error, text);
  }
}

/** Compiles an expression once; the result evaluates it per record without re-parsing. */
export function compileExpression(text: string): CompiledExpression {
  const evaluate = environment().parse(text) as ((fields: Record<string, unknown>) => unknown) & { ast: unknown; check(): { valid: boolean } };
  const slow = function evaluateExpression(fields: Record<string, unknown>): unknown {
    return evaluate(fields);
  };
  // The fast path assumes the expression passed CEL's type checker, as every checked pipeline's do.
  return evaluate.check().valid ? withFastPath(evaluate.ast, slow) : slow;
}

/** The CEL evaluator alone, without the fast path (for tests that compare the two). */
export function compileExpressionSlow(text: string): CompiledExpression {
  const evaluate = environment().parse(text);
  return function evaluateExpression(fields) {
    return evaluate(fields);
  };
}

/** Converts CEL results to plain JSON-friendly values (CEL integers are BigInt). */
export function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}
