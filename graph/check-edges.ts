/**
 * Checking the connections: inputs that name real nodes and ports, no
 * cycles, port types that unify, and outputs nobody reads.
 */
import { closest, suggest } from './diagnostics.ts';
import { outputsOf, portNames, type DroppedWhenUnread } from './operator-spec.ts';
import { declaredPortType, fits, formatPortType, sharedPortType, substitute, unifyAll, type PortType } from './port-types.ts';
import type { Path } from './source.ts';
import { walkNumbered, type Edge, type GraphNode, type NumberedWalk } from './model.ts';
import type { Reporter } from './reporter.ts';

/** One entry of a node's `in`, as written. */
export interface InputRef {
  readonly from: string;
  readonly fromPort?: string;
  /** The input port it feeds, when `in` is a map of ports. */
  readonly toPort?: string;
  /** Where it is written. */
  readonly path: Path;
}

/**
 * The input references of every node, by its place in the file, in one list:
 * not a list per node, which a file of a hundred thousand nodes would keep
 * (and promote to the old generation) until its edges are made.
 */
export class NodeInputs {
  /** Every node's references, node after node. */
  readonly refs: InputRef[] = [];
  /** The references of node `i` are `refs[first[i]]` up to `refs[first[i + 1]]`. */
  readonly #first: Int32Array;
  /** 1 for a node whose `in` was read, 0 for one whose `in` was malformed (and reported). */
  readonly #read: Uint8Array;
  #added = 0;

  constructor(nodeCount: number) {
    this.#first = new Int32Array(nodeCount + 1);
    this.#read = new Uint8Array(nodeCount);
  }

  /** Records the next node's references, in file order: nothing when its `in` was malformed. */
  add(refs: readonly InputRef[] | undefined): void {
    const node = this.#added++;
    if (refs) {
      this.#read[node] = 1;
      for (let i = 0; i < refs.length; i++) this.refs.push(refs[i]);
    }
    this.#first[node + 1] = this.refs.length;
  }

  /** Whether node `node`'s `in` was read. */
  isRead(node: number): boolean {
    return this.#read[node] === 1;
  }

  first(node: number): number {
    return this.#first[node];
  }

  end(node: number): number {
    return this.#first[node + 1];
  }
}

interface EdgeCheckInput {
  nodes: Map<string, GraphNode>;
  /** Every node name in the file, including those that failed their own checks. */
  allNames: string[];
  /** The input references of each node by its place in `allNames`. */
  inputs: NodeInputs;
  /** Nodes whose settings failed: their edges are checked, their inferred types are not. */
  unsettled: ReadonlySet<string>;
  report: Reporter;
}

/** The edges of a graph being checked, and its nodes by number for the later phases. */
export interface CheckedEdges {
  edges: Edge[];
  numbered: NumberedGraph;
}

/**
 * The checked nodes by their place in the file, with the edges into each and
 * where those come from, by number: later phases walk numbers and lists, not
 * maps of names (on a hundred thousand nodes, hashing names was most of the
 * edge check).
 */
export interface NumberedGraph {
  /** The checked nodes in file order. */
  readonly list: readonly GraphNode[];
  readonly edges: readonly Edge[];
  /** The edges into node `i` are `edges[firstEdge[i]]` up to `edges[firstEdge[i + 1]]`, in the order its `in` lists them. */
  readonly firstEdge: Int32Array;
  /** For each edge, its source's number. */
  readonly edgeFrom: readonly number[];
  /** Every node after its inputs (cycles aside): later phases walk the graph in this order. */
  readonly order: readonly number[];
}

/**
 * The nodes being checked by their place in the file, and each edge by its
 * place in the list of edges: the phases below walk numbers and lists, not
 * maps of names (on a hundred thousand nodes, hashing names was most of the
 * edge check).
 */
interface Indexed extends Omit<NumberedGraph, 'order'> {
  /** The checked nodes by name; each one's `number` is its place in `list`. */
  nodes: ReadonlyMap<string, GraphNode>;
}

