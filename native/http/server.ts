/**
 * The one way the engine makes an HTTP/1.1 server (the web operators, the
 * origin, the edge cache, the admin server): plain HTTP, or HTTPS from a
 * certificate and key file that are watched and swapped in when they change
 * (a renewal by certbot, lego, acme.sh or cert-manager) without a restart
 * and without dropping a connection. WebSocket upgrades work on both.
 */
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { ClientOwner } from '../client-owner.ts';
import { CertificateWatch, loadCertificate, type TlsFiles, type TlsSettingNames } from './certificate-watch.ts';

export type { TlsFiles, TlsSettingNames } from './certificate-watch.ts';

/** How a server is made. */
export interface WebServerOptions {
  /** Who runs the server: named in TLS errors and reload warnings, and its logger. */
  owner: ClientOwner;
  /** PEM files (absolute paths, or relative to the current directory): with them the server speaks HTTPS. */
  tls?: TlsFiles;
  /** How messages name the files' settings: `tls.cert`, `tls.key`, `tls.ca` unless told (the admin server says `--ui-tls-cert`). */
  settingNames?: TlsSettingNames;
  /** Quiet time after the last change in the files' folders before they are read again, ms; 200 unless told. */
  reloadDelayMs?: number;
  /**
   * The handler never reads a request body (a GET/HEAD server such as the
   * edge cache). A request that declares none (no `Content-Length`, no
   * `Transfer-Encoding`) then skips the body stream's life (its `end` and
   * `close` events, the resume that drains it), which is most of Node's
   * own work on an idle request; watch the response, not the request, for
   * a client going away. Node's `optimizeEmptyRequests` (24.x).
   */
  ignoresRequestBodies?: boolean;
}

/**
 * Makes an HTTP/1.1 server calling `handler` for each request; with
 * `options.tls`, an HTTPS one (an `https.Server`, which is an
 * `http.Server` to every caller: `upgrade` events, `closeAllConnections`,
 * timeouts). The certificate and key are read now, so a file that cannot
 * be read, or a key that does not match its certificate, throws a
 * `NativeError` (`tls_file`, `tls_pair`) naming the owner and the path,
 * cured only by the settings. Afterwards the files' folders are watched:
 * a new valid pair serves new connections within `reloadDelayMs` (open
 * connections keep the old one until they close); an unreadable or
 * mismatched one is logged as a warning and the old pair kept. The
 * watchers stop when the server closes.
 *
 * @example
 * const server = createWebServer({ owner: ctx, tls: { cert: ctx.resolvePath('certs/fullchain.pem'), key: ctx.resolvePath('certs/privkey.pem') } }, handle);
 * await listenOn(server, address, ctx.label);
 */
export function createWebServer<Request extends typeof IncomingMessage = typeof IncomingMessage, Response extends typeof ServerResponse<InstanceType<Request>> = typeof ServerResponse>(
  options: WebServerOptions,
  handler?: RequestListener<Request, Response>,
): Server<Request, Response> {
  const serverOptions = options.ignoresRequestBodies === true ? { optimizeEmptyRequests: true } : {};
  if (options.tls === undefined) return createHttpServer<Request, Response>(serverOptions, handler);
  const names = options.settingNames ?? { cert: 'tls.cert', key: 'tls.key', ca: 'tls.ca' };
  const loaded = loadCertificate(options.owner, options.tls, names);
  const server = createHttpsServer<Request, Response>({ ...loaded.context, ...serverOptions }, handler);
  const watch = new CertificateWatch(server, options.owner, options.tls, names, loaded, options.reloadDelayMs ?? 200);
  server.once('close', () => watch.stop());
  return server;
}

/** Whether `server` speaks HTTPS (made by `createWebServer` with `tls`). */
export function isSecure(server: Server): boolean {
  return 'setSecureContext' in server;
}
