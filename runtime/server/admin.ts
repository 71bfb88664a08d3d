/**
 * The admin server of a running graph: the visualiser's page, its live feed
 * (`/api/live`, a WebSocket), the JSON API (graph, stats, reloads, taps,
 * reload) and health checks. `streams run --ui` starts it; `streams worker`
 * and the CDN's management API add their routes to it (`route`).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientLogger } from '../../native/client-owner.ts';
import { closeServer, listenOn, type ListenAddress } from '../../native/http/listen.ts';
import { createWebServer, type TlsFiles } from '../../native/http/server.ts';
import { rejectUpgrade } from '../../native/http/upgrade.ts';
import { SendWindow, type ClientQueueLimits } from '../../native/http/client-queue.ts';
import { createWebSocketServer, socketOpen, type WebSocket, type WebSocketServer } from '../../native/http/websocket.ts';
import type { LiveFeed } from './live-feed.ts';
import type { LiveEvent, ReloadRecord } from './protocol.ts';
import { TapError, type Taps } from './taps.ts';
import { BodyTooLarge, authorized, liveSubprotocol, readBody, sendError, sendJson } from './http-kit.ts';
import { servePageAsset } from './page-assets.ts';

/** A handler of extra routes; answers true when it took the request. */
export type RouteHandler = (request: IncomingMessage, response: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface AdminOptions {
  listen: ListenAddress;
  /** The bearer token every `/api/` call and the WebSocket must present; none on loopback-only servers that want none. */
  token?: string;
  feed: LiveFeed;
  taps: Taps;
  /** Checks and applies a new pipeline text, as `--watch` does; records the result in the feed. */
  reload?: (text: string) => Promise<ReloadRecord>;
  /** Largest `POST /api/reload` body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** What may wait for one WebSocket client before it is dropped. */
  clientLimits?: ClientQueueLimits;
  /** What names the server in errors (`--ui`). */
  label?: string;
  /** Serve HTTPS from these PEM files (`--ui-tls-cert`, `--ui-tls-key`), reloaded when they change. */
  tls?: TlsFiles;
  /** Where TLS reloads and refused renewals are logged; silent unless given. */
  log?: ClientLogger;
}

/** A started admin server. */
export interface AdminServer {
  /** The bound address (its real port when 0 was asked for). */
  address: ListenAddress;
  /** Clients of `/api/live` now. */
  readonly clients: number;
  /** Clients dropped because they read too slowly. */
  readonly droppedClients: number;
  /** Adds routes under `/api/`, tried after the token check and before the built-in ones (a worker's control endpoint, a CDN's purge). */
  route(handler: RouteHandler): void;
  close(): Promise<void>;
}

const defaultLimits: ClientQueueLimits = { messages: 256, bytes: 4 * 1024 * 1024 };

interface Client {
  socket: WebSocket;
  window: SendWindow;
}

const silent: ClientLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Sent as a text frame (the page reads JSON text), though given as bytes; compression stays off (`ws`'s default for servers). */
const textFrame = { binary: false } as const;

/** A message of the feed: its events as a JSON array, in UTF-8. */
function encodeEvents(events: readonly LiveEvent[]): Buffer {
  return Buffer.from(JSON.stringify(events));
}

/** Starts the admin server; rejects with a located message when it cannot listen or read its TLS files. */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const { feed, taps, token } = options;
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const limits = options.clientLimits ?? defaultLimits;
  const routes: RouteHandler[] = [];
  const clients = new Set<Client>();
  const followers = new Set<ServerResponse>();
  let droppedClients = 0;

  async function api(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/api/graph') return sendJson(response, 200, feed.plan);
    if (method === 'GET' && path === '/api/stats') return sendJson(response, 200, feed.stats());
    if (method === 'GET' && path === '/api/reloads') return sendJson(response, 200, { reloads: feed.reloads });
    if (method === 'GET' && path.startsWith('/api/tap/')) return tap(response, url);
    if (path === '/api/reload') {
      if (method !== 'POST') return sendError(response, 405, 'method_not_allowed', 'POST a pipeline (YAML) to /api/reload');
      return reload(request, response);
    }
    sendError(response, 404, 'not_found', `no endpoint ${method} ${path}`);
  }

  async function tap(response: ServerResponse, url: URL): Promise<void> {
    const [node, port] = url.pathname.slice('/api/tap/'.length).split('/').map(decodeURIComponent);
    const n = Math.min(Math.max(Number(url.searchParams.get('n') ?? 50) || 50, 1), 200);
    const wait = Math.min(Math.max(Number(url.searchParams.get('wait_ms') ?? 1000) || 0, 0), 10_000);
    if (url.searchParams.has('follow')) return follow(response, node, port || undefined);
    try {
      const records = await taps.read(node, port || undefined, n, wait);
      sendJson(response, 200, { node, port: port || undefined, records });
    } catch (error) {
      if (error instanceof TapError) return sendError(response, 404, error.code, error.message);
      throw error;
    }
  }

  /**
   * Streams the port's sampled records as JSON lines until the client goes
   * (`streams tap`). A client that does not keep up loses records, never
   * the server's memory: lines are skipped while its socket holds too much.
   */
  function follow(response: ServerResponse, node: string, port: string | undefined): void {
    let stop: () => void;
    try {
      stop = taps.follow(node, port, function writeRecord(record) {
        if (response.writableLength > limits.bytes) return;
        response.write(`${JSON.stringify(record)}\n`);
      });
    } catch (error) {
      if (error instanceof TapError) return sendError(response, 404, error.code, error.message);
      throw error;
    }
    response.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    response.flushHeaders();
    followers.add(response);
    response.on('close', () => {
      followers.delete(response);
      stop();
    });
  }

  async function reload(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!options.reload) return sendError(response, 501, 'reload_unavailable', 'this server cannot reload the graph');
    let text: string;
    try {
      text = await readBody(request, maxBody);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        response.setHeader('connection', 'close');
        return sendError(response, 413, error.code, error.message);
      }
      throw error;
    }
    const result = await options.reload(text);
    if (result.status === 'applied') return sendJson(response, 200, result);
    sendJson(response, result.status === 'rejected' ? 422 : 409, result);
  }

  const owner = { node: 'ui', label: options.label ?? '`--ui`', log: options.log ?? silent };
  const tlsNames = { cert: '--ui-tls-cert', key: '--ui-tls-key' };
  const server: Server = createWebServer({ owner, tls: options.tls, settingNames: tlsNames }, function adminRequest(request, response) {
    const url = new URL(request.url ?? '/', 'http://admin');
    const handle = async (): Promise<void> => {
      if (url.pathname === '/healthz') return sendJson(response, 200, { status: 'ok' });
      if (url.pathname === '/readyz') return readiness(response);
      if (url.pathname.startsWith('/api/')) {
        if (!authorized(request, token)) {
          response.setHeader('www-authenticate', 'Bearer');
          return sendError(response, 401, 'unauthorized', 'this endpoint needs `Authorization: Bearer TOKEN` (the --ui-token)');
        }
        // Added routes (a CDN's purge, a worker's control) live under /api/ too, behind the same token.
        for (const handler of routes) if (await handler(request, response, url)) return;
        return api(request, response, url);
      }
      if (request.method === 'GET' && servePageAsset(url.pathname, response)) return;
      sendError(response, 404, 'not_found', `no page ${url.pathname}`);
    };
    handle().catch((error: unknown) => {
      // A bug, not a user mistake: logged by the caller's process, answered without a stack.
      if (!response.headersSent) sendError(response, 500, 'internal', error instanceof Error ? error.message : String(error));
      else response.destroy();
    });
  });

  function readiness(response: ServerResponse): void {
    const waiting = feed.stats().states.filter((s) => s.state !== 'running' && s.state !== 'stopped');
    if (waiting.length === 0) sendJson(response, 200, { status: 'ready' });
    else sendJson(response, 503, { status: 'not_ready', nodes: waiting.map((s) => ({ node: s.node, state: s.state })) });
  }

  const wss: WebSocketServer = await createWebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (protocols) => (protocols.has(liveSubprotocol) ? liveSubprotocol : false),
  });

  server.on('upgrade', function liveUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(request.url ?? '/', 'http://admin');
    if (url.pathname !== '/api/live') return rejectUpgrade(socket, 404);
    if (!authorized(request, token)) return rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer' });
    wss.handleUpgrade(request, socket, head, (ws) => join(ws));
  });

  function join(socket: WebSocket): void {
    const client: Client = { socket, window: new SendWindow(limits, () => socket.bufferedAmount) };
    clients.add(client);
    socket.on('close', () => clients.delete(client));
    socket.on('error', () => socket.terminate());
    // The page sends nothing yet; a message is ignored rather than answered.
    deliver(client, encodeEvents(feed.snapshot()));
  }

  /**
   * Sends one encoded message. Given a string, `ws` would measure and
   * encode it to UTF-8 again for every client; a buffer is written as it
   * is, so a broadcast costs each client only its frame header and a write.
   */
  function deliver(client: Client, message: Buffer): void {
    if (client.socket.readyState !== socketOpen) return;
    if (!client.window.fits(message.length)) {
      // A client that stops reading is dropped; the others go on.
      droppedClients += 1;
      clients.delete(client);
      client.socket.terminate();
      return;
    }
    client.socket.send(message, textFrame, client.window.track());
  }

  // Events of one sample go out as one message: a JSON array, serialised and encoded once for every client.
  let pending: LiveEvent[] = [];
  const unsubscribe = feed.subscribe(function queueEvent(event) {
    if (clients.size === 0) return;
    if (pending.length === 0) queueMicrotask(flush);
    pending.push(event);
  });
  function flush(): void {
    const message = encodeEvents(pending);
    pending = [];
    for (const client of clients) deliver(client, message);
  }

  const address = await listenOn(server, options.listen, options.label ?? '`--ui`', { setting: options.label ?? '--ui' });
  return {
    address,
    get clients() {
      return clients.size;
    },
    get droppedClients() {
      return droppedClients;
    },
    route(handler) {
      routes.push(handler);
    },
    async close() {
      unsubscribe();
      for (const client of clients) client.socket.terminate();
      clients.clear();
      for (const response of followers) response.destroy();
      wss.close();
      await closeServer(server, 1000);
    },
  };
}