/** Resolves every `in` to edges, then checks cycles, types and unused outputs. */
export function checkEdges({ nodes, inputs, allNames, unsettled, report }: EdgeCheckInput): CheckedEdges {
  const list: GraphNode[] = [];
  // The place in `allNames` (and in `inputs`) of `list[i]`.
  const placeOf = new Int32Array(nodes.size);
  for (let i = 0; i < allNames.length; i++) {
    const node = nodes.get(allNames[i]);
    if (!node) continue;
    if (node.number !== list.length) throw new Error(`node \`${node.name}\` is numbered ${node.number}, not ${list.length}`);
    placeOf[list.length] = i;
    list.push(node);
  }
  const refs = inputs.refs;
  const edges: Edge[] = [];
  const edgeFrom: number[] = [];
  const firstEdge = new Int32Array(list.length + 1);
  // The input each edge is written as (same index), for the errors found on it: beside the edges, which leave without it.
  const edgeRefs: InputRef[] = [];
  let refOf: Map<Edge, InputRef> | undefined;
  // Indexed only when an error on an edge needs its place (a valid file never does).
  const pathOf = (edge: Edge): Path => (refOf ??= new Map(edges.map((e, i) => [e, edgeRefs[i]]))).get(edge)!.path;
  // Names of nodes that failed their own checks (none in most files): an input naming one is not unknown.
  const failed = nodes.size === allNames.length ? undefined : new Set(allNames.filter((name) => !nodes.has(name)));
  // Outputs a misspelt input was taken for (`name\u0000port`, port empty for the default): not also reported unused.
  const meant = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    firstEdge[i] = edges.length;
    const node = list[i];
    const name = node.name;
    const place = placeOf[i];
    if (!inputs.isRead(place)) continue; // its `in` was malformed, and reported
    const firstRef = inputs.first(place);
    const refCount = inputs.end(place) - firstRef;
    const inputPorts = portNames(node.spec.inputs);
    if (inputPorts.length === 0 && refCount > 0) {
      report.key(['nodes', name, 'in'], 'too_many_inputs', `node \`${name}\` (\`${node.op}\`) is a source and takes no input`, 'remove `in`');
      continue;
    }
    if (inputPorts.length > 0 && refCount === 0 && !inputPorts.every((port) => node.spec.inputs[port].optional)) {
      report.key(['nodes', name], 'missing_input', `node \`${name}\` (\`${node.op}\`) needs an input`, 'add `in: <node name>`');
      continue;
    }
    for (let r = firstRef; r < firstRef + refCount; r++) {
      const ref = refs[r];
      if (ref.from === name) {
        report.value(ref.path, 'cycle', `cycle: \`${name}\` -> \`${name}\` (node \`${name}\` reads its own output)`);
        continue;
      }
      const from = nodes.get(ref.from)?.number;
      if (from === undefined && !failed?.has(ref.from)) {
        const guess = closest(ref.from, allNames);
        if (guess) meant.add(`${guess}\u0000${ref.fromPort ?? ''}`);
        report.value(ref.path, 'unknown_input', `node \`${name}\` reads from unknown node \`${ref.from}\``, guess ? { suggestion: guess } : undefined);
        continue;
      }
      const toPort = ref.toPort ?? inputPorts[0];
      if (!node.spec.inputs[toPort]) {
        report.key(ref.path.slice(0, -1).length > 3 ? ref.path.slice(0, -1) : ref.path, 'unknown_port', `\`${node.op}\` has no input port \`${toPort}\``, suggest(toPort, inputPorts) ?? `ports: ${inputPorts.map((p) => `\`${p}\``).join(', ')}`);
        continue;
      }
      if (from === undefined) continue; // a node that failed its own check: reported where it is defined
      const upstream = list[from];
      // The implicit `dlq` port is read only when named: a sink has no default output.
      const outputs = portNames(outputsOf(upstream.spec));
      const fromPort = ref.fromPort ?? portNames(upstream.spec.outputs)[0];
      if (fromPort === undefined) {
        report.value(ref.path, 'unknown_port', `node \`${ref.from}\` (\`${upstream.op}\`) is a sink and has no output to read`);
        continue;
      }
      if (!outputs.includes(fromPort)) {
        const guess = closest(fromPort, outputs);
        if (guess) meant.add(`${ref.from}\u0000${guess}`);
        report.value(ref.path, 'unknown_port', `node \`${ref.from}\` (\`${upstream.op}\`) has no output port \`${fromPort}\``, guess ? { suggestion: guess } : `ports: ${outputs.map((p) => `\`${p}\``).join(', ')}`);
        continue;
      }
      edges.push({ from: ref.from, fromPort, to: name, toPort, type: anyType });
      edgeFrom.push(from);
      edgeRefs.push(ref);
    }
  }
  firstEdge[list.length] = edges.length;
  const indexed: Indexed = { list, nodes, edges, edgeFrom, firstEdge };
  const { order, cycles } = walkNumbered({ count: list.length, firstEdge, edgeFrom });
  const onCycle = reportCycles(cycles, pathOf, indexed, report);
  inferTypes(indexed, pathOf, order, onCycle, unsettled, report);
  reportUnusedOutputs(indexed, refs, meant, report);
  return { edges, numbered: { list, edges, firstEdge, edgeFrom, order } };
}

const anyType: PortType = { kind: 'any' };

/** What an operator that infers nothing infers. */
const noInferred: Partial<Record<string, PortType>> = {};

/** Reports each cycle once, listing its nodes in the direction data flows. Returns the nodes on cycles, by number. */
function reportCycles(cycles: NumberedWalk['cycles'], pathOf: (edge: Edge) => Path, { list, edges }: Indexed, report: Reporter): Uint8Array {
  const onCycle = new Uint8Array(list.length);
  for (const { closing, nodes } of cycles) {
    for (const n of nodes) onCycle[n] = 1;
    // Data flows from the closing edge's source into the node walked; list the cycle in flow order from it.
    const flow = [nodes[0], ...nodes.slice(1).reverse()].map((n) => list[n].name);
    report.value(pathOf(edges[closing]), 'cycle', `cycle: ${[...flow, flow[0]].map((n) => `\`${n}\``).join(' -> ')}`);
  }
  return onCycle;
}

/**
 * Gives every edge its type, in dependency order: each input port unifies
 * what arrives, binds the operator's type variables, and the outputs follow.
 */
function inferTypes(
  { list, edges, edgeFrom, firstEdge }: Indexed,
  pathOf: (edge: Edge) => Path,
  order: readonly number[],
  inCycle: Uint8Array,
  unsettled: ReadonlySet<string>,
  report: Reporter,
): void {
  // The type variables bound at the node being typed (most operators bind `T`): reused for all nodes,
  // as a map cleared per node would allocate a table each time. The last binding of a name counts.
  const boundNames: string[] = [];
  const boundTypes: PortType[] = [];
  let bound = 0;
  // The edges arriving at the port being typed, and their sources' numbers: reused for all ports of all nodes.
  const arriving: Edge[] = [];
  const arrivingFrom: number[] = [];
  // Inferred types by their schema, so that equal ones are kept once; and the output types of each node, in
  // the order of its ports, before they become its `outputTypes` (shared by the operator's nodes whose types are the same ones).
  const inferredTypes = new Map<string, PortType>();
  const portTypes: PortType[] = [];
  const madeOutputTypes = new Map<GraphNode['spec'], Map<PortType | undefined, Record<string, PortType>>>();
  const bindings = {
    get(name: string): PortType | undefined {
      for (let i = bound - 1; i >= 0; i--) if (boundNames[i] === name) return boundTypes[i];
      return undefined;
    },
  };
  // In `order` every node's inputs come before it; a node on a cycle is not typed, and its outputs read as `any`.
  // Indexed loops: this runs for every node, and an iterator per loop per node adds up.
  for (let o = 0; o < order.length; o++) {
    const index = order[o];
    if (inCycle[index] === 1) continue;
    const node = list[index];
    const name = node.name;
    const first = firstEdge[index];
    const end = firstEdge[index + 1];
    for (let e = first; e < end; e++) {
      const edge = edges[e];
      edge.type = list[edgeFrom[e]].outputTypes[edge.fromPort] ?? anyType;
    }
    bound = 0;
    // What each input port receives, for an operator that infers its outputs from it.
    const inputTypes: Record<string, PortType> | undefined = node.spec.infer ? {} : undefined;
    const inputPorts = portNames(node.spec.inputs);
    for (let p = 0; p < inputPorts.length; p++) {
      const port = inputPorts[p];
      const declared = declaredPortType(node.spec.inputs[port].type);
      // With one input port, everything arriving is for it (most operators have one).
      let count = 0;
      for (let e = first; e < end; e++) {
        if (inputPorts.length > 1 && edges[e].toPort !== port) continue;
        arriving[count] = edges[e];
        arrivingFrom[count++] = edgeFrom[e];
      }
      if (count === 0) continue;
      // One edge arriving (most ports) is its own unification.
      let type = arriving[0].type;
      if (count > 1) {
        const unified = unifyAll(arriving.slice(0, count).map((e) => e.type));
        if (!unified.ok) {
          const found = arriving.slice(0, count).map((e) => `\`${e.from}\` gives \`${formatPortType(e.type)}\``).join(', ');
          report.key(['nodes', name, 'in'], 'type_mismatch', `inputs of node \`${name}\` do not unify: ${found}`);
          continue;
        }
        type = unified.type;
      }
      let fitting = true;
      for (let i = 0; i < count; i++) {
        const edge = arriving[i];
        if (!fits(edge.type, declared)) {
          fitting = false;
          report.value(pathOf(edge), 'type_mismatch',
            `type mismatch: \`${edge.fromPort === 'out' ? edge.from : `${edge.from}.${edge.fromPort}`}\` (\`${list[arrivingFrom[i]].op}\`) gives \`${formatPortType(edge.type)}\` but \`${name}\` (\`${node.op}\`) takes \`${formatPortType(declared)}\``);
        }
      }
      if (inputTypes) inputTypes[port] = type;
      // A mismatch was reported here; downstream sees the declared type rather than inheriting the error.
      if (declared.kind === 'var') {
        boundNames[bound] = declared.name;
        boundTypes[bound++] = (!fitting || type.kind === 'any') && declared.bound ? declared.bound : type;
      }
    }
    const outputs = outputsOf(node.spec);
    const inferred = inputTypes && !(unsettled.size > 0 && unsettled.has(name)) ? node.spec.infer!(node.settings, inputTypes) : noInferred;
    const outputPorts = portNames(outputs);
    for (let p = 0; p < outputPorts.length; p++) {
      const own = inferred[outputPorts[p]];
      portTypes[p] = own ? sharedPortType(own, inferredTypes) : substitute(declaredPortType(outputs[outputPorts[p]].type), bindings);
    }
    node.outputTypes = sharedOutputTypes(node.spec, outputPorts, portTypes, madeOutputTypes);
  }
}

