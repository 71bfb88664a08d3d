/**
 * What the language layers know of an operator: its ports, settings schema
 * and host requirements. The runtime's definition (`runtime/api.ts`) adds
 * `create`; `graph/` receives the registry as data and never runs anything.
 */
import type { z } from 'zod';
import type { PortType } from './port-types.ts';

/** Capabilities a host may offer and an operator may need. */
export type Requirement = 'ffmpeg' | 'gpu' | 'display' | 'listen';

export const requirements: readonly Requirement[] = ['ffmpeg', 'gpu', 'display', 'listen'];

export interface PortSpec {
  /** A port type string, see `port-types.ts` (`Event`, `T: Event`, `Bytes`, `Media<video/*>`). */
  type: string;
  doc: string;
  /** An output that is normal to leave unconnected (no warning), or an input that may be left unconnected. */
  optional?: boolean;
  /** An output whose records are dropped when nothing reads it (a window's late records): left unconnected, it draws a warning. */
  droppedWhenUnread?: DroppedWhenUnread;
}

/** When an output's unread records are worth a warning; settings are named as written under `with:`. */
export interface DroppedWhenUnread {
  /** Only when this setting is given, as without it the port carries nothing (`time`: only event time makes records late). */
  onlyWith?: string;
  /** A setting that, once written, states how much loss the author accepts (`lateness`): then no warning. The hint names it. */
  unlessSet?: string;
}

export interface OperatorSpec<Settings = unknown> {
  /** `family.verb` or `family.noun`, lower case. */
  name: string;
  /** One line for tables. */
  summary: string;
  /** One paragraph: what it does and when to use it. */
  doc: string;
  /** Input ports by name; empty for sources. */
  inputs: Record<string, PortSpec>;
  /** Output ports by name; the first is the default one; empty for sinks. */
  outputs: Record<string, PortSpec>;
  settings: z.ZodType<Settings>;
  /** What a host must offer to run it. */
  requires?: readonly Requirement[] | ((settings: Settings) => readonly Requirement[]);
  /**
   * For a node that keeps state per key (windows, `dedupe`, `throttle`,
   * `aggregate` after a window): where the key comes from, so that the
   * planner partitions its input by it and every record of a key reaches
   * the same instance when the node runs with `parallelism` above 1.
   */
  partitionBy?: PartitionBy;
  /** Output types that depend on settings or inputs (a decoder's schema, say). */
  infer?: (settings: Settings, inputs: Record<string, PortType>) => Partial<Record<string, PortType>>;
  /** A minimal `with:` block shown in docs. */
  example?: Record<string, unknown>;
}

/**
 * Where a keyed node's key comes from: `setting` names the setting holding
 * the key's CEL expression (absent, the node has one key for all records);
 * `field` names a field of the records it receives (an `aggregate` reads the
 * `key` of the window panes it is fed; fed plain records, it has none).
 */
export type PartitionBy = { setting: string } | { field: string };

/** The operators known to the checker, by name. */
export type Registry = ReadonlyMap<string, OperatorSpec<any>>;

/** Every node that can fail a record gets this output for dead letters. */
export const dlqPort: PortSpec = {
  type: 'Event<{error: string, node: string}>',
  doc: 'Records this node could not process, with the reason (`error`), the node name and the original `record`.',
  optional: true,
};

/** All outputs of an operator, including the implicit dead-letter port every node has. */
export function outputsOf(spec: OperatorSpec<any>): Readonly<Record<string, PortSpec>> {
  let outputs = allOutputs.get(spec);
  if (!outputs) allOutputs.set(spec, (outputs = { ...spec.outputs, dlq: dlqPort }));
  return outputs;
}

const portNameLists = new WeakMap<object, readonly string[]>();

/** The names of a map of ports, listed once per map: the operators' port maps are shared by all their nodes. */
export function portNames(ports: object): readonly string[] {
  let names = portNameLists.get(ports);
  if (!names) portNameLists.set(ports, (names = Object.keys(ports)));
  return names;
}

/** Each operator's outputs with `dlq`, built once: the checker asks for every node and every edge. */
const allOutputs = new WeakMap<OperatorSpec<any>, Readonly<Record<string, PortSpec>>>();

export function requirementsOf(spec: OperatorSpec<any>, settings: unknown): readonly Requirement[] {
  if (!spec.requires) return [];
  return typeof spec.requires === 'function' ? spec.requires(settings) : spec.requires;
}
