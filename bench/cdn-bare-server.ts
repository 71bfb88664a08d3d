/**
 * C1's bare Node baseline: `node:http` answering from an `lru-cache` filled
 * from a folder at start, with nothing else (no validation, no headers
 * beyond the needed): what a hand-written Node cache does at best.
 *
 *   node bench/cdn-bare-server.ts FOLDER PORT
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';

const [folder, portText] = process.argv.slice(2);
const cache = new LRUCache<string, Buffer>({ maxSize: 256 * 1024 * 1024, sizeCalculation: (body) => body.length || 1 });
for (const name of readdirSync(folder)) cache.set(`/${name}`, readFileSync(join(folder, name)));

createServer(function bareRequest(request, response) {
  const body = cache.get(request.url ?? '/');
  if (!body) {
    response.writeHead(404, { 'Content-Length': 0 });
    response.end();
    return;
  }
  response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'public, max-age=60' });
  response.end(body);
}).listen(Number(portText), '127.0.0.1', () => process.stdout.write('ready\n'));
// An exit of its own on SIGTERM, so that a CPU profile (`--cpu-prof`) is written.
process.on('SIGTERM', () => process.exit(0));
