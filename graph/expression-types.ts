/**
 * Type-checking an expression against the variables it will see, when their
 * types are known: the fields of a declared or inferred event schema, or an
 * operator's own variables. The syntax check (`checkExpression`) types every
 * variable as `dyn`; this one gives them their real types, so that
 * `value > "3"` with `value: number` is refused before anything runs.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { didYouMean } from './diagnostics.ts';
import { environment } from './expression.ts';
import type { EventSchema, FieldType } from './port-types.ts';

/** A CEL type name as the library spells it (`double`, `string`, `list`, `dyn`, ...). */
export type CelType = string;

/** The variables an expression sees, by name, and whether others may exist. */
export interface ExpressionScope {
  variables: Readonly<Record<string, CelType>>;
  /** Whether the variables are a record's fields (`field` in messages) or an operator's own (`variable`). */
  noun: 'field' | 'variable';
  /**
   * Whether the variables are all there is. An operator's own variables are;
   * an event schema is not (records may carry more fields than it names), so
   * an unknown name is refused only when it looks like a misspelling of one.
   */
  closed: boolean;
}

/** What the typed check found: the expression's type, or a problem located in its text. */
export type TypedCheck =
  | { ok: true; type: CelType }
  | { ok: false; problem: TypeProblem }
  | { ok: 'unknown' };

export interface TypeProblem {
  kind: 'type' | 'unknown_variable';
  message: string;
  /** Character offset inside the expression text. */
  offset: number;
  hint?: string;
}

/** JSON values as CEL sees them: every JSON number is a `double`. */
const celTypeOfField: Record<FieldType, CelType> = { number: 'double', string: 'string', bool: 'bool', list: 'list', map: 'map', any: 'dyn' };

const schemaScopes = new WeakMap<EventSchema, ExpressionScope>();

/** The scope of an expression over records of a known schema: one per schema, shared by the nodes it reaches (and by the caches keyed on it). */
export function schemaScope(schema: EventSchema): ExpressionScope {
  let scope = schemaScopes.get(schema);
  if (!scope) {
    scope = { variables: Object.fromEntries(Object.entries(schema).map(([field, type]) => [field, celTypeOfField[type]])), noun: 'field', closed: false };
    schemaScopes.set(schema, scope);
  }
  return scope;
}

/** Results by scope and text: a large pipeline repeats the same few expressions over the same schemas. */
const results = new Map<string, TypedCheck>();
const resultLimit = 10_000;

const environments = new Map<string, Environment | undefined>();

const scopeKeys = new WeakMap<object, string>();

/**
 * The variables as a string, equal for equal variables declared in the same
 * order: each name with its length before it, so no name can end early.
 * Built once per variables object, but scopes are built per node (a
 * `generate`, a `map`, a decoded schema): no sort and no JSON here.
 */
function scopeKey(variables: Readonly<Record<string, CelType>>): string {
  let key = scopeKeys.get(variables);
  if (key === undefined) {
    // Joined, not appended to: a string built by `+=` is a tree of pieces, and this one is kept.
    const parts: string[] = [];
    for (const name in variables) parts.push(`${name.length}:${name}=${variables[name]};`);
    scopeKeys.set(variables, (key = parts.join('')));
  }
  return key;
}

/**
 * An environment where only the given variables are declared, cached by
 * scope (many nodes see the same schema). Undefined when a name cannot be a
 * CEL variable (`content-type`, `int`): such records are checked at run time.
 */
function scopedEnvironment(variables: Readonly<Record<string, CelType>>): Environment | undefined {
  const key = scopeKey(variables);
  if (environments.has(key)) return environments.get(key);
  let env: Environment | undefined = environment().clone({ unlistedVariablesAreDyn: false });
  try {
    for (const [name, type] of Object.entries(variables)) env.registerVariable(name, type);
  } catch {
    env = undefined; // a field named like a CEL type or keyword: leave the scope to run time
  }
  // Bounded like the results: a process that checks many reloads sees many schemas.
  if (environments.size >= resultLimit) environments.clear();
  environments.set(key, env);
  return env;
}

interface LibraryFailure {
  code?: string;
  message: string;
  range?: { start: number };
}

/** Equality and `in` never fail at run time across types (they give false): the checker's refusal is not a run-time failure. */
const heterogeneous = /^no such overload: .+ (?:==|!=|in) .+$/;

