/**
 * An RTMP listener for publishers (OBS, ffmpeg): the handshake, chunk
 * stream and AMF commands come from node-media-server 4.4.3's protocol
 * class (`src/protocol/rtmp.js`, pinned; these are its internals, wrapped
 * here and nowhere else); the sockets, the decisions and the lifecycle are
 * ours.
 *
 * Only the protocol class is used, one instance per connection, never
 * node-media-server's `NodeMediaServer`, `NodeRtmpServer`, `BroadcastServer`
 * or its `Context`: those keep streams and sessions in a module-global map,
 * open HTTP and API servers, and end a publish only in `donePublish`, 30 s
 * after the publisher left. Each `RtmpServer` here owns its own sockets and
 * publishes, so several can run in one process on different ports. The one
 * process-wide thing left is node-media-server's logger (a module
 * singleton): while any server runs, its lines go to the servers' loggers
 * at debug level instead of stdout.
 */
import { createRequire } from 'node:module';
import { createServer, type Server, type Socket } from 'node:net';
import type { ClientOwner } from '../client-owner.ts';
import { formatAddress, listenOn, type ListenAddress } from '../http/listen.ts';
import type { FlvTag } from '../../media/flv.ts';

/** A publish a client asks for: `rtmp://host/APP/KEY`. */
export interface RtmpPublish {
  /** Unique within the server, for `disconnect`. */
  readonly id: number;
  readonly app: string;
  /** The stream key: a secret; never log it unless accepted as a stream's name. */
  readonly key: string;
  /** `address:port` of the publisher. */
  readonly remote: string;
}

/** Why a publish ended: `closed` (the socket went), `unpublished` (FCUnpublish / deleteStream), `disconnected` (our `disconnect` or `close`), `protocol_error` (bytes that are not RTMP mid-publish), `idle` (nothing received for `idleTimeoutMs`). */
export type RtmpEndReason = 'closed' | 'unpublished' | 'disconnected' | 'protocol_error' | 'idle';

/** Why a connection was dropped without a publish. */
export type RtmpRejection = 'bad_handshake' | 'protocol_error' | 'timeout' | 'play_refused' | 'refused' | 'too_many_connections';

/** What the server tells its owner; every callback is synchronous and must not throw. */
export interface RtmpServerHandlers {
  /** A client asks to publish: return undefined to accept, or the reason for refusing (the connection is then closed at once). */
  publish(attempt: RtmpPublish): string | undefined;
  /** An audio or video tag of an accepted publish; the body is a copy the receiver owns. */
  tag(publish: RtmpPublish, tag: FlvTag): void;
  /** An accepted publish ended (see `RtmpEndReason`); called once per publish, at once, with no grace period. */
  end(publish: RtmpPublish, reason: RtmpEndReason, detail?: string): void;
  /** A connection dropped before or instead of publishing. `detail` never holds a stream key. */
  rejected(info: { remote: string; reason: RtmpRejection; detail: string }): void;
}

/** Options of `RtmpServer.listen`. */
export interface RtmpServerOptions {
  owner: ClientOwner;
  handlers: RtmpServerHandlers;
  /** A connection that has not started publishing within this many ms is closed (10 s by default). */
  publishTimeoutMs?: number;
  /** Connections that have not published yet, at most; more are closed at once (`too_many_connections`). 64 by default. */
  maxPendingConnections?: number;
  /** A publish that sends nothing for this many ms is ended (`idle`): a peer whose TCP connection died silently can take minutes to be noticed otherwise. 5 s by default. */
  idleTimeoutMs?: number;
}

