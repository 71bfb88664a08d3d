import { createServer } from 'node:http';
import { Edge } from '../nodes/cdn/edge/edge.ts';
import { EdgeStore } from '../nodes/cdn/edge/store.ts';
import type { CachedObject } from '../nodes/cdn/edge/cached-object.ts';
const edge = new Edge({ name: 'p', origin: new URL('http://127.0.0.1:7853'), maxObject: 64 << 20, originTimeoutMs: 10000, rules: [], defaultTtl: 60000, staleWhileRevalidate: 0, staleIfError: 0, prefetch: 0, store: new EdgeStore<CachedObject>({ maxBytes: 256 << 20, expectedObjects: 8192 }), now: () => Date.now() });
createServer((q, r) => void edge.handle(q, r)).listen(Number(process.argv[2]), '127.0.0.1');
