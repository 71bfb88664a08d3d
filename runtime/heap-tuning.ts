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
 * when the first graph that carries media starts or is reloaded to, and stays
 * set for the process's life; V8 reads it at every collection, so setting it
 * late takes effect. A command line that names it
 * (`node --no-external-memory-accounted-in-global-limit bin/streams.ts ...`)
 * decides instead (NODE_OPTIONS does not take V8 flags of this kind).
 */
import v8 from 'node:v8';
import type { Graph } from '../graph/model.ts';
import type { PortType } from '../graph/port-types.ts';

const flag = 'external-memory-accounted-in-global-limit';

function carriesMedia(type: PortType): boolean {
  return type.kind === 'media' || type.kind === 'segment';
}

/**
 * The V8 versions known to have the flag (Node 24's V8 13; Node 20 and 22 lack it and print an error for it; later V8
 * turned it on and removed it).
 */
function v8HasFlag(v8Version: string): boolean {
  return Number(v8Version.split('.')[0]) === 13;
}

/** The V8 flag a process running `graph` should set, if any, given the command line's own flags and the V8 version. */
export function heapFlagFor(graph: Graph, execArgv: readonly string[], v8Version = process.versions.v8): string | undefined {
  if (!v8HasFlag(v8Version) || execArgv.some((arg) => arg.replaceAll('_', '-').includes(flag))) return undefined;
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