// node-media-server is CommonJS; its protocol class has no types of its own.
interface NmsChunkPacket {
  header: { type: number; length: number; stream_id: number };
  clock: number;
  payload: Buffer;
  /** Bytes allocated for `payload`; a message that fits reuses it. */
  capacity: number;
}
interface NmsRtmp {
  parserPacket: NmsChunkPacket;
  inPackets: Map<number, NmsChunkPacket>;
  streamApp?: string;
  onOutputCallback: (buffer: Buffer) => void;
  onConnectCallback: (request: unknown) => void;
  onPushCallback: () => void;
  onPlayCallback: () => void;
  onPacketCallback: (packet: unknown) => void;
  parserData(buffer: Buffer): string | null;
  invokeHandler(): void;
  dataHandler(): void;
  packetAlloc(): void;
  onPublish(message: { streamName: string }): void;
}
interface NmsModules {
  Rtmp: new () => NmsRtmp;
  decodeAmf0Cmd: (payload: Buffer) => { cmd: string };
  logger: { log(message: string, level?: string): void };
}

const require = createRequire(import.meta.url);
let modules: NmsModules | undefined;
const logSinks = new Set<(level: string, message: string) => void>();

function nms(): NmsModules {
  if (modules) return modules;
  const logger = require('node-media-server/src/core/logger.js') as NmsModules['logger'];
  // The logger is a module singleton writing to stdout: route it to whichever servers run (the lines never hold keys: NMS logs command names only).
  logger.log = (message: string, level = 'info') => {
    for (const sink of logSinks) sink(level, String(message));
  };
  modules = {
    Rtmp: require('node-media-server/src/protocol/rtmp.js') as NmsModules['Rtmp'],
    decodeAmf0Cmd: (require('node-media-server/src/protocol/amf.js') as { decodeAmf0Cmd: NmsModules['decodeAmf0Cmd'] }).decodeAmf0Cmd,
    logger,
  };
  return modules;
}

const RTMP_VERSION = 3;
const RTMP_TYPE_AUDIO = 8;
const RTMP_TYPE_VIDEO = 9;
const RTMP_TYPE_FLEX_MESSAGE = 17;
/**
 * Bounds on what a client's chunk headers make the protocol allocate (each
 * new chunk stream gets a buffer of its declared message length): commands
 * before a publish are small; a video frame after it may be large.
 */
const MAX_COMMAND_BYTES = 64 * 1024;
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const MAX_CHUNK_STREAMS = 64;
/**
 * Bounds on the sum of those buffers over all chunk streams of one
 * connection: without them, 64 chunk streams each declaring a message just
 * under the limit hold 64 times it (4 MB from a few hundred bytes before
 * any authentication).
 */
const MAX_CONNECTION_BYTES_BEFORE_PUBLISH = 1024 * 1024;
const MAX_CONNECTION_BYTES = 16 * 1024 * 1024;
/** What node-media-server adds to each buffer it allocates (`packetAlloc`). */
const NMS_ALLOC_SLACK = 1024;

/** An RTMP server accepting publishes; see the module comment. */
export class RtmpServer {
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #sink: (level: string, message: string) => void;
  #address: ListenAddress | undefined;

  private constructor(options: RtmpServerOptions) {
    const { Rtmp, decodeAmf0Cmd } = nms();
    let nextId = 1;
    const maxPending = options.maxPendingConnections ?? 64;
    this.#server = createServer({ noDelay: true }, (socket) => {
      let pending = 0;
      for (const open of this.#connections) if (!open.publish) pending++;
      if (pending >= maxPending) {
        // Before a publish nothing is authenticated: a flood of idle connections must not hold memory and descriptors.
        socket.on('error', () => {});
        socket.destroy();
        options.handlers.rejected({ remote: `${socket.remoteAddress}:${socket.remotePort}`, reason: 'too_many_connections', detail: `${maxPending} connections have not published yet` });
        return;
      }
      const connection = new Connection(socket, nextId++, new Rtmp(), decodeAmf0Cmd, options, () => this.#connections.delete(connection));
      this.#connections.add(connection);
    });
    this.#sink = (level, message) => options.owner.log.debug({ nms_level: level }, `${options.owner.label}: node-media-server: ${message}`);
  }

