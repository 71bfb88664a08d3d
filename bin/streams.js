#!/usr/bin/env node
// The `streams` command as npm links it (plain JavaScript: Node runs no
// TypeScript under node_modules). In a source checkout, on a Node that strips
// types, it runs the TypeScript sources, so `npx streams` in the repository
// always runs the code in the tree; an installed package ships no sources
// and runs the JavaScript that `npm pack` compiled into dist/.
// A plain `node` line (busybox's `env` has no `-S` for options): `validate`
// holds its young generation small itself (cli/young-generation.ts); a
// smaller one for `run` is the user's NODE_OPTIONS=--max-semi-space-size=16.
import { existsSync } from 'node:fs';

const sources = new URL('./streams.ts', import.meta.url);
const compiled = new URL('../dist/bin/streams.js', import.meta.url);
if (process.features.typescript && existsSync(sources)) await import(sources.href);
else if (existsSync(compiled)) await import(compiled.href);
else {
  process.stderr.write(`streams: ${compiled.pathname} is missing and this Node (${process.version}) cannot run the TypeScript sources: run \`npm run build\`, or use Node 22.18 or later\n`);
  process.exitCode = 2;
}
