/**
 * One edge: the path of every request from arrival to answer. In order:
 * `/healthz`; the edge's own checks (`request-check.ts`: 400, never
 * forwarded); GET and HEAD only (405); the `admit` step (`admit.ts`, the
 * access policy's hook); the lookup (fresh: HIT; within
 * stale-while-revalidate: STALE and one background refresh); else one
 * coalesced origin request (MISS for the client that started it,
 * COALESCED for those that joined it), revalidating a stale object with
 * its validators, falling back to the stale object within stale-if-error,
 * else 502 or 504. Playlists passing through start the preload-hinted
 * part and the prefetch of new segments.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BucketHistogram } from '../../../runtime/api.ts';
import { accessRecord, type AccessRecord, type CacheOutcome } from './access-log.ts';
import { admitAll, admitRequest, releaseNothing, type Admit, type Admitted, type Refused } from './admit.ts';
import { ageOf, forwardedHeaders, originAgeOf, preparedAnswer, servableOnError, stateOf, storedObject, takeRevalidatedHeaders, type CachedObject } from './cached-object.ts';
import { Coalescer, type Fill, type FillResult } from './coalesce.ts';
import { fetchOrigin, originAgents, originRequestHeaders, type OriginHead } from './fetch-origin.ts';
import { blockingTarget, isPlaylist, playlistLinks } from './ll-hls.ts';
import { Prefetcher } from './prefetch.ts';
import { CheckedTargets, targetProblem } from './request-check.ts';
import { ended, handedOver, sendObject, sendOriginFailure, sendSignedPlaylist, sendText, type Sendable, type Sent } from './respond.ts';
import type { PurgeSelector } from '../purge/command.ts';
import type { EdgeStore } from './store.ts';
import { freshnessOf, type CompiledRule } from './ttl-rules.ts';
import { noHeaders, variantKeyOf, varyNames, VaryKeys } from './vary-keys.ts';

/** What an edge counts; the store counts evictions and admission refusals. */
export interface EdgeCounters {
  hits: number;
  misses: number;
  stale: number;
  coalesced: number;
  /** Body bytes sent to clients. */
  bytes: number;
  origin_requests: number;
  /** Requests refused by the edge's checks (400, 405) or by `admit`. */
  refused: number;
  /** Answers 502/504 for want of the origin. */
  origin_errors: number;
  prefetches: number;
}

/** How an edge behaves. */
export interface EdgeOptions {
  name: string;
  origin: URL;
  maxObject: number;
  originTimeoutMs: number;
  rules: readonly CompiledRule[];
  defaultTtl: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  prefetch: number;
  store: EdgeStore<CachedObject>;
  /** The access policy; admits every request by default. */
  admit?: Admit;
  now(): number;
  /** Receives an access record per request; leave undefined when nobody reads them. */
  log?(record: AccessRecord): void;
}

/** Blocking playlist requests wait at least this long: the origin holds them up to three target durations. */
const blockingTimeoutMs = 30_000;
/** A blocking playlist answer is the same for every player asking the same (msn, part): kept this long at least. */
const blockingTtlMs = 1000;

/** What one request became, for the access log and `release`. */
interface RequestNote {
  cache: CacheOutcome;
  originStatus: number | undefined;
  /** What admitted the request holds until it ends (a connection cap); undefined when nothing. */
  release: (() => void) | undefined;
  /** Signs the links of a playlist served to this request (it came on a signed link). */
  rewrite?: (body: string) => string;
  /** Arrival, ms since the epoch, for the access log (0 when nobody logs). */
  ts: number;
}

/** The content type of stored headers, as a string. */
function contentTypeOf(headers: OutgoingHttpHeaders): string | undefined {
  const type = headers['content-type'];
  return type === undefined ? undefined : String(type);
}

