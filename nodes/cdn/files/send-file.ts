/**
 * Answering a request for one file as an origin should, for the caches in
 * front of it: validators (`ETag`, `Last-Modified`) and the 304s they earn,
 * single byte ranges, `HEAD`, and the body streamed from disk, optionally
 * paced to a rate (to show what a slow origin does to an edge).
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseRange } from '../../io/web/range.ts';
import { notModified } from '../edge/conditional.ts';
import type { FoundFile } from './file-path.ts';

/** The headers a file is described by, besides its length. */
export interface FileHeaders {
  'Content-Type': string;
  'Cache-Control': string;
  'Surrogate-Key'?: string;
}

/** A strong validator from size and modification time: a rewritten file gets another. */
export function etagOf(file: FoundFile): string {
  return `"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
}


/** Waits for the runtime clock; how pacing sleeps. */
export type Sleep = (ms: number) => Promise<void>;

/** Sends `file` (or the asked range of it) with `headers`; `bytesPerSecond` paces the body. Resolves with the body bytes sent. */
export async function sendFile(request: IncomingMessage, response: ServerResponse, file: FoundFile, headers: FileHeaders, pace?: { bytesPerSecond: number; sleep: Sleep; now(): number }): Promise<number> {
  const etag = etagOf(file);
  const lastModified = new Date(file.mtimeMs).toUTCString();
  const base: Record<string, string | number> = { ...headers, ETag: etag, 'Last-Modified': lastModified, 'Accept-Ranges': 'bytes' };
  if (notModified(request.headers, { etag, lastModified })) {
    response.writeHead(304, base);
    response.end();
    return 0;
  }
  const range = parseRange(request.headers.range, file.size);
  if (range === 'unsatisfiable') {
    response.writeHead(416, { ...base, 'Content-Range': `bytes */${file.size}`, 'Content-Length': 0 });
    response.end();
    return 0;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? file.size - 1;
  const length = file.size === 0 ? 0 : end - start + 1;
  if (range !== undefined) base['Content-Range'] = `bytes ${start}-${end}/${file.size}`;
  response.writeHead(range === undefined ? 200 : 206, { ...base, 'Content-Length': length });
  if (request.method === 'HEAD' || length === 0) {
    response.end();
    return 0;
  }
  // Paced, a body goes in chunks of about a sixteenth of a second each, every one when the rate allows all of it.
  const chunkBytes = pace ? Math.max(1024, Math.min(64 * 1024, Math.floor(pace.bytesPerSecond / 16))) : 64 * 1024;
  const stream = createReadStream(file.path, { start, end, highWaterMark: chunkBytes });
  const began = pace?.now();
  let sent = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (response.destroyed) break;
      if (pace) {
        const due = began! + ((sent + chunk.length) / pace.bytesPerSecond) * 1000;
        const wait = due - pace.now();
        if (wait > 0) await pace.sleep(wait);
        if (response.destroyed) break;
      }
      sent += chunk.length;
      if (!response.write(chunk)) await new Promise<void>((resolve) => response.once('drain', resolve).once('close', resolve));
    }
  } finally {
    stream.destroy();
  }
  if (sent === length) response.end();
  else response.destroy();
  return sent;
}