/**
 * Checks `text` with its variables typed. A name the scope does not declare
 * is `dyn` in an open scope (unless it looks like a misspelling of one it
 * does), and an error in a closed one.
 */
export function checkTyped(text: string, scope: ExpressionScope): TypedCheck {
  // First by the scope object itself: a scope is shared by the nodes it reaches, and the key below is long.
  let known = byScope.get(scope);
  if (!known) byScope.set(scope, (known = new Map()));
  let result = known.get(text);
  if (!result) {
    // Bounded too: the shared scopes (an operator's own, an unknown input's) live as long as the process.
    if (known.size >= resultLimit) known.clear();
    known.set(text, (result = checkKeyed(text, scope)));
  }
  return result;
}

const byScope = new WeakMap<ExpressionScope, Map<string, TypedCheck>>();

/** The same scope as a string: equal scopes built apart (one per node) give the same key. */
export function scopeIdentity(scope: ExpressionScope): string {
  return `${scope.noun}\u0000${String(scope.closed)}\u0000${scopeKey(scope.variables)}`;
}

function checkKeyed(text: string, scope: ExpressionScope): TypedCheck {
  const key = `${scopeIdentity(scope)}\u0000${text}`;
  let result = results.get(key);
  if (!result) {
    if (results.size >= resultLimit) results.clear();
    results.set(key, (result = checkUncached(text, scope)));
  }
  return result;
}

function checkUncached(text: string, scope: ExpressionScope): TypedCheck {
  let variables: Readonly<Record<string, CelType>> = scope.variables;
  // Each pass declares one more unknown name as `dyn`; an expression names few.
  for (let pass = 0; pass < 64; pass++) {
    const env = scopedEnvironment(variables);
    if (!env) return { ok: 'unknown' };
    let result: { valid: boolean; type?: string; error?: unknown };
    try {
      result = env.parse(text).check() as typeof result;
    } catch {
      return { ok: 'unknown' }; // a syntax error: reported by the syntax check
    }
    if (result.valid) return { ok: true, type: result.type ?? 'dyn' };
    const failure = result.error as LibraryFailure;
    const offset = failure.range?.start ?? 0;
    if (failure.code === 'unknown_variable') {
      const name = /Unknown variable: (\S+)/.exec(failure.message)?.[1];
      if (!name) return { ok: 'unknown' };
      const known = Object.keys(scope.variables);
      // A short name (`x`, `id`) is too easily one edit from a declared one to call it a misspelling.
      const guess = name.length >= 4 ? didYouMean(name, known) : undefined;
      if (scope.closed || guess) {
        const hint = guess ?? (known.length ? `known here: ${known.map((k) => `\`${k}\``).join(', ')}` : undefined);
        return { ok: false, problem: { kind: 'unknown_variable', message: `unknown ${scope.noun} \`${name}\``, offset, hint } };
      }
      // A new object: scope keys are cached per object.
      variables = { ...variables, [name]: 'dyn' };
      continue;
    }
    const message = failure.message.split('\n')[0];
    if (!['no_such_overload', 'no_matching_overload', 'cannot_index_type'].includes(failure.code ?? '')) return { ok: 'unknown' };
    if (heterogeneous.test(message)) return { ok: 'unknown' };
    return { ok: false, problem: { kind: 'type', message: describeTypeError(message), offset } };
  }
  return { ok: 'unknown' };
}

/** The library's type errors in the checker's words: lowercase, types and operators in backticks. */
function describeTypeError(message: string): string {
  const operator = /^no such overload: (.+) (\S+) (.+)$/.exec(message);
  if (operator) return `no \`${operator[2]}\` for \`${operator[1]}\` and \`${operator[3]}\``;
  const call = /^found no matching overload for '(?:(.+)\.)?(\w+)\((.*)\)'$/.exec(message);
  if (call) return `no \`${call[2]}\` for ${call[1] ? `\`${call[1]}\` with ` : ''}${call[3] ? `\`(${call[3]})\`` : 'no arguments'}`;
  const index = /^Cannot index type '(.+)'$/.exec(message);
  if (index) return `\`${index[1]}\` has no fields`;
  return message.charAt(0).toLowerCase() + message.slice(1);
}
