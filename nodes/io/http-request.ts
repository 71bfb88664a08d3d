import { backoffDelay, compileExpression, defineOperator, duration, expression, perBatchAsync, reasonOf, redactUrl, retryAfterMs, size, sleep, toPlain, z, type Batch, type CompiledExpression, type EventRecord, type TraceCarrier } from '../../runtime/api.ts';
import { isBytesItem } from './web/payload.ts';

const methods = ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'] as const;

/** How much of a failed response's body a dead letter quotes. */
const excerptChars = 200;

/** One request: the records it carries and where it goes. */
interface Call {
  url: string;
  records: unknown[];
}

/** What came of a request, after its retries. */
type Outcome =
  | { ok: true; status: number; headers: Record<string, string>; body: unknown }
  | { ok: false; reason: string };

/** The response to a request, as emitted. */
export interface HttpResponseRecord {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** The record sent, or the records of a batched request. */
  record: unknown;
}

export default defineOperator({
  name: 'http.request',
  summary: 'Send records to an HTTP endpoint, with batching, retries and a concurrency limit.',
  doc: 'Sends each input record to `url` (or to the URL that `url_expr` computes from it) with `method`: an event as a JSON body, a Bytes item as its raw bytes. With `batch: N`, N records go in one request as a JSON array (Bytes items joined by newlines). Up to `concurrency` requests of one input batch are in flight at once. A 2xx answer acknowledges the records; a network error, a timeout (`timeout`) or a status in `retry_on` (429, 502, 503, 504 by default) is tried again up to `retries` times with exponential backoff from `retry_delay` to `retry_max`, honouring `Retry-After` (up to `retry_max`); any other status, or retries run out, sends the records to the dead-letter port with the status and the start of the body. The next input batch is taken only once the current one is settled, so a slow or failing endpoint holds records in the input channel and backpressure reaches the sources. Each response is emitted as `{status, headers, body, record}` (`record` is the array of records for a batched request; `body` is text, or parsed with `response: json`); when nothing reads the output, responses are dropped. `headers` values may use `${env:NAME}` for credentials; headers are never logged and passwords and tokens in URLs are hidden in logs and dead letters.',
  inputs: { in: { type: 'Any', doc: 'Records to send: events as JSON, Bytes as their bytes.' } },
  outputs: { out: { type: 'Event<{status: number, headers: map, record: any}>', doc: 'One response per successful request: `status`, `headers`, `body`, and the `record` (or records) sent.', optional: true } },
  settings: z
    .object({
      url: z.string().regex(/^https?:\/\//, 'must start with `http://` or `https://`').optional().meta({ description: 'The endpoint.', examples: ['https://api.example.com/v1/events'] }),
      url_expr: expression().optional().meta({ description: 'A CEL expression computing the URL from each event, instead of `url`.', examples: ['"https://api.example.com/devices/" + device'] }),
      method: z.enum(methods).default('POST').meta({ description: 'The HTTP method.' }),
      headers: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}).meta({ description: 'Request headers; values may use `${env:NAME}`.', examples: [{ Authorization: 'Bearer ${env:API_TOKEN}' }] }),
      batch: z.number().int().min(1).max(10_000).default(1).meta({ description: 'Records per request; above 1 they are sent as a JSON array.', examples: [100] }),
      concurrency: z.number().int().min(1).max(256).default(4).meta({ description: 'Requests in flight at once.', examples: [16] }),
      timeout: duration().prefault('30s').meta({ description: 'How long one attempt may take before it counts as a network error.', examples: ['5s'] }),
      retries: z.number().int().min(0).default(5).meta({ description: 'Attempts after the first, for network errors and statuses in `retry_on`.', examples: [10] }),
      retry_on: z.array(z.number().int().min(100).max(599)).default([429, 502, 503, 504]).meta({ description: 'Statuses tried again.', examples: [[408, 429, 500, 502, 503, 504]] }),
      retry_delay: duration().prefault('200ms').meta({ description: 'The wait before the first retry; it doubles at each one.', examples: ['1s'] }),
      retry_max: duration().prefault('10s').meta({ description: 'The longest wait between attempts, `Retry-After` included.', examples: ['1m'] }),
      response: z.enum(['text', 'json']).default('text').meta({ description: 'How the response body is emitted: `text`, or `json` (parsed; a body that is not JSON stays text).' }),
      max_response: size().prefault('1MiB').meta({ description: 'The most of a response body kept; the rest is discarded.', examples: ['64KiB'] }),
    })
    .refine((settings) => (settings.url === undefined) !== (settings.url_expr === undefined), { message: 'set exactly one of `url` and `url_expr`' }),
  example: { url: 'http://127.0.0.1:9000/ingest', batch: 50, headers: { Authorization: 'Bearer ${env:API_TOKEN}' } },
  paced: true,
  create(ctx) {
    const settings = ctx.settings;
    const urlExpr: CompiledExpression | undefined = settings.url_expr === undefined ? undefined : compileExpression(settings.url_expr);
    const retryOn = new Set(settings.retry_on);

    function urlOf(record: unknown): string {
      if (!urlExpr) return settings.url!;
      if (isBytesItem(record) || record === null || typeof record !== 'object') throw new TypeError('`url_expr` needs an event');
      const url = toPlain(urlExpr(record as EventRecord));
      if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new TypeError(`\`url_expr\` gave ${JSON.stringify(url)}, not an http(s) URL`);
      return url;
    }

    function bodyOf(records: unknown[]): { body: string | Buffer; type: string } {
      if (records.every(isBytesItem)) {
        if (records.length === 1) return { body: records[0].data ?? records[0].text ?? '', type: 'application/octet-stream' };
        return { body: Buffer.concat(records.flatMap((r) => [r.data ?? Buffer.from(r.text ?? ''), Buffer.from('\n')])), type: 'application/x-ndjson' };
      }
      const plain = records.map((r) => (isBytesItem(r) ? (r.text ?? r.data?.toString('utf8')) : r));
      return { body: JSON.stringify(settings.batch === 1 ? plain[0] : plain), type: 'application/json' };
    }

    /** Groups records by URL, in order, and cuts each group into requests of `batch` records. */
    function callsOf(items: unknown[], failed: (item: unknown, error: unknown) => void): Call[] {
      const byUrl = new Map<string, unknown[]>();
      for (const item of items) {
        let url: string;
        try {
          url = urlOf(item);
        } catch (error) {
          failed(item, error);
          continue;
        }
        let group = byUrl.get(url);
        if (!group) byUrl.set(url, (group = []));
        group.push(item);
      }
      const calls: Call[] = [];
      for (const [url, records] of byUrl) {
        for (let i = 0; i < records.length; i += settings.batch) calls.push({ url, records: records.slice(i, i + settings.batch) });
      }
      return calls;
    }

    async function attempt(call: Call, carrier: TraceCarrier | undefined): Promise<{ response?: Response; text?: string; error?: unknown }> {
      const { body, type } = bodyOf(call.records);
      const { url, authorization } = withoutCredentials(call.url);
      const headers: Record<string, string> = { 'Content-Type': type, ...(authorization ? { Authorization: authorization } : {}), ...settings.headers, ...carrier };
      try {
        const hasBody = settings.method !== 'GET';
        const response = await fetch(url, {
          method: settings.method,
          headers,
          body: hasBody ? body : undefined,
          signal: AbortSignal.timeout(settings.timeout),
        });
        if (hasBody) ctx.metrics.bytes(typeof body === 'string' ? Buffer.byteLength(body) : body.length, 'written');
        return { response, text: await readLimited(response, settings.max_response, (count) => ctx.metrics.bytes(count, 'read')) };
      } catch (error) {
        return { error };
      }
    }

    /** One call with its retries, under a CLIENT span when the batch is sampled (its `traceparent` sent with each attempt). */
    async function send(call: Call, trace: Batch['trace']): Promise<Outcome> {
      const span = ctx.tracing.start(trace, settings.method, 'client', { 'http.request.method': settings.method, 'url.full': redactUrl(call.url).split('?')[0] });
      const outcome = await sendWithRetries(call, span?.headers());
      if (outcome.ok) span?.set('http.response.status_code', outcome.status);
      span?.end(outcome.ok ? undefined : new Error(outcome.reason));
      return outcome;
    }

    async function sendWithRetries(call: Call, carrier: TraceCarrier | undefined): Promise<Outcome> {
      const shown = redactUrl(call.url);
      for (let tries = 0; ; tries++) {
        const { response, text, error } = await attempt(call, carrier);
        if (response && response.ok) {
          let body: unknown = text;
          if (settings.response === 'json') {
            try {
              body = JSON.parse(text ?? '');
            } catch {
              // Documented: a body that is not JSON stays text; the request itself succeeded.
              body = text;
            }
          }
          return { ok: true, status: response.status, headers: Object.fromEntries(response.headers), body };
        }
        const reason = response
          ? `${settings.method} ${shown} answered ${response.status} ${response.statusText}${text ? `: ${excerpt(text)}` : ''}`
          : `${settings.method} ${shown} failed: ${networkReason(error).split(call.url).join(shown)}`;
        // A request that cannot be made (a malformed URL or header) fails the same way every time.
        const retryable = response ? retryOn.has(response.status) : isTransient(error);
        if (!retryable) return { ok: false, reason };
        if (tries >= settings.retries) return { ok: false, reason: `${reason} (after ${tries + 1} attempts)` };
        let delay = backoffDelay(tries, settings.retry_delay, settings.retry_max);
        const asked = retryAfterMs(response?.headers.get('retry-after'), ctx.now());
        if (asked !== undefined) delay = Math.min(settings.retry_max, Math.max(delay, asked));
        ctx.log.debug({ url: shown, status: response?.status, error: response ? undefined : networkReason(error).split(call.url).join(shown), retryInMs: delay, attempt: tries + 1 }, 'request failed; retrying');
        await sleep(delay, undefined, ctx);
      }
    }

    return perBatchAsync<unknown, HttpResponseRecord>(ctx, async function sendBatch(items, batch) {
      const calls = callsOf(items, (item, error) => ctx.fail(item, error, batch.ack));
      const outcomes = new Array<Outcome>(calls.length);
      let next = 0;
      // `concurrency` workers take the calls in order; each result lands in its own slot.
      async function worker(): Promise<void> {
        while (next < calls.length) {
          const index = next++;
          outcomes[index] = await send(calls[index], batch.trace);
        }
      }
      await Promise.all(Array.from({ length: Math.min(settings.concurrency, calls.length) }, worker));
      const out: HttpResponseRecord[] = [];
      calls.forEach((call, index) => {
        const outcome = outcomes[index];
        if (outcome.ok) {
          out.push({ status: outcome.status, headers: outcome.headers, body: outcome.body, record: settings.batch === 1 ? call.records[0] : call.records });
        } else {
          for (const record of call.records) ctx.fail(record, new Error(outcome.reason), batch.ack);
        }
      });
      return out;
    });
  },
});

