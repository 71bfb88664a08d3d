/**
 * Keeps the checkout's `prepare` script (it builds the visualiser page at
 * `npm ci`) out of the packed package, where it could not run (the page
 * ships built) and makes npm warn on every install about a script not
 * covered by `allowScripts`. `prepack` hides it as `_prepare` before npm
 * writes the tarball's manifest; `postpack` puts it back, byte for byte.
 *
 *   node bin/pack-manifest.ts hide|restore
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const manifest = join(import.meta.dirname, '..', 'package.json');
const shown = '"prepare": ';
const hidden = '"_prepare": ';

const [from, to] = process.argv[2] === 'restore' ? [hidden, shown] : [shown, hidden];
const text = readFileSync(manifest, 'utf8');
if (text.includes(from)) writeFileSync(manifest, text.replace(from, to));
