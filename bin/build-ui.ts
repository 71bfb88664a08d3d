/**
 * Builds the visualiser page from `ui/` into `dist/ui/` (or OUTDIR/ui) with
 * esbuild: one script bundle (with elkjs's API), elkjs's layout worker, the stylesheet and the HTML. Run
 * by the `prepare` script (so `npm ci` in a checkout builds it), by
 * `npm run build:ui`, and by `bin/build.ts` for the packed package. The
 * page needs nothing from the internet.
 *
 *   node bin/build-ui.ts [OUTDIR]     (default dist)
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');

/** Builds the page into `outdir/ui`; resolves with that folder. */
export async function buildUi(outdir: string): Promise<string> {
  const target = join(outdir, 'ui');
  mkdirSync(target, { recursive: true });
  await build({
    entryPoints: [join(root, 'ui', 'main.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    outfile: join(target, 'app.js'),
    logLevel: 'warning',
    legalComments: 'linked',
  });
  for (const file of ['index.html', 'app.css']) copyFileSync(join(root, 'ui', file), join(target, file));
  // ELK's layout engine runs as a Web Worker; the page bundles only its small API.
  copyFileSync(join(root, 'node_modules', 'elkjs', 'lib', 'elk-worker.min.js'), join(target, 'elk-worker.js'));
  return target;
}

if (import.meta.main) {
  const dir = await buildUi(resolve(process.argv[2] ?? join(root, 'dist')));
  process.stdout.write(`built the visualiser page in ${dir}\n`);
}
