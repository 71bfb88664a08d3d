import { Observable } from 'rxjs';
import { defineOperator, duration, perBatchAsync, redactUrl, retryDelay, sleep, z, type Batch, type EventRecord, type NodeContext } from '../../runtime/api.ts';
import { PurgeBusError, type PurgeBusOptions } from './purge/bus.ts';
import { busOptions, oneBus, purgeBusShape } from './purge/bus-setting.ts';
import { purgeSelectorOf, type PurgeSelector } from './purge/command.ts';
import { openPurgeSender, type PurgeReport, type PurgeSender } from './purge/send.ts';

const settings = z
  .object({
    ...purgeBusShape,
    timeout: duration().prefault('5s').meta({ description: 'How long each purge waits for the edges\' acknowledgements.', examples: ['2s'] }),
    soft: z.boolean().default(false).meta({ description: 'Whether purges mark objects stale (revalidate on the next request) rather than remove them, for records without a `soft` field.' }),
  })
  .superRefine(oneBus);

type Settings = z.infer<typeof settings>;

/** What the node emits per purge: the record's selector and the report. */
type PurgeResult = EventRecord & Omit<PurgeReport, 'stale'> & PurgeSelector & { complete: boolean };

/**
 * `cdn.purge`: a pipeline's records become purges on every edge (a window
 * of CMS events emits `{tag: "article-42"}`, the stream drives the caches).
 */
export default defineOperator({
  name: 'cdn.purge',
  summary: 'Purge URLs, prefixes or tags from every edge cache, one purge per record.',
  doc: 'Sends each record as a purge on the purge bus (Redis pub/sub with `redis`, Kafka with `brokers`; the same channel the edges\' caches listen on, and the same protocol as `streams purge`) and waits up to `timeout` for every registered edge to acknowledge it. A record names what to purge with exactly one string field `url`, `prefix` or `tag` (the origin\'s `Surrogate-Key`/`Cache-Tag`), and may carry `soft: true` to mark the objects stale instead of removing them (default: the `soft` setting). The node emits one report per purge: the selector, `complete` (every registered edge applied it), `applied` (edge, objects removed, ms to its ack), `failed`, `missing` (registered edges that did not answer) and `registered`; a purge some edge missed is also logged as a warning naming the edges. Records are purged one after the other, in order. A record without exactly one selector goes to the dead-letter port. While the bus cannot be reached the batch waits (backpressure holds upstream), each failure logged as an error naming the node and the server (password redacted) and retried with backoff; a purge is then sent again, which the edges apply once (they remember command ids).',
  inputs: { in: { type: 'Event', doc: 'Records with one of `url`, `prefix`, `tag`, and optionally `soft`.' } },
  outputs: { out: { type: 'Event<{kind: string, value: string, soft: bool, complete: bool, id: string, applied: list, failed: list, missing: list, registered: number}>', doc: 'One report per purge: the selector, `complete`, `applied`, `failed`, `missing`, `registered`.', optional: true } },
  settings,
  paced: true,
  example: { redis: 'redis://127.0.0.1:6379', channel: 'streams:cdn:purge', timeout: '2s' },
  create(ctx) {
    return function cdnPurgeNode(input) {
      return new Observable<Batch>((subscriber) => {
        const session = new PurgeSession(ctx);
        const subscription = perBatchAsync<EventRecord, PurgeResult>(ctx, (items, batch) => session.purge(items, batch))(input).subscribe(subscriber);
        return function stopCdnPurge() {
          subscription.unsubscribe();
          session.close();
        };
      });
    };
  },
});

/** One run of a `cdn.purge` node: a sender kept open, opened again after a failure. */
class PurgeSession {
  readonly #ctx: NodeContext<Settings>;
  readonly #bus: PurgeBusOptions;
  readonly #where: string;
  #sender: Promise<PurgeSender> | undefined;
  #closed = false;

  constructor(ctx: NodeContext<Settings>) {
    this.#ctx = ctx;
    const s = ctx.settings;
    this.#bus = busOptions(s);
    this.#where = s.redis !== undefined ? redactUrl(s.redis) : (s.brokers ?? []).join(',');
  }

  /** Purges each record in order; a record that names no selector is dead-lettered. */
  async purge(items: EventRecord[], batch: Batch): Promise<PurgeResult[]> {
    const out: PurgeResult[] = [];
    for (const record of items) {
      const selector = purgeSelectorOf(record, this.#ctx.settings.soft);
      if (typeof selector === 'string') {
        this.#ctx.fail(record, new Error(selector), batch.ack);
        continue;
      }
      const { stale: _stale, ...report } = await this.#send(selector);
      const complete = report.missing.length === 0 && report.failed.length === 0 && (report.registered > 0 || report.applied.length > 0);
      if (!complete) {
        const missed = [...report.missing, ...report.failed.map((f) => f.edge)];
        this.#ctx.log.warn({ id: report.id, selector, missing: report.missing, failed: report.failed }, `${this.#ctx.label}: purge ${selector.kind} ${selector.value} ${missed.length > 0 ? `not applied by ${missed.join(', ')}` : 'reached no edge (none is registered)'}`);
      }
      out.push({ ...selector, complete, ...report });
    }
    return out;
  }

  /** Sends one purge, retrying with backoff while the bus cannot be reached. */
  async #send(selector: PurgeSelector): Promise<PurgeReport> {
    const ctx = this.#ctx;
    for (let attempt = 1; ; attempt++) {
      try {
        this.#sender ??= openPurgeSender(this.#bus, ctx.log);
        return await (await this.#sender).send(selector, ctx.settings.timeout);
      } catch (error) {
        if (!(error instanceof PurgeBusError) || error.code !== 'bus_unreachable') throw error;
        const failed = this.#sender;
        this.#sender = undefined;
        void failed?.then((sender) => sender.close(), () => undefined);
        if (this.#closed || ctx.signal.aborted) throw error;
        const delay = retryDelay(attempt);
        ctx.log.error({ bus: this.#where, error: error.message, retryInMs: delay }, `${ctx.label}: cannot send purges through ${this.#where}: ${error.message}; retrying in ${delay} ms`);
        await sleep(delay, ctx.signal, ctx);
      }
    }
  }

  close(): void {
    this.#closed = true;
    void this.#sender?.then((sender) => sender.close(), () => undefined);
  }
}
