/**
 * What the records reaching a node are known to carry, for type-checking its
 * expressions. Port types give the schemas operators declare or infer
 * (`decode.json` with `schema`, windows, `aggregate`). Expressions add more:
 * `generate` builds exactly the fields of its `fields` map, `map` adds, keeps
 * and drops fields, and pass-through operators (`filter`, `throttle`, ...)
 * hand on what they receive. Those scopes are computed here, for the
 * expressions only, so port types and the messages about them stay as they are.
 */
import { declaredPortType } from './port-types.ts';
import { checkTyped, schemaScope, scopeIdentity, type CelType, type ExpressionScope } from './expression-types.ts';
import type { GraphNode } from './model.ts';
import type { NumberedGraph } from './check-edges.ts';
import { portNames } from './operator-spec.ts';

/** Variables an operator gives its expressions instead of a record's fields (JavaScript numbers: CEL doubles). */
export const operatorScopes: Readonly<Record<string, ExpressionScope>> = {
  generate: { variables: { i: 'double', now: 'double', random: 'double', random_int: 'double' }, noun: 'variable', closed: true },
};

/** The scope of records nothing is known of: any field may be there. One object, as the typed checks are cached by scope. */
export const unknownFields: ExpressionScope = { variables: {}, noun: 'field', closed: false };

/**
 * The CEL type a field computed by an expression has in the next node: results
 * become plain JSON values (`toPlain`), so every number is a double again and
 * a timestamp an ISO 8601 string.
 */
function storedType(type: CelType): CelType {
  if (type === 'int' || type === 'uint' || type === 'double') return 'double';
  if (type === 'string' || type === 'bool' || type === 'bytes') return type;
  if (type === 'google.protobuf.Timestamp') return 'string';
  if (type.startsWith('list')) return 'list';
  if (type.startsWith('map') || type === 'google.protobuf.Duration') return 'map';
  return 'dyn';
}

