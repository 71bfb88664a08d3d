import { hostname } from 'node:os';
import { Observable } from 'rxjs';
import { defineOperator, duration, redactUrl, retryDelay, sleep, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { connectRedis, isReplyError, untilAborted, type Redis } from '../../native/redis/client.ts';
import { entryRecord } from './redis/entries.ts';

/** How long one XREADGROUP waits for new entries; also bounds how long a drain waits for the last read. */
const blockMs = 1_000;

/** One entry as XREADGROUP and XAUTOCLAIM return it; the fields are null when the entry was deleted. */
type Entry = [id: string, fields: string[] | null];

const settings = z.object({
  url: z.string().min(1).default('redis://127.0.0.1:6379').meta({ description: 'The Redis server, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); put the password in `${env:...}`.', examples: ['redis://127.0.0.1:6379', 'redis://:${env:REDIS_PASSWORD}@cache.internal:6379/0'] }),
  stream: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).meta({ description: 'The stream key to read, or a list of them.', examples: ['webhooks', ['orders', 'payments']] }),
  group: z.string().min(1).meta({ description: 'The consumer group; created (with the stream, MKSTREAM) when missing.', examples: ['streams'] }),
  consumer: z.string().min(1).optional().meta({ description: 'This consumer\'s name in the group; keep it stable across restarts so a restart re-reads its own pending entries. Defaults to `<hostname>-<node>`; give each running instance its own.', examples: ['ingest-1'] }),
  from: z.enum(['earliest', 'latest']).default('latest').meta({ description: 'Where a new group starts: `earliest` (the whole stream) or `latest` (entries added from now on). An existing group keeps its position.' }),
  format: z.enum(['fields', 'json']).default('fields').meta({ description: '`fields`: each entry\'s fields become the record\'s fields (values are strings); `json`: the record is the JSON object held in the entry field named by `field`.' }),
  field: z.string().min(1).default('data').meta({ description: 'With `format: json`, the entry field holding the JSON object.', examples: ['payload'] }),
  id_field: z.union([z.string().min(1), z.literal(false)]).default('_id').meta({ description: 'The record field that receives the entry id (`1718000000000-0`); `false` for none.', examples: ['entry_id'] }),
  stream_field: z.union([z.string().min(1), z.literal(false)]).default('_stream').meta({ description: 'The record field that receives the stream key; `false` for none.', examples: ['source'] }),
  batch_size: z.number().int().min(1).max(10_000).default(500).meta({ description: 'Entries read at a time (XREADGROUP COUNT), per stream.', examples: [1000] }),
  claim_idle: duration().prefault('1m').meta({ description: 'Entries pending in the group for longer than this (their consumer died, or never acknowledged) are claimed by this consumer (XAUTOCLAIM) and delivered again; checked this often. Must exceed the longest time a record takes to reach every sink.', examples: ['30s'] }),
});

type Settings = z.infer<typeof settings>;

/**
 * Entry ids delivered downstream and not yet acknowledged, per consumer
 * (server, group, consumer name) and stream, shared by the incarnations of a
 * node in one engine (`ctx.shared`): a successor after a reload must not
 * deliver again, from the group's pending list, what its predecessor still
 * has in flight.
 */
type InFlightByConsumer = Map<string, Map<string, Set<string>>>;

/**
 * `redis.stream`: a consumer in a Redis Streams consumer group, acknowledging
 * (XACK) each entry only once every sink downstream has finished with it.
 */