/** A response body as text, reading no more than `limit` bytes of it. */
/**
 * Reads a response body up to `limit` bytes and stops reading there.
 * `counted` learns how many bytes came off the network (those past the
 * limit in the last chunk included), even when reading fails half-way.
 */
async function readLimited(response: Response, limit: number, counted: (bytes: number) => void): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      read += value.length;
      const room = limit - total;
      chunks.push(value.length > room ? value.subarray(0, room) : value);
      total += Math.min(value.length, room);
      if (total >= limit) {
        await reader.cancel();
        break;
      }
    }
  } finally {
    if (read > 0) counted(read);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function excerpt(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > excerptChars ? `${line.slice(0, excerptChars)}...` : line;
}

/**
 * `fetch` refuses URLs with credentials: `https://user:pass@host/` becomes
 * the URL without them and a Basic `Authorization` header.
 */
export function withoutCredentials(text: string): { url: string; authorization?: string } {
  const url = new URL(text);
  if (!url.username && !url.password) return { url: text };
  const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  url.username = '';
  url.password = '';
  return { url: url.toString(), authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** Whether a failed fetch may succeed if tried again: timeouts and network errors (undici gives those a `cause`). */
function isTransient(error: unknown): boolean {
  if (error instanceof Error && error.name === 'TimeoutError') return true;
  return (error as { cause?: unknown } | undefined)?.cause instanceof Error;
}

/** The cause of a failed fetch: undici hides it under `cause`. */
function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code ?? reasonOf(cause);
  return reasonOf(error);
}
