/**
 * The origin's routes: playlists (with blocking reload), the MPD, inits,
 * segments and parts (a preload-hinted part, or a DASH segment still being
 * cut, is held and answered the moment it exists), the player page and its
 * scripts, and `/healthz`. Every name in a path is checked against a safe
 * character set before it is looked up, so no path can reach anything but
 * the window in memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { initOf, newestClosedAt, partOf, segmentOf, type StreamWindow, type TrackWindow } from '../../../media/cmaf-window.ts';
import { renderMpd } from '../../../media/dash/mpd.ts';
import { announcedReady, nextPart, renderMaster, renderMedia, targetDuration, trackReady } from '../../../media/hls/playlist.ts';
import { playerPage, playerScript } from './player-page.ts';
import { sendError, sendObject } from './respond.ts';
import type { OriginStore } from './store.ts';
import { isSafeStreamKey } from '../../../media/stream-key.ts';

/** What the routes need to know of their node. */
export interface RouteOptions {
  /** The URL path streams live under, without a trailing slash: `/live`. */
  prefix: string;
  /** `Access-Control-Allow-Origin`, or false for no CORS headers. */
  cors: string | false;
  /** The node's clock (the runtime's): what time it is, and timers for held answers. */
  now(): number;
  schedule(ms: number, fn: () => void): () => void;
  /**
   * How long after a stream's window opens a master playlist is held back
   * (ms): rungs an encoder starts a moment after the source are then listed
   * too, since players do not reload the master.
   */
  masterWaitMs?: number;
  /** Whether the node is stopping (requests get 503). */
  stopping(): boolean;
}

/** The blocking-reload limit past the last listed segment (RFC 8216bis 6.2.5.2). */
const msnAdvanceLimit = 2;
/** The limit on `_HLS_part` past the last listed part (the Advance Part Limit). */
const partAdvanceLimit = 3;

/** `{epoch}-{msn}.m4s`, `{epoch}-{msn}.{part}.m4s`, `init-{epoch}-{version}.mp4` (see `media/segment.ts`). */
const segmentFile = /^([0-9a-z]{1,12})-(\d{1,15})\.m4s$/;
const partFile = /^([0-9a-z]{1,12})-(\d{1,15})\.(\d{1,6})\.m4s$/;
const initFile = /^init-([0-9a-z]{1,12})-(\d{1,9})\.mp4$/;

/** An answer for a request that would be held past the bounds (`OriginStore.hold`). */
const busyMessage = 'too many requests are waiting on this origin; retry';

/**
 * The reason a `clientGone` signal aborts with. `abort()` without a reason
 * builds a DOMException, stack trace included, and every response closes:
 * with 25 players' blocking reloads on each of two streams (about 80
 * requests a second) the engine spent 1.14x the CPU it does without
 * (`bench/m2b-engine-cost.ts --viewers 25`, same run).
 */
const clientLeft = 'the client went away';

/** A signal that aborts when the client goes away, so a held request stops waiting (and counting); a response that was sent in full does not abort it. */
function clientGone(response: ServerResponse): AbortSignal {
  const controller = new AbortController();
  if (response.destroyed || response.writableEnded) controller.abort(clientLeft);
  else {
    response.once('close', function responseClosed() {
      if (!response.writableFinished) controller.abort(clientLeft);
    });
  }
  return controller.signal;
}