export default defineOperator({
  name: 'redis.stream',
  summary: 'Read a Redis stream as a consumer group member, acknowledging after the sinks.',
  doc: 'Reads new entries of `stream` (one key or several) with XREADGROUP as `consumer` in `group`, creating the group (and the stream, MKSTREAM) when it is missing, from the start of the stream (`from: earliest`) or from now (`latest`). An entry is acknowledged (XACK) only after every sink downstream has finished with the batch it travelled in, so delivery is at least once: when the process is killed, the entries it had read but not finished stay pending in the group. On start the consumer first re-reads its own pending entries (XREADGROUP from id 0), so a restart with the same `consumer` name loses nothing; and every `claim_idle` it claims entries that have been pending longer than that in any consumer of the group (XAUTOCLAIM), so the work of a consumer that died is taken over (an entry may then be delivered twice). Each entry becomes one event: its fields as a map (`format: fields`, values as strings), or the JSON object in the field named by `field` (`format: json`; an entry whose field is missing or not a JSON object goes to the dead-letter port), with the entry id and the stream key in `id_field` and `stream_field`. Reading stops while downstream is full (no XREADGROUP is issued), and while the server is unreachable, which is logged as an error naming the node and the URL (password redacted) and retried with backoff; a group that vanished (a server restarted without persistence) is created again.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'One event per stream entry, with its id and stream key.' } },
  settings,
  example: { url: 'redis://127.0.0.1:6379', stream: 'webhooks', group: 'streams', from: 'earliest' },
  create(ctx) {
    const s: Settings = ctx.settings;
    const streams = [...new Set(typeof s.stream === 'string' ? [s.stream] : s.stream)];
    const consumer = s.consumer ?? `${hostname()}-${ctx.node}`;
    const where = redactUrl(s.url);
    const inFlightByConsumer = ctx.shared('redis.stream.in-flight', (): InFlightByConsumer => new Map());
    return function redisStreamNode() {
      return new Observable<Batch>((subscriber) => {
        const { signal } = ctx;
        // Blocking reads get their own connection so acknowledgements never queue behind them.
        // Both open when `run` starts; everything that uses them runs after that.
        let reader: Redis | undefined;
        let commands: Redis | undefined;
        let disposed = false;
        const consumerKey = `${s.url}\n${s.group}\n${consumer}`;
        /** Ids delivered downstream and not yet acknowledged, per stream: never emitted twice at once. */
        const inFlight = inFlightByConsumer.get(consumerKey) ?? new Map<string, Set<string>>();
        inFlightByConsumer.set(consumerKey, inFlight);
        for (const stream of streams) if (!inFlight.has(stream)) inFlight.set(stream, new Set());
        /** This incarnation's share of `inFlight`, forgotten if it is forced to stop (no acknowledgement will come). */
        const mine = new Map(streams.map((stream) => [stream, new Set<string>()]));
        let openBatches = 0;
        let completed = false;
        let closing = false;
        let cancelCloseTimer: (() => void) | undefined;

        const closeWhenIdle = (): void => {
          if (!closing || openBatches > 0) return;
          cancelCloseTimer?.();
          const client = commands;
          client?.quit().catch(() => client.disconnect());
        };

        const acknowledge = (stream: string, ids: string[]): void => {
          commands!.xack(stream, s.group, ...ids).catch((error: Error) => {
            // Still pending in the group: the next start (or a claim) delivers them again.
            ctx.log.warn({ stream, entries: ids.length, error: error.message }, `${ctx.label}: XACK failed; the entries stay pending and will be delivered again`);
          });
        };

        const emitEntries = (stream: string, entries: Entry[]): void => {
          const tracked = inFlight.get(stream)!;
          const deleted: string[] = [];
          const fresh: [string, string[]][] = [];
          for (const [id, fields] of entries) {
            if (tracked.has(id)) continue;
            if (fields === null) deleted.push(id);
            else fresh.push([id, fields]);
          }
          if (deleted.length > 0) {
            // Pending entries trimmed from the stream: nothing left to deliver.
            ctx.metrics.dropped(deleted.length, 'deleted');
            acknowledge(stream, deleted);
          }
          if (fresh.length === 0) return;
          const ids = fresh.map(([id]) => id);
          const own = mine.get(stream)!;
          for (const id of ids) {
            tracked.add(id);
            own.add(id);
          }
          openBatches += 1;
          const ack = ctx.newAck(function entriesAcknowledged() {
            for (const id of ids) {
              tracked.delete(id);
              own.delete(id);
            }
            acknowledge(stream, ids);
            openBatches -= 1;
            closeWhenIdle();
          });
          const items: EventRecord[] = [];
          let bytes = 0;
          for (const [id, fields] of fresh) {
            for (const field of fields) bytes += Buffer.byteLength(field);
            let record: EventRecord;
            try {
              record = entryRecord(fields, s.format, s.field);
            } catch (error) {
              ctx.fail({ id, stream, fields: entryRecord(fields, 'fields', s.field) }, error, ack);
              continue;
            }
            if (s.id_field !== false) record[s.id_field] = id;
            if (s.stream_field !== false) record[s.stream_field] = stream;
            items.push(record);
          }
          ctx.metrics.bytes(bytes);
          if (items.length > 0) subscriber.next({ items, ack });
          else ack.release();
        };

        const emitReply = (reply: unknown): number => {
          let count = 0;
          for (const [stream, entries] of (reply ?? []) as [string, Entry[]][]) {
            if (!mine.has(stream) || entries.length === 0) continue;
            count += entries.length;
            emitEntries(stream, entries);
          }
          return count;
        };

        /** Waits while downstream is full; false once the node is stopping. */
        const mayRead = async (): Promise<boolean> => {
          const wait = ctx.ready();
          if (wait) await wait;
          return !signal.aborted;
        };

        const ensureGroups = async (): Promise<void> => {
          for (const stream of streams) {
            try {
              await untilAborted(commands!.xgroup('CREATE', stream, s.group, s.from === 'earliest' ? '0' : '$', 'MKSTREAM'), signal);
            } catch (error) {
              if (!(isReplyError(error) && error.message.startsWith('BUSYGROUP'))) throw error;
            }
          }
        };

        /** This consumer's entries left pending by its previous run, oldest first. */
        const readOwnPending = async (): Promise<void> => {
          const after = streams.map(() => '0');
          while (await mayRead()) {
            const reply = (await untilAborted(reader!.xreadgroup('GROUP', s.group, consumer, 'COUNT', s.batch_size, 'STREAMS', ...streams, ...after), signal)) as [string, Entry[]][] | null;
            let more = false;
            for (const [stream, entries] of reply ?? []) {
              if (entries.length === 0) continue;
              more = true;
              after[streams.indexOf(stream)] = entries[entries.length - 1][0];
            }
            const count = emitReply(reply);
            if (count > 0) ctx.log.info({ entries: count, consumer }, `${ctx.label}: re-reading entries left pending by a previous run`);
            if (!more) return;
          }
        };

        /** Entries pending in the group for longer than `claim_idle`, whoever held them. */
        const claimIdle = async (): Promise<void> => {
          for (const stream of streams) {
            let cursor = '0-0';
            do {
              if (!(await mayRead())) return;
              const [next, entries] = (await untilAborted(commands!.xautoclaim(stream, s.group, consumer, s.claim_idle, cursor, 'COUNT', s.batch_size), signal)) as [string, Entry[]];
              const claimed = entries.filter(([id]) => !inFlight.get(stream)!.has(id)).length;
              if (claimed > 0) ctx.log.info({ stream, entries: claimed, idleMs: s.claim_idle }, `${ctx.label}: claimed entries pending too long in the group`);
              emitEntries(stream, entries);
              cursor = next;
            } while (cursor !== '0-0');
          }
        };

        const run = async (): Promise<void> => {
          const retryDelayMs = retryDelay;
          [reader, commands] = await Promise.all([
            connectRedis(ctx, { url: s.url, purpose: 'read', retryDelayMs }),
            connectRedis(ctx, { url: s.url, purpose: 'ack', retryDelayMs }),
          ]);
          if (disposed) {
            reader.disconnect();
            commands.disconnect();
            return;
          }
          let groupsReady = false;
          let pendingRead = false;
          let nextClaim = 0;
          let failures = 0;
          while (!signal.aborted) {
            try {
              if (!groupsReady) {
                await ensureGroups();
                groupsReady = true;
              }
              if (!pendingRead) {
                await readOwnPending();
                pendingRead = true;
              }
              // On the runtime's clock: the claim's cadence (not the entries' idleness, which the server judges).
              if (ctx.now() >= nextClaim) {
                await claimIdle();
                nextClaim = ctx.now() + s.claim_idle;
              }
              if (!(await mayRead())) break;
              // While connected, a read in progress at a drain is waited for (it ends within BLOCK) and its entries delivered.
              const grace = reader!.status === 'ready' ? blockMs + 1_000 : 0;
              const reply = await untilAborted(reader!.xreadgroup('GROUP', s.group, consumer, 'COUNT', s.batch_size, 'BLOCK', blockMs, 'STREAMS', ...streams, ...streams.map(() => '>')), signal, grace);
              emitReply(reply);
              failures = 0;
            } catch (error) {
              if (signal.aborted) break;
              if (isReplyError(error) && error.message.startsWith('NOGROUP')) {
                ctx.log.warn({ url: where, group: s.group }, `${ctx.label}: consumer group \`${s.group}\` is gone (the server restarted without persistence?); creating it again`);
                groupsReady = false;
                continue;
              }
              failures += 1;
              const delay = retryDelay(failures);
              ctx.log.error({ url: where, error: (error as Error).message, retryInMs: delay }, `${ctx.label}: reading from ${where} failed: ${(error as Error).message}; retrying in ${delay} ms`);
              await sleep(delay, signal, ctx);
            }
          }
        };

        run().then(
          () => {
            completed = true;
            subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        );

        return function closeRedisStream() {
          disposed = true;
          reader?.disconnect();
          if (completed) {
            // A drain: batches still in flight will be acknowledged; keep the connection for their XACKs.
            closing = true;
            cancelCloseTimer = ctx.schedule(60_000, () => commands?.disconnect(), { keepsProcessAlive: false });
            closeWhenIdle();
          } else {
            // Forced or failed: acknowledge nothing more; pending entries are re-read by the next run.
            commands?.disconnect();
            for (const [stream, ids] of mine) for (const id of ids) inFlight.get(stream)!.delete(id);
          }
          if ([...inFlight.values()].every((ids) => ids.size === 0)) inFlightByConsumer.delete(consumerKey);
        };
      });
    };
  },
});
