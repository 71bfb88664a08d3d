/**
 * Builds `dist/`, the JavaScript an installed package runs (`npm run build`,
 * also run by `npm pack`). esbuild bundles the CLI from `bin/streams.ts` as
 * ES modules with code splitting:
 *
 * - each `await import()` of the sources (a command in `cli/main.ts`, a
 *   state store in `runtime/state/store.ts`, an operator's module in
 *   `nodes/registry.ts`) stays a chunk loaded only when it is reached, so
 *   `--help` loads a few kilobytes, `validate` never loads the runtime, and
 *   a pipeline loads the operators it names and no other;
 * - rxjs, zod, yaml, cel-js and lru-cache are bundled in from their ES module
 *   builds, tree-shaken; prom-client and pino (CommonJS, static requires
 *   only) with their own dependencies: one file to read and compile instead
 *   of dozens, and the compile cache covers it all (pino's transports, which
 *   it would load by path, are never used: logs go to stderr synchronously);
 * - every other dependency stays external: the connectors' client libraries
 *   (still imported only when an operator that needs them starts).
 *
 * Node's built-in modules are read through `process.getBuiltinModule` on
 * first use (see {@link lazyBuiltins}).
 *
 *   node bin/build.ts [OUTDIR]     (default dist)
 */
import { rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import manifest from '../package.json' with { type: 'json' };
import { buildUi } from './build-ui.ts';

const root = join(import.meta.dirname, '..');
const outdir = resolve(process.argv[2] ?? join(root, 'dist'));

/** Dependencies compiled into the bundle; the rest of `dependencies` is loaded from node_modules. */
// @opentelemetry/api too: prom-client requires it (CommonJS) at load, which an external cannot satisfy in
// an ES module bundle; the SDK, loaded from node_modules with tracing on, meets this copy through the API's
// global registry (its context keys are `Symbol.for`).
const bundled = ['rxjs', 'zod', 'yaml', '@marcbachmann/cel-js', 'lru-cache', 'prom-client', '@opentelemetry/api', 'pino'];

/**
 * The ES module builds of packages whose `node` export is CommonJS (esbuild
 * always honours the `node` condition on the node platform): rxjs's
 * `es2015` build, and yaml's `browser` build (the same code as ES modules; it
 * uses `Buffer` when there is one).
 */
const esmBuilds: Record<string, string> = {
  rxjs: './node_modules/rxjs/dist/esm/index.js',
  yaml: './node_modules/yaml/browser/index.js',
};

/**
 * Node's built-in modules as CommonJS objects whose exports are getters that
 * load the module on first use, instead of ES imports. Node builds the ES
 * module facade of a built-in by reading every export, and `node:http`'s
 * `WebSocket`, `EventSource` and friends are getters that load undici (about
 * 30 ms); and `validate` evaluates the modules of the operators a pipeline
 * names, so the `node:tls`, `node:http` and `node:crypto` their connectors
 * import would load although only `run` uses them (about 20 ms more). The export names are those of the
 * Node that builds; esbuild's CommonJS interop reads each one when used, and
 * a module imported whole (`import fs from 'node:fs'`) is an object of the
 * same getters.
 */
const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(plugin) {
    plugin.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'builtin' }));
    // What bundled CommonJS packages require by bare name (`require('zlib')`).
    plugin.onResolve({ filter: /^[a-z0-9_]+(\/[a-z0-9_]+)?$/ }, (args) => (isBuiltin(args.path) ? { path: `node:${args.path}`, namespace: 'builtin' } : undefined));
    plugin.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => {
      const specifier = JSON.stringify(args.path);
      const builtin: unknown = process.getBuiltinModule(args.path);
      // A module that is a function (`node:events`, `node:module`) or `process` must be itself when imported whole: loaded at once.
      if (typeof builtin === 'function' || builtin === process) return { contents: `module.exports = process.getBuiltinModule(${specifier});\n`, loader: 'js' };
      const getters = Object.getOwnPropertyNames(builtin)
        .filter((name) => name !== 'default')
        .map((name) => `get ${JSON.stringify(name)}() { return load()[${JSON.stringify(name)}]; }`);
      return {
        contents: `let loaded;\nconst load = () => (loaded ??= process.getBuiltinModule(${specifier}));\nmodule.exports = { ${getters.join(', ')} };\n`,
        loader: 'js',
      };
    });
  },
};

const external = Object.keys(manifest.dependencies).filter((name) => !bundled.includes(name));

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { 'bin/streams': 'bin/streams.ts' },
  outdir,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  external,
  alias: esmBuilds,
  plugins: [lazyBuiltins],
  // Whitespace and syntax only: names stay, so an internal error's stack still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});
// The visualiser page (`streams run --ui`), served from `dist/ui`.
await buildUi(outdir);