function computedFields(expressions: Record<string, unknown>, scope: ExpressionScope): Record<string, CelType> {
  const fields: Record<string, CelType> = {};
  for (const [field, text] of Object.entries(expressions)) {
    const checked = typeof text === 'string' ? checkTyped(text, scope) : undefined;
    fields[field] = checked?.ok === true ? storedType(checked.type) : 'dyn';
  }
  return fields;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The input port declaring each type variable, by operator: looked up for every node that hands its input on. */
const variableInputs = new WeakMap<object, Map<string, string | undefined>>();

/** The input port whose type declares the variable `name` (`T: Event`), if any. */
function inputOfVariable(inputs: GraphNode['spec']['inputs'], name: string): string | undefined {
  let byName = variableInputs.get(inputs);
  if (!byName) variableInputs.set(inputs, (byName = new Map()));
  if (!byName.has(name)) {
    const port = portNames(inputs).find((p) => { const t = declaredPortType(inputs[p].type); return t.kind === 'var' && t.name === name; });
    byName.set(name, port);
  }
  return byName.get(name);
}

/** An output scope being computed: met again, it is on a cycle (reported elsewhere) and ends as unknown. */
const computing: unique symbol = Symbol('computing');
/** An output scope computed as unknown (a hole in the list: not computed yet). */
const unknown: unique symbol = Symbol('unknown');

/** Resolves the scope of each node's expressions from its inputs, memoised over the graph; nodes by number. */
export class ScopeResolver {
  readonly #graph: NumberedGraph;
  /** Output scopes by port, then by node number (a hole: not computed yet). */
  readonly #outputs = new Map<string, (ExpressionScope | typeof unknown | typeof computing)[]>();
  /** Scopes built per node (`generate`, `map`), one object for equal ones: the typed checks are cached by scope object. */
  readonly #shared = new Map<string, ExpressionScope>();

  /**
   * `order` puts every node after its inputs (`walkDependencies`): each
   * output scope is computed upstream first, so the memoised recursion below
   * goes one node deep and a 20,000-node chain does not overflow the stack.
   * On a cycle (reported elsewhere) the recursion ends as unknown.
   */
  constructor(graph: NumberedGraph) {
    this.#graph = graph;
    const { list, order } = graph;
    for (let o = 0; o < order.length; o++) {
      const ports = portNames(list[order[o]].spec.outputs);
      for (let p = 0; p < ports.length; p++) this.#outputScope(order[o], ports[p]);
    }
  }

  /** The variables the expressions of node number `index` see, or undefined when nothing is known of them. */
  scopeOf(index: number): ExpressionScope | undefined {
    const node = this.#graph.list[index];
    if (operatorScopes[node.op]) return operatorScopes[node.op];
    const ports = portNames(node.spec.inputs);
    return ports.length === 1 ? this.#inputScope(index, ports[0]) : undefined;
  }

  /** What arrives at one input port: known only from a single upstream. */
  #inputScope(index: number, port: string): ExpressionScope | undefined {
    const { list, edges, firstEdge, edgeFrom } = this.#graph;
    const single = portNames(list[index].spec.inputs).length === 1;
    let found = -1;
    for (let e = firstEdge[index]; e < firstEdge[index + 1]; e++) {
      if (!single && edges[e].toPort !== port) continue;
      if (found >= 0) return undefined;
      found = e;
    }
    return found >= 0 ? this.#outputScope(edgeFrom[found], edges[found].fromPort) : undefined;
  }

  #outputScope(index: number, port: string): ExpressionScope | undefined {
    let outputs = this.#outputs.get(port);
    if (!outputs) this.#outputs.set(port, (outputs = new Array(this.#graph.list.length)));
    const known = outputs[index];
    if (known !== undefined) return known === computing || known === unknown ? undefined : known;
    // Marked before computing, so a cycle (reported elsewhere) ends as unknown.
    outputs[index] = computing;
    const scope = this.#computeOutput(index, port);
    outputs[index] = scope ?? unknown;
    return scope;
  }

  #computeOutput(index: number, port: string): ExpressionScope | undefined {
    const node = this.#graph.list[index];
    const type = node.outputTypes[port];
    const declared = node.spec.outputs[port] ? declaredPortType(node.spec.outputs[port].type) : undefined;
    const settings = isMap(node.rawSettings) ? node.rawSettings : {};
    const isDefault = port === portNames(node.spec.outputs)[0];
    if (node.op === 'generate' && isDefault) {
      const fields = isMap(settings.fields) ? settings.fields : { i: 'i' };
      // Exactly these fields, but the scope stays open: a name it lacks is refused only when it looks like a
      // misspelling, so that a pipeline fed by a bare `generate` in a test is not refused for reading `value`.
      return this.#intern({ variables: computedFields(fields, operatorScopes.generate), noun: 'field', closed: false });
    }
    if (node.op === 'map' && isDefault) return this.#mapOutput(index, settings);
    // An output declared as an input's type variable (`T`) hands on what that input receives.
    if (declared?.kind === 'var' && !declared.bound) {
      const input = inputOfVariable(node.spec.inputs, declared.name);
      const fromInput = input !== undefined ? this.#inputScope(index, input) : undefined;
      if (fromInput) return fromInput;
    }
    // Shared when equal: an operator that infers a schema (`decode.json`) makes one per node.
    return type?.kind === 'event' && type.schema ? this.#intern(schemaScope(type.schema)) : undefined;
  }

  /** `map`: `keep` narrows, `set` adds fields typed over the input, `drop` removes. */
  #mapOutput(index: number, settings: Record<string, unknown>): ExpressionScope | undefined {
    const input = this.#inputScope(index, 'in');
    const set = isMap(settings.set) ? settings.set : {};
    const computed = computedFields(set, input ?? unknownFields);
    const keep = Array.isArray(settings.keep) ? settings.keep.map(String) : undefined;
    let variables: Record<string, CelType>;
    let closed: boolean;
    if (keep) {
      // Kept fields the input is not known to have may still be there: they are dyn, and the scope stays open unless the input was closed.
      variables = Object.fromEntries(keep.filter((f) => !input?.closed || f in input.variables).map((f) => [f, input?.variables[f] ?? 'dyn']));
      closed = input?.closed ?? false;
    } else if (input) {
      variables = { ...input.variables };
      closed = input.closed;
    } else {
      // Nothing is known of the input: only the computed fields are, and others may be there.
      variables = {};
      closed = false;
    }
    Object.assign(variables, computed);
    for (const field of Array.isArray(settings.drop) ? settings.drop.map(String) : []) delete variables[field];
    return Object.keys(variables).length > 0 || closed ? this.#intern({ variables, noun: 'field', closed }) : undefined;
  }

  #intern(scope: ExpressionScope): ExpressionScope {
    const key = scopeIdentity(scope);
    const known = this.#shared.get(key);
    if (known) return known;
    this.#shared.set(key, scope);
    return scope;
  }
}
