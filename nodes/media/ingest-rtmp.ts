import type { Subscriber } from 'rxjs';
import { defineOperator, reasonOf, z, type Batch, type NodeContext } from '../../runtime/api.ts';
import { safeEqual } from '../../native/http/auth.ts';
import { formatAddress } from '../../native/http/listen.ts';
import { RtmpServer, type RtmpEndReason, type RtmpPublish } from '../../native/rtmp/server.ts';
import { FlvTagDecoder, type FlvTag } from '../../media/flv.ts';
import type { MediaEnd, MediaItem } from '../../media/packet.ts';
import { listenSetting, secretSetting } from '../io/web/settings.ts';
import { sessionSource, type SourceSession } from '../messaging/source-session.ts';
import { LIVE_STATS_TYPE, LiveStreams, type LiveStream } from './live/live-streams.ts';
import { clientTextForLog, isSafeStreamKey, keyForLog, SAFE_STREAM_KEY, SAFE_STREAM_KEY_RULE } from '../../media/stream-key.ts';

const settings = z.object({
  listen: listenSetting(1935),
  app: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, { error: 'an RTMP application name is letters, digits, `_` and `-`' })
    .default('live')
    .meta({ description: 'The application publishers name in the URL: `rtmp://HOST:PORT/APP/KEY`. Publishes to another application are refused.', examples: ['live'] }),
  keys: z
    .array(
      z.union([
        secretSetting(),
        z
          .object({
            name: z.string().regex(SAFE_STREAM_KEY, { error: `a stream name is ${SAFE_STREAM_KEY_RULE}` }).meta({ description: 'The stream\'s name downstream (packets, stats, URLs).' }),
            key: secretSetting().meta({ description: 'The secret stream key publishers use; it never leaves the node.' }),
          })
          .strict(),
      ]),
    )
    .min(1)
    .optional()
    .meta({
      description: 'The stream keys accepted, usually `${env:NAME}`. A plain key names its stream by the key itself (logs then show only its first four characters); `{name, key}` names the stream `name`, and the secret key never leaves the node. Absent: any key is accepted (a warning at start).',
      examples: [['${env:STREAM_KEY}'], [{ name: 'alice', key: '${env:ALICE_KEY}' }]],
    }),
  max_streams: z.number().int().min(1).default(100).meta({ description: 'Publishes live at once; more are refused.', examples: [10] }),
  timeout: z.number().int().min(500).max(60_000).default(5000).meta({ description: 'Milliseconds without data after which a publish counts as ended (its TCP connection may have died silently).', examples: [5000] }),
});

/** A live publisher silent for longer than this (ms) may be replaced by a new publish with the same key: its connection has most likely died. */
const TAKEOVER_SILENCE_MS = 1000;

type IngestSettings = z.output<typeof settings>;

/** One accepted key, and the stream it publishes when named (else the stream is named by the key). */
interface AcceptedKey {
  key: string;
  name: string | undefined;
}

function acceptedKeys(keys: IngestSettings['keys']): AcceptedKey[] | undefined {
  return keys?.map((entry) => (typeof entry === 'string' ? { key: entry, name: undefined } : { key: entry.key, name: entry.name }));
}



/**
 * `ingest.rtmp`: an RTMP server in the engine; each accepted publish is a
 * stream of `Media` packets named by its key.
 */
export default defineOperator({
  name: 'ingest.rtmp',
  summary: 'Receive live RTMP publishes (OBS, ffmpeg) as media packets.',
  doc: 'Listens on `listen` for RTMP publishers (`rtmp://HOST:PORT/APP/KEY`, as OBS and ffmpeg send) and emits each publish as a stream named by its key (or by the `name` given with the key in `keys`: the secret key then never leaves the node), with `rendition: source`: H.264 video and AAC audio packets with `pts`/`dts` in milliseconds (timescale 1000), keyframe flags, the track\'s decoder configuration (avcC, AudioSpecificConfig), codec string, size and frame rate, and `arrival`. A stream key holds only letters, digits, `_`, `-` and `.`, starts with a letter or digit, and has at most 128 characters (the names `serve.http` accepts in URLs). A publish to another `app`, with a key not in `keys` or not of those characters, past `max_streams`, or on a key already live whose publisher is still sending is refused at once: the connection is closed, the refusal counted as dropped (`refused`) and logged without the key; logs show only a stream key\'s first four characters. The end of a publish (the publisher leaves, unpublishes, its connection drops, or it sends nothing for `timeout` ms) emits a `MediaEnd` at once. A new publish with a valid key whose live publisher has sent nothing for over a second replaces it (an encoder reconnecting after its connection died silently, as OBS does); a second publisher while the first still sends is refused. A publisher that comes back with the same key continues the same stream, its first packet marked `discontinuity`. Other codecs (HEVC, MP3) are skipped with a warning. Bytes that are not RTMP close the connection with a log line; the node goes on. Memory a client can make the node hold is bounded: 1 MB of messages in progress per connection before it publishes, 16 MB after; at most 64 connections may wait to publish at once, more are closed at once (counted as dropped, `too_many_connections`). A live source cannot wait: while downstream is full the node drops whole GOPs (every packet up to the next keyframe that finds room), counted as dropped (`downstream_full`). The `stats` port gives, once a second for each live stream, its bitrate and frame rate per media second, keyframe interval, drops and publishes (the schema `ingest.srt` uses). Built on node-media-server 4.4.3\'s RTMP protocol code (its HTTP and API servers are not started).',
  inputs: {},
  outputs: {
    out: { type: 'Media<*/*>', doc: 'Packets of every stream (`video/h264`, `audio/aac`), and a `MediaEnd` when a publish ends.' },
    stats: { type: LIVE_STATS_TYPE, doc: 'Once a second per live stream (as `ingest.srt`): bits per media second (video and audio), video frames per media second, seconds between keyframes, packets dropped, publishes so far.', optional: true },
  },
  settings,
  requires: ['listen'],
  example: { listen: '127.0.0.1:1935', app: 'live', keys: ['${env:STREAM_KEY}', { name: 'alice', key: '${env:ALICE_KEY}' }] },
  create(ctx) {
    return sessionSource(ctx, (out) => new IngestSession(ctx, out));
  },
});

