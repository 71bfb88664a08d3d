#!/usr/bin/env node
/**
 * The `streams` executable. It turns on Node's compile cache (Node 22.1 and
 * later; a no-op before) before loading anything else, so that a second
 * start reuses the bytecode of every module the first one compiled.
 */
import module from 'node:module';

module.enableCompileCache?.();
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