  /** Starts listening; rejects with a located `NativeError` (`address_in_use`, ...) when it cannot. */
  static async listen(address: ListenAddress, options: RtmpServerOptions): Promise<RtmpServer> {
    const rtmp = new RtmpServer(options);
    rtmp.#address = await listenOn(rtmp.#server, address, options.owner.label);
    logSinks.add(rtmp.#sink);
    return rtmp;
  }

  /** The bound address (its real port when 0 was asked for). */
  get address(): ListenAddress {
    return this.#address!;
  }

  /** Ends a publish from our side (`end` is called with `disconnected`). */
  disconnect(publishId: number): void {
    for (const connection of this.#connections) if (connection.publish?.id === publishId) connection.close('disconnected');
  }

  /** How long, in ms, the publish has sent nothing; undefined when it is not live here. */
  silentMs(publishId: number): number | undefined {
    for (const connection of this.#connections) if (connection.publish?.id === publishId) return Date.now() - connection.lastDataAt;
    return undefined;
  }

  /** Stops listening and closes every connection (each live publish gets its `end`). */
  close(): Promise<void> {
    for (const connection of [...this.#connections]) connection.close('disconnected');
    logSinks.delete(this.#sink);
    return new Promise((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
  }

  /** The listening address as text, for logs. */
  toString(): string {
    return this.#address ? formatAddress(this.#address) : 'not listening';
  }
}

/** One TCP connection: the protocol state, and the publish once accepted. */
class Connection {
  publish: RtmpPublish | undefined;
  /** When the socket last gave bytes (`Date.now()`). */
  lastDataAt = Date.now();
  readonly #socket: Socket;
  readonly #remote: string;
  readonly #handlers: RtmpServerHandlers;
  #ended = false;
  #sawVersion = false;
  readonly #timer: NodeJS.Timeout;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, id: number, rtmp: NmsRtmp, decode: NmsModules['decodeAmf0Cmd'], options: RtmpServerOptions, forget: () => void) {
    this.#socket = socket;
    this.#remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#handlers = options.handlers;
    this.#timer = setTimeout(() => this.#reject('timeout', `no publish within ${options.publishTimeoutMs ?? 10_000} ms`), options.publishTimeoutMs ?? 10_000);
    this.#timer.unref();

    rtmp.onOutputCallback = (buffer) => {
      if (!socket.destroyed) socket.write(buffer);
    };
    rtmp.onConnectCallback = () => {};
    rtmp.onPushCallback = () => {};
    rtmp.onPacketCallback = () => {};
    rtmp.onPlayCallback = () => this.#reject('play_refused', 'playback is not offered: this server only ingests');
    const respondPublish = rtmp.onPublish.bind(rtmp);
    // Decide before node-media-server answers `NetStream.Publish.Start`.
    rtmp.onPublish = (message) => {
      if (this.publish || this.#ended) return this.#reject('protocol_error', 'a second publish on one connection');
      const key = String(message.streamName ?? '').split('?')[0]!;
      const attempt: RtmpPublish = { id, app: String(rtmp.streamApp ?? ''), key, remote: this.#remote };
      const refusal = this.#handlers.publish(attempt);
      if (refusal !== undefined) return this.#reject('refused', refusal);
      clearTimeout(this.#timer);
      this.publish = attempt;
      this.#watchIdle(options.idleTimeoutMs ?? 5000);
      respondPublish(message);
    };
    const alloc = rtmp.packetAlloc.bind(rtmp);
    rtmp.packetAlloc = () => {
      const length = rtmp.parserPacket.header.length;
      const limit = this.publish ? MAX_MESSAGE_BYTES : MAX_COMMAND_BYTES;
      // Thrown inside parserData, caught below: the connection is dropped as a protocol error.
      if (length > limit) throw new Error(`an RTMP message of ${length} bytes is over the limit of ${limit}`);
      if (rtmp.inPackets.size > MAX_CHUNK_STREAMS) throw new Error(`more than ${MAX_CHUNK_STREAMS} RTMP chunk streams`);
      const current = rtmp.parserPacket as NmsChunkPacket & { capacity: number };
      if (current.capacity < length) {
        let held = length + NMS_ALLOC_SLACK;
        // Audio and video messages get buffers of their own (capacity 0, below): count what they hold.
        for (const packet of rtmp.inPackets.values()) if (packet !== current) held += Math.max(packet.capacity, packet.payload?.length ?? 0);
        const total = this.publish ? MAX_CONNECTION_BYTES : MAX_CONNECTION_BYTES_BEFORE_PUBLISH;
        if (held > total) throw new Error(`RTMP messages in progress would hold ${held} bytes, over the limit of ${total} for a connection`);
      }
      if (this.publish && (current.header.type === RTMP_TYPE_AUDIO || current.header.type === RTMP_TYPE_VIDEO)) {
        // A buffer of its own for each audio and video message, handed downstream as it is (no copy per packet).
        // Capacity 0: the protocol must not reuse it for the next message; it allocates afresh.
        current.payload = Buffer.allocUnsafe(length);
        current.capacity = 0;
        return;
      }
      alloc();
    };
    const invoke = rtmp.invokeHandler.bind(rtmp);
    rtmp.invokeHandler = () => {
      const packet = rtmp.parserPacket;
      const offset = packet.header.type === RTMP_TYPE_FLEX_MESSAGE ? 1 : 0;
      const command = decode(packet.payload.subarray(offset, packet.header.length)).cmd;
      if (command === 'FCUnpublish' || command === 'deleteStream') {
        if (this.publish) this.close('unpublished');
        return;
      }
      invoke();
    };
    rtmp.dataHandler = () => {
      const packet = rtmp.parserPacket;
      const type = packet.header.type;
      if (!this.publish || this.#ended || (type !== RTMP_TYPE_AUDIO && type !== RTMP_TYPE_VIDEO)) return;
      // Audio and video payloads were allocated for this message alone (packetAlloc above): no copy needed.
      this.#handlers.tag(this.publish, { type, timestamp: packet.clock, body: packet.payload.subarray(0, packet.header.length) });
    };

    socket.on('data', (data: Buffer) => {
      if (this.#ended) return;
      this.lastDataAt = Date.now();
      if (!this.#sawVersion) {
        this.#sawVersion = true;
        // C0 is the version byte; anything else is not an RTMP client (encrypted RTMPE included).
        if (data[0] !== RTMP_VERSION) return this.#reject('bad_handshake', `not an RTMP handshake (first byte 0x${(data[0] ?? 0).toString(16).padStart(2, '0')})`);
      }
      let problem: string | null;
      try {
        problem = rtmp.parserData(data);
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      if (problem !== null && !this.#ended) this.#reject('protocol_error', problem);
    });
    socket.on('error', () => {
      // A reset by the peer: 'close' follows and ends the publish.
    });
    socket.on('close', () => {
      clearTimeout(this.#timer);
      forget();
      this.close('closed');
    });
  }

  /** Ends the publish when nothing arrives for `idleMs`; one timer, re-armed for the time left rather than on every read. */
  #watchIdle(idleMs: number): void {
    const check = (): void => {
      const silent = Date.now() - this.lastDataAt;
      if (silent >= idleMs) return this.close('idle', `nothing received for ${silent} ms`);
      this.#idleTimer = setTimeout(check, idleMs - silent);
      this.#idleTimer.unref();
    };
    this.#idleTimer = setTimeout(check, idleMs);
    this.#idleTimer.unref();
  }

  /** Ends the publish (once) and the socket. */
  close(reason: RtmpEndReason, detail?: string): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    if (!this.#ended) {
      this.#ended = true;
      if (this.publish) this.#handlers.end(this.publish, reason, detail);
    }
    if (reason === 'closed') return;
    this.#socket.end();
    // A peer that does not answer the FIN must not keep the socket open.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  #reject(reason: RtmpRejection, detail: string): void {
    if (this.#ended) return;
    if (this.publish) {
      this.close('protocol_error', detail);
      return;
    }
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#handlers.rejected({ remote: this.#remote, reason, detail });
    this.#socket.destroy();
  }
}
