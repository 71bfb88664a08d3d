/**
 * How V8 collects a process that carries media. Media buffers (packets,
 * segments) live outside V8's heap, and by V8's default their growth alone
 * sets off full collections however small the heap: 20 live streams made 68
 * mark-compacts in 30 s of an 18 MB heap. Counted in the heap's global limit
 * instead, they are collected as the heap's growth warrants (13 in 30 s):
 * the engine's CPU per stream 0.58-0.68x at 20-60 streams, in the same run;
 * the price is memory, freed later (resident at 30 streams 1.3x on average,
 * at 60 2.9x: 2.7 GB against 0.96 GB; bench/m2b-engine-cost.ts). Event
 * pipelines keep V8's default. The flag is the process's, so it is set once,
 * when the first graph that carries media starts; V8 reads it at every
 * collection, so setting it late takes effect. A command line that names it
 * (`node --no-external-memory-accounted-in-global-limit bin/streams.ts ...`)
 * decides instead (NODE_OPTIONS does not take V8 flags of this kind).
 */
import v8 from 'node:v8';
import type { Graph } from '../graph/model.ts';
import type { PortType } from '../graph/port-types.ts';

const flag = 'external-memory-accounted-in-global-limit';

function carriesMedia(type: PortType): boolean {
  if (type.kind === 'media' || type.kind === 'segment') return true;
  return type.kind === 'var' && type.bound !== undefined && carriesMedia(type.bound);
}

/** The V8 flag a process running `graph` should set, if any, given the command line's own flags. */
export function heapFlagFor(graph: Graph, execArgv: readonly string[]): string | undefined {
  if (execArgv.some((arg) => arg.includes(flag))) return undefined;
  return graph.edges.some((edge) => carriesMedia(edge.type)) ? `--${flag}` : undefined;
}

let applied = false;

/** Sets the flag `heapFlagFor` names, once per process. */
export function tuneHeapFor(graph: Graph): void {
  if (applied) return;
  const wanted = heapFlagFor(graph, process.execArgv);
  if (wanted === undefined) return;
  v8.setFlagsFromString(wanted);
  applied = true;
}
