/**
 * The visualiser page's files, built from `ui/` by `bin/build-ui.ts` into
 * `dist/ui/` (at `npm ci`/`npm install` through the `prepare` script, and by
 * `npm run build` for the packed package). Served from memory once read;
 * nothing is fetched from the internet.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The files of the page, by URL path. */
const files: Record<string, string> = { '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css', '/elk-worker.js': 'elk-worker.js' };

/**
 * Where the built page is: `dist/ui` of the package, two folders up from
 * this file both in a checkout (`runtime/server/`) and in the installed
 * bundle (`dist/bin/`, `dist/chunks/`).
 */
export function pageDirectory(): string | undefined {
  const dir = join(import.meta.dirname, '..', '..', 'dist', 'ui');
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

const cache = new Map<string, Buffer>();

/** Serves a file of the page; false when `path` is not one. */
export function servePageAsset(path: string, response: ServerResponse): boolean {
  const name = files[path];
  if (!name) return false;
  const dir = pageDirectory();
  if (!dir) {
    response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    response.end('the visualiser page is not built: run `npm run build:ui` (it runs at `npm ci` too); the JSON API under /api/ works without it\n');
    return true;
  }
  let body = cache.get(name);
  if (!body) {
    body = readFileSync(join(dir, name));
    cache.set(name, body);
  }
  const type = types[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
  // The page takes its token from its own URL: it must not leak to other sites through Referer.
  response.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', 'referrer-policy': 'no-referrer', 'content-length': body.length });
  response.end(body);
  return true;
}