/**
 * A node's output types by port, from `types` (in the order of `ports`): the
 * object made last for a node of the same operator whose first output has the
 * same type, when all its types are the same (most nodes of a large file:
 * their types are shared), else a new one, kept as that one.
 */
function sharedOutputTypes(
  spec: GraphNode['spec'],
  ports: readonly string[],
  types: readonly PortType[],
  made: Map<GraphNode['spec'], Map<PortType | undefined, Record<string, PortType>>>,
): Record<string, PortType> {
  let byFirst = made.get(spec);
  if (!byFirst) made.set(spec, (byFirst = new Map()));
  const first = ports.length > 0 ? types[0] : undefined;
  const known = byFirst.get(first);
  if (known) {
    let same = true;
    for (let p = 1; p < ports.length && same; p++) same = known[ports[p]] === types[p];
    if (same) return known;
  }
  const outputTypes: Record<string, PortType> = {};
  for (let p = 0; p < ports.length; p++) outputTypes[ports[p]] = types[p];
  byFirst.set(first, outputTypes);
  return outputTypes;
}

/** Warns that an unread output's records are dropped, unless its settings say there are none or that the loss is accepted. */
function reportDroppedOutput(node: GraphNode, port: string, drops: DroppedWhenUnread, report: Reporter): void {
  const written = (node.rawSettings ?? {}) as Record<string, unknown>;
  if (drops.onlyWith !== undefined && written[drops.onlyWith] === undefined) return;
  if (drops.unlessSet !== undefined && written[drops.unlessSet] !== undefined) return;
  const orSet = drops.unlessSet !== undefined ? `, or set \`${drops.unlessSet}\`` : '';
  report.key(['nodes', node.name], 'dropped_output',
    `records on output \`${port}\` of node \`${node.name}\` (\`${node.op}\`) are dropped: nothing reads it`,
    `connect \`${node.name}.${port}\`${orSet}`, 'warning');
}

