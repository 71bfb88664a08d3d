/**
 * Checking the connections: inputs that name real nodes and ports, no
 * cycles, port types that unify, and outputs nobody reads.
 */
import { closest, suggest } from './diagnostics.ts';
import { outputsOf, portNames, type DroppedWhenUnread } from './operator-spec.ts';
import { declaredPortType, fits, formatPortType, substitute, unifyAll, type PortType } from './port-types.ts';
import type { Path } from './source.ts';
import { incomingEdges, walkDependencies, type DependencyWalk, type Edge, type GraphNode } from './model.ts';
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

interface EdgeCheckInput {
  nodes: Map<string, GraphNode>;
  inputRefs: Map<string, InputRef[]>;
  /** Every node name in the file, including those that failed their own checks. */
  allNames: string[];
  /** Nodes whose settings failed: their edges are checked, their inferred types are not. */
  unsettled: ReadonlySet<string>;
  report: Reporter;
}

/** The edges of a graph being checked, and its nodes in dependency order. */
export interface CheckedEdges {
  edges: Edge[];
  /** Every node after its inputs (cycles aside): later phases walk the graph in this order. */
  order: string[];
  /** The edges into each node, in the order its `in` lists them. */
  incoming: ReadonlyMap<string, readonly Edge[]>;
}

