/**
 * What the live capacity benchmarks read from an engine serving LL-HLS
 * (`m2b-capacity.ts`, `m2b-engine-cost.ts`): how far each stream's
 * playlist lists media, and part availability measured with blocking
 * playlist reloads against the `X-Streams-Closed-At` header; an engine's
 * resident memory.
 */
import { readFileSync } from 'node:fs';

/** A process's resident memory (VmRSS), MB; from /proc (Linux). */
export function residentMegabytes(pid: number): number {
  const kilobytes = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kilobytes) / 1024;
}

/** The newest media time a playlist lists (ms since the epoch): the last segment's date plus the durations after it, parts of the open segment included. */
export function listedUpTo(text: string): number | undefined {
  let at: number | undefined;
  let open = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) at = Date.parse(line.slice(25));
    else if (at !== undefined && line.startsWith('#EXTINF:')) {
      at += Number.parseFloat(line.slice(8)) * 1000;
      open = 0;
    } else if (line.startsWith('#EXT-X-PART:')) open += Number(/DURATION=([\d.]+)/.exec(line)?.[1] ?? 0) * 1000;
  }
  return at === undefined ? undefined : at + open;
}

/** The newest listed media time of each stream (`/live/KEY/source/index.m3u8` on `port`) that answers within 5 s; 25 requests at a time. */
export async function listedPositions(port: number, keys: string[]): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(keys.slice(i, i + 25).map(async (key) => {
      // Bounded: an engine that cannot keep up must show as missing streams, not hang the benchmark.
      const response = await fetch(`http://127.0.0.1:${port}/live/${key}/source/index.m3u8`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      const text = response?.status === 200 ? await response.text().catch(() => '') : '';
      const at = listedUpTo(text);
      if (at !== undefined) found.set(key, at);
    }));
  }
  return found;
}

/** Waits (up to `ms`) until every stream lists a segment; how many did. */
export async function untilListed(port: number, keys: string[], ms = 30_000): Promise<number> {
  const startedAt = Date.now();
  let ready = 0;
  while (Date.now() - startedAt < ms && (ready = (await listedPositions(port, keys)).size) < keys.length) await new Promise((resolve) => setTimeout(resolve, 500));
  return ready;
}

/**
 * Holds blocking reloads on one stream's video playlist until `until` and
 * pushes, for each answer to a request sent before its part closed, answer
 * received − `X-Streams-Closed-At` (when the closing packet reached the
 * engine), in ms.
 */
export async function partAvailability(port: number, key: string, until: number, delays: number[]): Promise<void> {
  let next = '';
  while (Date.now() < until) {
    const sentAt = Date.now();
    // A blocking reload is held a few parts at most; one held past 10 s is abandoned (and counts as no answer).
    const response = await fetch(`http://127.0.0.1:${port}/live/${key}/source/index.m3u8${next}`, { signal: AbortSignal.timeout(Math.max(1, Math.min(10_000, until - Date.now() + 2000))) }).catch(() => undefined);
    const text = response === undefined ? '' : await response.text().catch(() => '');
    const receivedAt = Date.now();
    if (response?.status !== 200) {
      next = '';
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    const closedAt = Number(response.headers.get('x-streams-closed-at'));
    if (next !== '' && closedAt > sentAt) delays.push(receivedAt - closedAt);
    let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1] ?? 0);
    let open = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('#EXTINF')) {
        msn += 1;
        open = 0;
      } else if (line.startsWith('#EXT-X-PART:') && new RegExp(`URI="${msn}\\.`).test(line)) open += 1;
    }
    next = `?_HLS_msn=${msn}&_HLS_part=${open}`;
  }
}