/** Builds the request handler of an origin over `store`. */
export function originRoutes(store: OriginStore, options: RouteOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const cors: Record<string, string> =
    options.cors === false ? {} : { 'Access-Control-Allow-Origin': options.cors, 'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Date' };

  /** Waits at most three target durations, as the specification bounds a blocked request. */
  function holdMs(stream: StreamWindow, track: TrackWindow): number {
    return 3 * targetDuration(stream, track) * 1000;
  }

  return async function handleOriginRequest(request, response) {
    const error = (status: number, message: string, headers: Record<string, string> = {}) => sendError(response, status, message, { ...cors, ...headers });
    if (request.method === 'OPTIONS') {
      response.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS', 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Max-Age': '86400' });
      response.end();
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return error(405, 'use GET', { Allow: 'GET, HEAD, OPTIONS' });
    if (options.stopping()) return error(503, 'shutting down', { 'Retry-After': '1' });
    const url = new URL(request.url ?? '/', 'http://origin');
    const path = url.pathname;
    if (path === '/healthz') return sendObject(request, response, 'page', JSON.stringify({ ok: true, streams: store.size }), { ...cors, 'Content-Type': 'application/json' });
    const script = playerScript(path);
    if (script !== undefined) return sendObject(request, response, 'script', await script, cors);
    if (!path.startsWith(`${options.prefix}/`)) return error(404, 'not found');
    // Split before decoding: an encoded `/` or `..` stays inside one name, which the charset then refuses.
    const names = path.slice(options.prefix.length + 1).split('/');
    const key = names[0];
    if (!isSafeStreamKey(key)) return error(404, 'not found');
    const stream = store.stream(key);
    if (names.length === 1) {
      response.writeHead(301, { Location: `${options.prefix}/${key}/`, ...cors });
      response.end();
      return;
    }
    if (stream === undefined) return error(404, 'no such stream');
    if (names.length === 2) return streamFile(request, response, stream, names[1], url, error);
    if (names.length !== 3 || !isSafeStreamKey(names[1])) return error(404, 'not found');
    const track = stream.tracks.get(names[1]);
    if (track === undefined) return error(404, 'no such track');
    return trackFile(request, response, stream, track, names[2], url, error);
  };

  async function streamFile(request: IncomingMessage, response: ServerResponse, stream: StreamWindow, file: string, url: URL, error: (status: number, message: string, headers?: Record<string, string>) => void): Promise<void> {
    if (file === '') return sendObject(request, response, 'page', playerPage(`${options.prefix}/${stream.key}/`, url.searchParams.has('dash'), stream.settings), cors);
    if (file === 'master.m3u8') {
      // Rungs start within moments of each other: a master asked for in between waits for them all, so none is left out.
      // When the encoder announced its renditions, the wait ends as soon as each has a segment.
      const gone = clientGone(response);
      const early = (stream.openedAt ?? 0) + (options.masterWaitMs ?? 0) - options.now();
      if (early > 0 && (await store.settle(stream, () => announcedReady(stream), early, gone)) === 'gone') return;
      const results = await Promise.all([...stream.tracks.values()].map((track) => store.waitFor(stream, track, () => trackReady(track), holdMs(stream, track), gone)));
      if (results.includes('busy')) return error(503, busyMessage, { 'Retry-After': '1' });
      const text = renderMaster(stream);
      if (text === undefined) return error(503, 'the stream has no segment yet', { 'Retry-After': '1' });
      return sendObject(request, response, 'playlist', text, cors);
    }
    if (file === 'manifest.mpd') {
      if (stream.settings.dash === undefined) return error(404, 'this stream is not published as DASH');
      const text = renderMpd(stream, options.now());
      if (text === undefined) return error(503, 'the stream has no segment yet', { 'Retry-After': '1' });
      return sendObject(request, response, 'mpd', text, cors);
    }
    return error(404, 'not found');
  }

  async function trackFile(
    request: IncomingMessage,
    response: ServerResponse,
    stream: StreamWindow,
    track: TrackWindow,
    file: string,
    url: URL,
    error: (status: number, message: string, headers?: Record<string, string>) => void,
  ): Promise<void> {
    if (file === 'index.m3u8') return mediaPlaylist(request, response, stream, track, url, error);
    // A name of another publish (an older epoch) is gone, even when its number is in the window again.
    const init = initFile.exec(file);
    if (init !== null) {
      const found = init[1] === stream.epoch ? initOf(track, Number(init[2])) : undefined;
      return found === undefined ? error(404, 'no such init segment') : sendObject(request, response, 'init', found.data, cors);
    }
    const part = partFile.exec(file);
    if (part !== null) return part[1] === stream.epoch ? partRequest(request, response, stream, track, Number(part[2]), Number(part[3]), error) : error(404, 'no such part');
    const segment = segmentFile.exec(file);
    if (segment !== null) return segment[1] === stream.epoch ? segmentRequest(request, response, stream, track, Number(segment[2]), error) : error(404, 'no such segment');
    return error(404, 'not found');
  }

  async function mediaPlaylist(request: IncomingMessage, response: ServerResponse, stream: StreamWindow, track: TrackWindow, url: URL, error: (status: number, message: string, headers?: Record<string, string>) => void): Promise<void> {
    const msnText = url.searchParams.get('_HLS_msn');
    const partText = url.searchParams.get('_HLS_part');
    if (msnText === null && partText !== null) return error(400, '`_HLS_part` needs `_HLS_msn`');
    if (msnText !== null) {
      if (!/^\d{1,15}$/.test(msnText) || (partText !== null && !/^\d{1,6}$/.test(partText))) return error(400, '`_HLS_msn` and `_HLS_part` must be whole numbers');
      const msn = Number(msnText);
      const part = partText === null ? undefined : Number(partText);
      const lastListed = track.openParts.length > 0 ? track.nextMsn : track.nextMsn - 1;
      if (msn > lastListed + msnAdvanceLimit) return error(400, `\`_HLS_msn\` ${msn} is too far ahead of the playlist (last segment ${lastListed})`);
      const lastPart = track.openParts.at(-1)?.part ?? -1;
      if (part !== undefined && msn === track.nextMsn && part > lastPart + partAdvanceLimit) return error(400, `\`_HLS_part\` ${part} is too far ahead of the playlist`);
      const ready = () => track.nextMsn > msn || (part !== undefined && msn === track.nextMsn && track.openParts.some((p) => p.part >= part));
      const satisfied = await store.waitFor(stream, track, ready, holdMs(stream, track), clientGone(response));
      if (satisfied === 'busy') return error(503, busyMessage, { 'Retry-After': '1' });
      if (!satisfied && !track.ended) {
        if (store.dropped(track)) return error(404, 'the stream ended');
        return error(503, 'the requested segment or part did not appear in time', { 'Retry-After': '1' });
      }
    }
    // For latency measurements from outside (bench/m2b-capacity.ts): when the newest listed part's closing packet arrived.
    const closedAt = newestClosedAt(track);
    sendObject(request, response, 'playlist', renderMedia(stream, track), closedAt === undefined ? cors : { ...cors, 'X-Streams-Closed-At': String(closedAt) });
  }

  async function partRequest(request: IncomingMessage, response: ServerResponse, stream: StreamWindow, track: TrackWindow, msn: number, index: number, error: (status: number, message: string, headers?: Record<string, string>) => void): Promise<void> {
    let found = partOf(track, msn, index);
    if (found === undefined) {
      const hint = nextPart(track);
      // Only the part a preload hint names (or the first of the next segment) is worth waiting for.
      const hinted = (msn === hint.msn && index === hint.part) || (msn === track.nextMsn + 1 && index === 0);
      if (!hinted || track.ended) return error(404, 'no such part');
      const waited = await store.waitFor(stream, track, () => partOf(track, msn, index) !== undefined || track.nextMsn > msn, holdMs(stream, track), clientGone(response));
      if (waited === 'busy') return error(503, busyMessage, { 'Retry-After': '1' });
      found = partOf(track, msn, index);
      if (found === undefined) return error(404, 'no such part');
    }
    sendObject(request, response, 'part', found.data, cors);
  }

  async function segmentRequest(request: IncomingMessage, response: ServerResponse, stream: StreamWindow, track: TrackWindow, msn: number, error: (status: number, message: string, headers?: Record<string, string>) => void): Promise<void> {
    const finished = segmentOf(track, msn);
    if (finished !== undefined) return sendObject(request, response, 'segment', finished.data, cors);
    if (msn !== track.nextMsn || track.ended) return error(404, 'no such segment');
    if (track.openParts[0]?.part === 0 && request.headers.range === undefined) {
      const release = store.hold(stream);
      if (release === undefined) return error(503, busyMessage, { 'Retry-After': '1' });
      return streamOpenSegment(request, response, stream, track, msn, release);
    }
    // Asked a little early (a DASH player's clock ahead of ours): answer when it is finished.
    const waited = await store.waitFor(stream, track, () => track.nextMsn > msn, holdMs(stream, track), clientGone(response));
    if (waited === 'busy') return error(503, busyMessage, { 'Retry-After': '1' });
    const segment = segmentOf(track, msn);
    if (segment === undefined) return error(404, 'no such segment');
    sendObject(request, response, 'segment', segment.data, cors);
  }

  /**
   * A segment still being cut, sent as it grows (low-latency DASH): the
   * parts it has, then each new part the moment it arrives, chunked; the
   * response ends when the segment is finished.
   */
  function streamOpenSegment(request: IncomingMessage, response: ServerResponse, stream: StreamWindow, track: TrackWindow, msn: number, release: () => void): void {
    response.writeHead(200, { 'Content-Type': 'video/iso.segment', 'Cache-Control': 'no-cache', ...cors });
    if (request.method === 'HEAD') {
      release();
      response.end();
      return;
    }
    let written = 0;
    let nextIndex = 0;
    response.socket?.setNoDelay(true);
    const writeNewParts = (): void => {
      for (const part of track.nextMsn === msn ? track.openParts : (segmentOf(track, msn)?.parts ?? [])) {
        if (part.part !== nextIndex) continue;
        response.write(part.data);
        written += part.data.length;
        nextIndex++;
      }
    };
    writeNewParts();
    let stopListening: () => void = () => undefined;
    const cancelTimeout = options.schedule(holdMs(stream, track) + 1000 * stream.settings.segment, function openSegmentTimedOut() {
      stopListening();
      response.destroy();
    });
    const finish = (): void => {
      cancelTimeout();
      stopListening();
      const segment = segmentOf(track, msn);
      if (segment === undefined) {
        response.destroy();
        return;
      }
      // The parts are the segment's bytes in order; whatever was not sent as a part goes now.
      if (segment.data.length > written) response.write(segment.data.subarray(written));
      response.end();
    };
    stopListening = store.listen(track, function openSegmentGrew() {
      if (track.nextMsn === msn && !track.ended && !store.dropped(track)) return writeNewParts();
      writeNewParts();
      finish();
    });
    response.on('close', () => {
      cancelTimeout();
      stopListening();
      release();
    });
  }
}