/** An edge cache in front of one origin. */
export class Edge {
  /** Time to first byte of every answer, seconds. */
  readonly ttfb = new BucketHistogram([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  /** Answers by status class: index 2 counts 2xx, ..., 5 counts 5xx. */
  readonly statusClasses = [0, 0, 0, 0, 0, 0];
  readonly counters: EdgeCounters = { hits: 0, misses: 0, stale: 0, coalesced: 0, bytes: 0, origin_requests: 0, refused: 0, origin_errors: 0, prefetches: 0 };
  readonly store: EdgeStore<CachedObject>;
  readonly #options: EdgeOptions;
  readonly #admit: Admit;
  readonly #coalescer = new Coalescer();
  readonly #agents = originAgents();
  readonly #vary = new VaryKeys();
  readonly #prefetcher: Prefetcher;
  readonly #targets = new CheckedTargets();

  constructor(options: EdgeOptions) {
    this.#options = options;
    this.store = options.store;
    this.#admit = options.admit ?? admitAll;
    this.#prefetcher = new Prefetcher(options.prefetch);
  }

  /** Origin requests in flight. */
  get inFlight(): number {
    return this.#coalescer.size;
  }

  /**
   * The request handler of the edge's HTTP server. A hit from a complete
   * object is answered synchronously (undefined returned): no promise, no
   * closure; otherwise the promise settles when the answer has ended.
   */
  handle(request: IncomingMessage, response: ServerResponse): Promise<void> | undefined {
    const arrived = performance.now();
    const note: RequestNote = { cache: 'NONE', originStatus: undefined, release: undefined, ts: this.#options.log ? this.#options.now() : 0 };
    let answer: Sent | Promise<Sent>;
    try {
      answer = this.#answer(request, response, note);
    } catch (error) {
      this.#finish(request, note, { status: 500, bytes: 0, headersAt: arrived }, arrived);
      throw error;
    }
    if (!(answer instanceof Promise)) {
      // Something holds this request (a connection cap) or wants its duration: finish when the answer has gone out,
      // which an answer written whole at once (a hit the socket took entirely) already has: no promise, no listener.
      if ((note.release === undefined && this.#options.log === undefined) || handedOver(response)) {
        this.#finish(request, note, answer, arrived);
        return undefined;
      }
      answer = ended(response, answer);
    }
    return answer.then(
      (sent) => this.#finish(request, note, sent, arrived),
      (error: unknown) => {
        this.#finish(request, note, { status: 500, bytes: 0, headersAt: arrived }, arrived);
        throw error;
      },
    );
  }

  /** Applies a purge; a URL may be given whole (`http://host/path`) or as its path. */
  purge(selector: PurgeSelector): number {
    let value = selector.value;
    if (selector.kind !== 'tag' && /^https?:\/\//i.test(value)) {
      const url = new URL(value);
      value = selector.kind === 'url' ? url.pathname + url.search : url.pathname;
    }
    return this.store.purge({ ...selector, value });
  }

  /** Closes kept-alive origin connections and forgets fetches in flight. */
  close(): void {
    this.#coalescer.clear();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** Counts and logs one request that has ended, and releases what admitted it. */
  #finish(request: IncomingMessage, note: RequestNote, sent: Sent, arrived: number): void {
    note.release?.();
    this.counters.bytes += sent.bytes;
    this.ttfb.observe(Math.max(0, sent.headersAt - arrived) / 1000);
    const statusClass = Math.floor(sent.status / 100);
    if (statusClass >= 1 && statusClass <= 5) this.statusClasses[statusClass] += 1;
    const log = this.#options.log;
    if (log) log(accessRecord(request, this.#options.name, note, sent, arrived));
  }

  #answer(request: IncomingMessage, response: ServerResponse, note: RequestNote): Sent | Promise<Sent> {
    const target = request.url ?? '/';
    const method = request.method ?? 'GET';
    if (target === '/healthz' && (method === 'GET' || method === 'HEAD')) return sendText(response, 200, 'ok');
    const problem = this.#targets.problem(target);
    if (problem !== undefined) {
      this.counters.refused += 1;
      return sendText(response, 400, `bad request: ${problem}`, { Connection: 'close' });
    }
    if (method !== 'GET' && method !== 'HEAD') {
      this.counters.refused += 1;
      return sendText(response, 405, `method ${method} not allowed: the edge serves GET and HEAD`, { Allow: 'GET, HEAD' });
    }
    // The admit step: the one place an access policy decides (see admit.ts); skipped when it admits all.
    if (this.#admit === admitAll) return this.#admitted(request, response, target, undefined, note);
    const admission = this.#admit(admitRequest(request, target, method, this.#options.name));
    if (admission instanceof Promise) return admission.then((decided) => this.#admitted(request, response, target, decided, note));
    return this.#admitted(request, response, target, admission, note);
  }

  #admitted(request: IncomingMessage, response: ServerResponse, target: string, admission: Admitted | Refused | undefined, note: RequestNote): Sent | Promise<Sent> {
    if (admission !== undefined) {
      if (!admission.ok) {
        this.counters.refused += 1;
        return sendText(response, admission.status, admission.body, admission.headers);
      }
      if (admission.release !== releaseNothing) note.release = admission.release;
      note.rewrite = admission.rewritePlaylist;
      if (admission.target !== undefined) target = admission.target;
    }
    // Only a target naming `_HLS_msn` can be a blocking reload: the rest are not parsed.
    const blocking = target.includes('_HLS_msn') ? blockingTarget(new URL(target, 'http://edge')) : undefined;
    return this.#lookup(request, response, blocking ?? target, note, blocking !== undefined);
  }

  #lookup(request: IncomingMessage, response: ServerResponse, path: string, note: RequestNote, blocking: boolean): Sent | Promise<Sent> {
    const key = this.#vary.keyOf(path, request);
    const object = this.store.lookup(key);
    if (object) {
      const now = this.#options.now();
      const state = stateOf(object, now);
      if (state === 'fresh') return this.#sendStored(request, response, object, 'HIT', note, now);
      if (state === 'revalidate') {
        if (!this.#coalescer.joinable(key)) this.#background(key, path, request.headers, object, blocking);
        return this.#sendStored(request, response, object, 'STALE', note, now);
      }
    }
    return this.#fill(request, response, path, key, object, note, blocking);
  }

  /** A miss or an expired object: one coalesced origin request, then the answer streamed from it. */
  async #fill(request: IncomingMessage, response: ServerResponse, path: string, key: string, object: CachedObject | undefined, note: RequestNote, blocking: boolean): Promise<Sent> {
    let fill = this.#coalescer.joinable(key);
    const joined = fill !== undefined;
    if (fill) fill.joined += 1;
    else fill = this.#startFill(key, path, request.headers, object, blocking);
    const result = await fill.result;
    if (result.kind === 'not-modified') {
      note.originStatus = 304;
      return this.#sendStored(request, response, result.object, joined ? 'COALESCED' : 'MISS', note);
    }
    if (result.kind === 'failure' || result.head.status >= 500) {
      if (object && servableOnError(object, this.#options.now())) return this.#sendStored(request, response, object, 'STALE', note);
      if (result.kind === 'failure') {
        this.counters.origin_errors += 1;
        return sendOriginFailure(response, result.failure);
      }
    }
    const { head } = result;
    note.originStatus = head.status;
    // A joiner must not get another client's private answer, one for other `Vary` values, or a pass-through already under way.
    if (joined && (!result.shareable || !head.body.joinable || variantKeyOf(path, result.vary, request.headers) !== result.key)) {
      return this.#pass(request, response, path, note);
    }
    if (joined) this.counters.coalesced += 1;
    else this.counters.misses += 1;
    note.cache = joined ? 'COALESCED' : 'MISS';
    return this.#sendHead(request, response, head, note.cache, note);
  }

  async #sendHead(request: IncomingMessage, response: ServerResponse, head: OriginHead, cache: CacheOutcome, note: RequestNote): Promise<Sent> {
    const headers = forwardedHeaders(head.headers);
    const ageSeconds = Math.floor(originAgeOf(head.headers) / 1000);
    if (note.rewrite && head.status === 200 && isPlaylist(request.url ?? '', head.headers['content-type'])) {
      // The links inside are signed for this client: the whole playlist is needed first (it is small).
      const complete = await head.done;
      if (!complete || !head.body.joinable) return sendText(response, 502, 'bad gateway: the playlist could not be read whole to sign its links');
      return sendSignedPlaylist(request, response, head.status, headers, head.body, cache, ageSeconds, note.rewrite);
    }
    const sendable: Sendable = {
      status: head.status,
      headers,
      body: head.body,
      cache,
      ageSeconds,
      validators: { etag: head.headers.etag, lastModified: head.headers['last-modified'] },
      length: head.body.declared,
    };
    try {
      return await sendObject(request, response, sendable);
    } finally {
      // Nobody left reading a body that is not being kept: stop fetching it.
      if (!head.storable && head.body.readers === 0 && head.body.state === 'open') head.abort();
    }
  }

  #sendStored(request: IncomingMessage, response: ServerResponse, object: CachedObject, cache: CacheOutcome, note: RequestNote, now = this.#options.now()): Sent | Promise<Sent> {
    note.cache = cache;
    if (cache === 'HIT') this.counters.hits += 1;
    else if (cache === 'STALE') this.counters.stale += 1;
    else if (cache === 'MISS') this.counters.misses += 1;
    else if (cache === 'COALESCED') this.counters.coalesced += 1;
    const ageSeconds = Math.floor(ageOf(object, now) / 1000);
    if (note.rewrite && object.status === 200 && isPlaylist(object.url, contentTypeOf(object.headers))) {
      return sendSignedPlaylist(request, response, object.status, object.headers, object.body, cache, ageSeconds, note.rewrite);
    }
    return sendObject(request, response, preparedAnswer(object, cache, ageSeconds));
  }

  /** A request that cannot share: its own origin request, nothing kept. */
  async #pass(request: IncomingMessage, response: ServerResponse, path: string, note: RequestNote): Promise<Sent> {
    note.cache = 'PASS';
    this.counters.origin_requests += 1;
    this.counters.misses += 1;
    const head = await fetchOrigin({ ...this.#fetchOptions(path, request.headers, false), maxObject: 0 });
    if (head.kind !== 'response') {
      this.counters.origin_errors += 1;
      return sendOriginFailure(response, head);
    }
    note.originStatus = head.status;
    return this.#sendHead(request, response, head, 'MISS', note);
  }

  #fetchOptions(path: string, requestHeaders: IncomingHttpHeaders, blocking: boolean) {
    return {
      origin: this.#options.origin,
      path,
      headers: originRequestHeaders(requestHeaders, this.#vary.namesOf(path)),
      timeoutMs: blocking ? Math.max(this.#options.originTimeoutMs, blockingTimeoutMs) : this.#options.originTimeoutMs,
      maxObject: this.#options.maxObject,
      agents: this.#agents,
    };
  }

  /** Starts the one origin request for `key`; `stale` (an expired object) is revalidated with its validators. */
  #startFill(key: string, path: string, requestHeaders: IncomingHttpHeaders, stale: CachedObject | undefined, blocking: boolean): Fill {
    this.counters.origin_requests += 1;
    const options = this.#options;
    return this.#coalescer.start(key, async (): Promise<FillResult> => {
      const fetchOptions = this.#fetchOptions(path, requestHeaders, blocking);
      if (stale?.etag !== undefined) fetchOptions.headers['if-none-match'] = stale.etag;
      if (stale?.lastModified !== undefined) fetchOptions.headers['if-modified-since'] = stale.lastModified;
      const head = await fetchOrigin(fetchOptions);
      if (head.kind !== 'response') return { kind: 'failure', failure: head };
      const now = options.now();
      if (head.status === 304 && stale) {
        this.#revalidated(key, stale, head, now);
        return { kind: 'not-modified', object: stale };
      }
      const pathname = path.split('?')[0];
      const freshness = freshnessOf({ status: head.status, headers: head.headers, path: pathname, now }, options);
      if (blocking && freshness.cacheable) freshness.ttl = Math.max(freshness.ttl, blockingTtlMs);
      const vary = varyNames(head.headers);
      const storedKey = variantKeyOf(path, vary, requestHeaders);
      // Errors are shared with the clients waiting at the same moment; private answers are not.
      const shareable = freshness.cacheable || freshness.reason?.startsWith('status') === true;
      if (freshness.cacheable) {
        void head.done.then((complete) => {
          if (!complete || !head.storable) return;
          this.#vary.remember(path, vary);
          if (storedKey !== key) this.store.delete(key);
          this.store.set(storedKey, storedObject(path, head, freshness, now));
        });
      }
      if (head.status === 200 && isPlaylist(pathname, head.headers['content-type'])) {
        void head.done.then((complete) => complete && this.#afterPlaylist(path, head));
      }
      return { kind: 'response', head, shareable, freshness, vary, key: storedKey };
    });
  }

  /** A 304 from the origin: the stale object is fresh again, with the origin's updated headers. */
  #revalidated(key: string, object: CachedObject, head: OriginHead, now: number): void {
    const merged = takeRevalidatedHeaders(object, head.headers);
    object.freshness = freshnessOf({ status: object.status, headers: merged, path: object.url.split('?')[0], now }, this.#options);
    object.storedAt = now;
    object.originAge = originAgeOf(head.headers);
    object.stale = false;
    if (this.store.peek(key) !== object) this.store.set(key, object);
  }

  /** A fetch no client waits for (a refresh, a prefetch): its failure only leaves the cache as it was. */
  #background(key: string, path: string, headers: IncomingHttpHeaders, stale: CachedObject | undefined, blocking: boolean): void {
    const fill = this.#startFill(key, path, headers, stale, blocking);
    void fill.result.then((result) => {
      // Nobody reads it: the body still arrives into the store, which is the point.
      if (result.kind === 'response' && !result.head.storable) result.head.abort();
    });
  }

  /** A playlist arrived whole: start its preload-hinted part and prefetch its new segments. */
  #afterPlaylist(path: string, head: OriginHead): void {
    const text = Buffer.concat(head.body.chunks).toString('utf8');
    const present = (target: string): boolean => {
      const key = this.#vary.keyOf(target, noHeaders);
      return this.store.peek(key) !== undefined || this.#coalescer.joinable(key) !== undefined;
    };
    const wanted = this.#prefetcher.next(path, text, present);
    const hint = playlistLinks(text, path).preloadHint;
    if (hint !== undefined && !present(hint)) wanted.push(hint);
    for (const target of wanted) {
      if (targetProblem(target) !== undefined) continue;
      this.counters.prefetches += 1;
      this.#background(this.#vary.keyOf(target, noHeaders), target, noHeaders.headers, undefined, false);
    }
  }
}
