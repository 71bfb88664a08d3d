#!/usr/bin/env node
/**
 * The `streams` executable. It turns on Node's compile cache (Node 22.1 and
 * later; a no-op before) before loading anything else, so that a second
 * start reuses the bytecode of every module the first one compiled.
 */
import module from 'node:module';
import v8 from 'node:v8';

module.enableCompileCache?.();
// Media buffers (packets, segments) live outside V8's heap, and by V8's default their growth alone sets off full garbage
// collections however small the heap: 20 live streams made 68 mark-compacts in 30 s of an 18 MB heap. Counted in the
// heap's global limit instead, they are collected as the heap's growth warrants (13 in 30 s): the engine's CPU per
// stream 0.58-0.68x of the old build's in the same run, at 20-60 streams; the price is memory, freed later (resident
// at 30 streams 1.3x on average, at 60 2.9x: 2.7 GB against 0.96 GB) (bench/m2b-engine-cost.ts). Set before anything
// allocates; `node --no-external-memory-accounted-in-global-limit bin/streams.ts ...` keeps V8's default (less memory,
// more CPU; NODE_OPTIONS does not take V8 flags of this kind).
if (!process.execArgv.some((flag) => flag.includes('external-memory-accounted-in-global-limit'))) {
  v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
}
// A reader that goes away (`streams run x.yaml | head`) ends the command
// quietly, as it does for other Unix tools, instead of with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});
const { main } = await import('../cli/main.ts');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`streams: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 70;
  },
);