/**
 * Warns of outputs no `in` names. An output named by an input that failed its
 * own check (an unknown operator, a source given an input), or suggested for a
 * misspelt one, counts as used: that failure is reported where it is.
 */
function reportUnusedOutputs({ list, nodes }: Indexed, refs: readonly InputRef[], meant: ReadonlySet<string>, report: Reporter): void {
  // Nodes read on their default output, by number, and `name\u0000port` for outputs named: most inputs name only a node.
  const readDefault = new Uint8Array(list.length);
  const named = new Set<string>();
  const readOnDefault = (from: string): void => {
    const index = nodes.get(from)?.number;
    if (index !== undefined) readDefault[index] = 1;
  };
  for (const key of meant) {
    if (key.endsWith('\u0000')) readOnDefault(key.slice(0, -1));
    else named.add(key);
  }
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i];
    if (ref.fromPort === undefined) readOnDefault(ref.from);
    else named.add(`${ref.from}\u0000${ref.fromPort}`);
  }
  for (let n = 0; n < list.length; n++) {
    const node = list[n];
    const name = node.name;
    const ports = portNames(node.spec.outputs);
    // A `name\u0000port` key is made only when some input names a port: this runs for every node.
    for (let i = 0; i < ports.length; i++) {
      const port = ports[i];
      const portSpec = node.spec.outputs[port];
      if ((i === 0 && readDefault[n] === 1) || (named.size > 0 && named.has(`${name}\u0000${port}`))) continue;
      if (portSpec.droppedWhenUnread) reportDroppedOutput(node, port, portSpec.droppedWhenUnread, report);
      if (portSpec.optional) continue;
      const which = i === 0 ? 'the output' : `output \`${port}\``;
      report.key(['nodes', name], 'unused_output', `${which} of node \`${name}\` (\`${node.op}\`) is not used`, 'connect it or remove the node', 'warning');
    }
  }
}
