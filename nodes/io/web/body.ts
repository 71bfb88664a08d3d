/** Reading a request body into memory, never more than a bound. */
import type { IncomingMessage } from 'node:http';

/**
 * The body of `request`, or `too_large` as soon as it passes `limit` bytes
 * (what was read is let go and the rest is discarded as it comes, never
 * kept), or `aborted` when the sender hangs up first. `onChunk` sees each
 * chunk kept, for a signature computed as the body streams in.
 */
export function readBody(request: IncomingMessage, limit: number, onChunk: (chunk: Buffer) => void): Promise<Buffer | 'too_large' | 'aborted'> {
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    function finish(result: Buffer | 'too_large' | 'aborted'): void {
      if (done) return;
      done = true;
      request.off('data', onData);
      resolve(result);
    }
    function onData(chunk: Buffer): void {
      total += chunk.length;
      if (total > limit) {
        chunks = [];
        finish('too_large');
        // Keep the stream flowing so the rest is discarded rather than buffered.
        request.resume();
        return;
      }
      onChunk(chunk);
      chunks.push(chunk);
    }
    request.on('data', onData);
    request.once('end', () => finish(Buffer.concat(chunks, total)));
    request.once('error', () => finish('aborted'));
    request.once('close', () => finish('aborted'));
  });
}