/** One run of an `ingest.rtmp` node: the server, its publishes, and their packets on their way out. */
class IngestSession implements SourceSession {
  readonly #ctx: NodeContext<IngestSettings>;
  readonly #out: Subscriber<Batch>;
  readonly #streams = new LiveStreams();
  /** Each accepted publish's stream and decoder. */
  readonly #publishes = new Map<number, { stream: LiveStream; shown: string; decoder: FlvTagDecoder; skipped: Set<string> }>();
  #keys: AcceptedKey[] | undefined;
  #server: RtmpServer | undefined;
  #pending: MediaItem[] = [];
  #flushQueued = false;
  #stopping = false;
  #cancelStats: (() => void) | undefined;
  #floodLoggedAt = -Infinity;

  constructor(ctx: NodeContext<IngestSettings>, out: Subscriber<Batch>) {
    this.#ctx = ctx;
    this.#out = out;
    this.#keys = acceptedKeys(ctx.settings.keys);
  }

  async start(): Promise<void> {
    const ctx = this.#ctx;
    const server = await RtmpServer.listen(ctx.settings.listen, {
      owner: ctx,
      idleTimeoutMs: ctx.settings.timeout,
      handlers: {
        publish: (attempt) => this.#decide(attempt),
        tag: (publish, tag) => this.#tag(publish, tag),
        end: (publish, reason, detail) => this.#end(publish, reason, detail),
        rejected: ({ remote, reason, detail }) => {
          ctx.metrics.dropped(1, reason === 'refused' || reason === 'too_many_connections' ? reason : 'bad_connection');
          // A flood of connections must not flood the log too: one line per second at most for it.
          if (reason === 'too_many_connections') {
            const now = ctx.now();
            if (now - this.#floodLoggedAt < 1000) return;
            this.#floodLoggedAt = now;
          }
          ctx.log.warn({ remote, reason }, `${ctx.label}: dropped an RTMP connection from ${remote}: ${clientTextForLog(detail, 200)}`);
        },
      },
    });
    if (this.#stopping) {
      void server.close();
      return;
    }
    this.#server = server;
    const where = formatAddress(server.address);
    ctx.log.info({ listen: where, app: ctx.settings.app }, `${ctx.label}: RTMP ingest listening on rtmp://${where}/${ctx.settings.app}/`);
    // Keys usually come from the environment, so their characters are checked here rather than in the file.
    this.#keys?.forEach(({ key, name }, index) => {
      if (name === undefined && !isSafeStreamKey(key)) ctx.log.warn({ index }, `${ctx.label}: \`keys\` entry ${index + 1} is not ${SAFE_STREAM_KEY_RULE}: publishes with it will be refused`);
    });
    if (!ctx.settings.keys) ctx.log.warn({}, `${ctx.label}: no \`keys\`: any stream key is accepted; set \`keys\` (e.g. \`\${env:STREAM_KEY}\`) to restrict publishing`);
    const tick = (): void => {
      this.#stats();
      this.#cancelStats = ctx.schedule(1000, tick);
    };
    this.#cancelStats = ctx.schedule(1000, tick);
  }

  drain(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#cancelStats?.();
    const server = this.#server;
    // Closing ends every live publish, which queues its MediaEnd: flush them, then complete.
    const closed = server ? server.close() : Promise.resolve();
    void closed.then(() => {
      this.#flush();
      this.#out.complete();
    });
  }

  close(): void {
    this.#stopping = true;
    this.#cancelStats?.();
    void this.#server?.close();
  }

  /** Undefined to accept the publish, or why it is refused (the reason never holds the key). */
  #decide(attempt: RtmpPublish): string | undefined {
    const { settings } = this.#ctx;
    if (this.#stopping) return 'the node is stopping';
    if (attempt.app !== settings.app) return `unknown application \`${clientTextForLog(attempt.app)}\` (publish to \`${settings.app}\`)`;
    if (!attempt.key) return 'no stream key';
    let accepted: AcceptedKey = { key: attempt.key, name: undefined };
    if (this.#keys) {
      const match = this.#keys.find(({ key }) => safeEqual(attempt.key, key));
      if (!match) return isSafeStreamKey(attempt.key) ? 'wrong stream key' : `wrong stream key (a stream key is ${SAFE_STREAM_KEY_RULE})`;
      accepted = match;
    }
    const name = accepted.name ?? accepted.key;
    const shown = accepted.name ?? keyForLog(accepted.key);
    // Streams become URL paths and file names downstream: nothing that could climb out of a folder.
    if (!isSafeStreamKey(name)) return `a stream key must be ${SAFE_STREAM_KEY_RULE}`;
    if (this.#streams.get(name)?.live && !this.#takeOver(name, shown, attempt.remote)) return `stream ${shown} is already live (a second publisher on its key)`;
    if (this.#publishes.size >= settings.max_streams) return `\`max_streams\` (${settings.max_streams}) publishes are live`;
    const stream = this.#streams.begin(name);
    this.#publishes.set(attempt.id, { stream, shown, decoder: new FlvTagDecoder(name), skipped: new Set() });
    this.#ctx.log.info({ remote: attempt.remote, stream: shown, reconnect: stream.discontinuity }, `${this.#ctx.label}: publish of stream ${shown} started from ${attempt.remote}`);
    return undefined;
  }

  /**
   * Whether the live publish of `attempt`'s key has been silent long enough
   * to be replaced: a publisher whose connection died silently reconnects
   * (OBS does) before the idle timeout notices; a second publisher while the
   * first still sends is refused.
   */
  #takeOver(name: string, shown: string, remote: string): boolean {
    for (const [id, entry] of this.#publishes) {
      if (entry.stream.name !== name) continue;
      const silent = this.#server?.silentMs(id);
      if (silent === undefined || silent <= TAKEOVER_SILENCE_MS) return false;
      this.#ctx.log.info({ stream: shown, silent_ms: silent }, `${this.#ctx.label}: stream ${shown}: a new publish from ${remote} replaces the one silent for ${silent} ms`);
      // Ends the old publish at once (its MediaEnd is queued), so the new one continues the stream with a discontinuity.
      this.#server?.disconnect(id);
      return true;
    }
    return false;
  }

  #tag(publish: RtmpPublish, tag: FlvTag): void {
    const entry = this.#publishes.get(publish.id);
    if (!entry) return;
    const ctx = this.#ctx;
    ctx.metrics.bytes(tag.body.length);
    let result;
    try {
      result = entry.decoder.decode(tag);
    } catch (error) {
      ctx.log.warn({ stream: entry.shown }, `${ctx.label}: stream ${entry.shown}: ${reasonOf(error)}; disconnecting the publisher`);
      this.#server?.disconnect(publish.id);
      return;
    }
    if (result.kind === 'skip') {
      if (result.reason !== 'end of sequence' && result.reason !== 'script data' && !entry.skipped.has(result.reason)) {
        entry.skipped.add(result.reason);
        ctx.log.warn({ stream: entry.shown }, `${ctx.label}: stream ${entry.shown}: ${result.reason}; skipped`);
      }
      return;
    }
    if (result.kind === 'config') return;
    const packet = result.packet;
    packet.arrival = ctx.now();
    if (!entry.stream.admit(packet, ctx.ready() !== undefined)) {
      ctx.metrics.dropped(1, 'downstream_full');
      return;
    }
    this.#queue(packet);
  }

  #end(publish: RtmpPublish, reason: RtmpEndReason, detail: string | undefined): void {
    const entry = this.#publishes.get(publish.id);
    if (!entry) return;
    this.#publishes.delete(publish.id);
    this.#streams.end(entry.stream, this.#ctx.now());
    const end: MediaEnd = { stream: entry.stream.name, end: true };
    this.#queue(end);
    this.#ctx.log.info({ stream: entry.shown, reason }, `${this.#ctx.label}: publish of stream ${entry.shown} ended (${reason}${detail ? `: ${clientTextForLog(detail, 200)}` : ''})`);
  }

  /**
   * Packets of every socket read in one turn of the event loop travel as one
   * batch, flushed right after the loop's I/O phase: with many publishers
   * each read holds about one packet, and a batch per read would cost the
   * runtime's per-batch work for every packet.
   */
  #queue(item: MediaItem): void {
    this.#pending.push(item);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#pending.length === 0 || this.#out.closed) return;
    const items = this.#pending;
    this.#pending = [];
    this.#out.next({ items, ack: this.#ctx.newAck() });
  }

  #stats(): void {
    const live = this.#streams.live();
    if (live.length === 0) return;
    this.#ctx.emit('stats', { items: live.map((stream) => stream.takeStats(1)), ack: this.#ctx.newAck() });
  }
}