/** Resolves every `in` to edges, then checks cycles, types and unused outputs. */
export function checkEdges({ nodes, inputRefs, allNames, unsettled, report }: EdgeCheckInput): CheckedEdges {
  const edges: Edge[] = [];
  // The input each edge is written as (same index), for the errors found on it: beside the edges, which leave without it.
  const edgeRefs: InputRef[] = [];
  let refOf: Map<Edge, InputRef> | undefined;
  // Indexed only when an error on an edge needs its place (a valid file never does).
  const pathOf = (edge: Edge): Path => (refOf ??= new Map(edges.map((e, i) => [e, edgeRefs[i]]))).get(edge)!.path;
  // Every name in the file: the checked nodes' when none failed (most files), without a second set of them.
  const names: { has(name: string): boolean } = nodes.size === allNames.length ? nodes : new Set(allNames);
  // Outputs a misspelt input was taken for (`name\u0000port`, port empty for the default): not also reported unused.
  const meant = new Set<string>();
  for (const node of nodes.values()) {
    const name = node.name;
    const refs = inputRefs.get(name);
    if (!refs) continue; // its `in` was malformed, and reported
    const inputPorts = portNames(node.spec.inputs);
    if (inputPorts.length === 0 && refs.length > 0) {
      report.key(['nodes', name, 'in'], 'too_many_inputs', `node \`${name}\` (\`${node.op}\`) is a source and takes no input`, 'remove `in`');
      continue;
    }
    if (inputPorts.length > 0 && refs.length === 0 && !inputPorts.every((port) => node.spec.inputs[port].optional)) {
      report.key(['nodes', name], 'missing_input', `node \`${name}\` (\`${node.op}\`) needs an input`, 'add `in: <node name>`');
      continue;
    }
    for (const ref of refs) {
      if (ref.from === name) {
        report.value(ref.path, 'cycle', `cycle: \`${name}\` -> \`${name}\` (node \`${name}\` reads its own output)`);
        continue;
      }
      if (!names.has(ref.from)) {
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
      const upstream = nodes.get(ref.from);
      if (!upstream) continue; // already reported where it is defined
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
      const edge: Edge = { from: ref.from, fromPort, to: name, toPort, type: anyType };
      edges.push(edge);
      edgeRefs.push(ref);
    }
  }
  const incoming = incomingEdges(edges);
  const { order, cycles } = walkDependencies(nodes.keys(), incoming);
  const onCycle = reportCycles(cycles, pathOf, report);
  inferTypes(nodes, incoming, pathOf, order, onCycle, unsettled, report);
  reportUnusedOutputs(nodes, inputRefs, meant, report);
  return { edges, order, incoming };
}

/** The type of an edge not typed yet, or out of a node on a cycle: one object, as types are never changed in place. */
const noEdges: readonly Edge[] = [];

const anyType: PortType = { kind: 'any' };

/** What an operator that infers nothing infers. */
const noInferred: Partial<Record<string, PortType>> = {};


/** Reports each cycle once, listing its nodes in the direction data flows. Returns the nodes on cycles. */
function reportCycles(cycles: DependencyWalk<Edge>['cycles'], pathOf: (edge: Edge) => Path, report: Reporter): Set<string> {
  const onCycle = new Set<string>();
  for (const { closing, nodes } of cycles) {
    for (const name of nodes) onCycle.add(name);
    // Data flows from the closing edge's source into the node walked; list the cycle in flow order from it.
    const flow = [nodes[0], ...nodes.slice(1).reverse()];
    report.value(pathOf(closing), 'cycle', `cycle: ${[...flow, flow[0]].map((n) => `\`${n}\``).join(' -> ')}`);
  }
  return onCycle;
}

/**
 * Gives every edge its type, in dependency order: each input port unifies
 * what arrives, binds the operator's type variables, and the outputs follow.
 */
function inferTypes(
  nodes: Map<string, GraphNode>,
  incomingEdges: Map<string, Edge[]>,
  pathOf: (edge: Edge) => Path,
  order: readonly string[],
  inCycle: Set<string>,
  unsettled: ReadonlySet<string>,
  report: Reporter,
): void {
  // The type variables bound at the node being typed (most operators bind `T`): reused for all nodes,
  // as a map cleared per node would allocate a table each time. The last binding of a name counts.
  const boundNames: string[] = [];
  const boundTypes: PortType[] = [];
  let bound = 0;
  const bindings = {
    get(name: string): PortType | undefined {
      for (let i = bound - 1; i >= 0; i--) if (boundNames[i] === name) return boundTypes[i];
      return undefined;
    },
  };
  // In `order` every node's inputs come before it; a node on a cycle is not typed, and its outputs read as `any`.
  for (const name of order) {
    if (inCycle.has(name)) continue;
    const node = nodes.get(name)!;
    const incoming = incomingEdges.get(name) ?? noEdges;
    // Indexed loops: this runs for every node, and an iterator per loop per node adds up.
    for (let i = 0; i < incoming.length; i++) {
      const edge = incoming[i];
      edge.type = nodes.get(edge.from)?.outputTypes[edge.fromPort] ?? anyType;
    }
    bound = 0;
    // What each input port receives, for an operator that infers its outputs from it.
    const inputTypes: Record<string, PortType> | undefined = node.spec.infer ? {} : undefined;
    const inputPorts = portNames(node.spec.inputs);
    for (let p = 0; p < inputPorts.length; p++) {
      const port = inputPorts[p];
      const declared = declaredPortType(node.spec.inputs[port].type);
      // With one input port, everything arriving is for it (most operators have one).
      const arriving = inputPorts.length === 1 ? incoming : incoming.filter((e) => e.toPort === port);
      if (arriving.length === 0) continue;
      // One edge arriving (most ports) is its own unification.
      let type = arriving[0].type;
      if (arriving.length > 1) {
        const unified = unifyAll(arriving.map((e) => e.type));
        if (!unified.ok) {
          const list = arriving.map((e) => `\`${e.from}\` gives \`${formatPortType(e.type)}\``).join(', ');
          report.key(['nodes', name, 'in'], 'type_mismatch', `inputs of node \`${name}\` do not unify: ${list}`);
          continue;
        }
        type = unified.type;
      }
      let fitting = true;
      for (let i = 0; i < arriving.length; i++) {
        const edge = arriving[i];
        if (!fits(edge.type, declared)) {
          fitting = false;
          report.value(pathOf(edge), 'type_mismatch',
            `type mismatch: \`${edge.fromPort === 'out' ? edge.from : `${edge.from}.${edge.fromPort}`}\` (\`${nodes.get(edge.from)!.op}\`) gives \`${formatPortType(edge.type)}\` but \`${name}\` (\`${node.op}\`) takes \`${formatPortType(declared)}\``);
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
    const inferred = inputTypes && !unsettled.has(name) ? node.spec.infer!(node.settings, inputTypes) : noInferred;
    const outputPorts = portNames(outputs);
    for (let p = 0; p < outputPorts.length; p++) {
      const port = outputPorts[p];
      node.outputTypes[port] = inferred[port] ?? substitute(declaredPortType(outputs[port].type), bindings);
    }
  }
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
function reportUnusedOutputs(nodes: Map<string, GraphNode>, inputRefs: Map<string, InputRef[]>, meant: ReadonlySet<string>, report: Reporter): void {
  // Nodes read on their default output, and `name\u0000port` for outputs named: most inputs name only a node.
  const readDefault = new Set<string>();
  const named = new Set<string>();
  for (const key of meant) {
    if (key.endsWith('\u0000')) readDefault.add(key.slice(0, -1));
    else named.add(key);
  }
  for (const refs of inputRefs.values()) {
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      if (ref.fromPort === undefined) readDefault.add(ref.from);
      else named.add(`${ref.from}\u0000${ref.fromPort}`);
    }
  }
  for (const node of nodes.values()) {
    const name = node.name;
    const ports = portNames(node.spec.outputs);
    const first = ports[0];
    // Indexed loops, and a `name\u0000port` key made only when some input names a port: this runs for every node.
    for (let i = 0; i < ports.length; i++) {
      const port = ports[i];
      const portSpec = node.spec.outputs[port];
      if ((i === 0 && readDefault.has(name)) || (named.size > 0 && named.has(`${name}\u0000${port}`))) continue;
      if (portSpec.droppedWhenUnread) reportDroppedOutput(node, port, portSpec.droppedWhenUnread, report);
      if (portSpec.optional) continue;
      const which = port === first ? 'the output' : `output \`${port}\``;
      report.key(['nodes', name], 'unused_output', `${which} of node \`${name}\` (\`${node.op}\`) is not used`, 'connect it or remove the node', 'warning');
    }
  }
}
