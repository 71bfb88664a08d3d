/**
 * Listening addresses for every server of the engine (the web operators,
 * the embedded MQTT broker, the metrics endpoint): parsing `host:port`,
 * binding with errors that name the owner and the address, and closing.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { NativeError } from '../client-owner.ts';

/** A parsed `listen` address. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:8080`, or `[::1]:8080` for IPv6. */
export function formatAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Parses `host:port`, `[v6]:port`, `:port` or a bare port. Without a host the
 * server binds 127.0.0.1 (loopback): reaching it from other machines is a
 * choice made in the file (`0.0.0.0:8080`), never a default.
 */
export function parseListen(value: string | number): ListenAddress | string {
  const text = String(value).trim();
  let host = '127.0.0.1';
  let portText = text;
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (text.includes(':')) {
    const at = text.lastIndexOf(':');
    if (at > 0) host = text.slice(0, at);
    portText = text.slice(at + 1);
    if (host.includes(':')) return `\`${text}\` is not an address: write an IPv6 host in brackets, \`[::1]:8080\``;
  }
  if (!/^\d+$/.test(portText)) return `\`${text}\` is not an address: use \`host:port\` (\`127.0.0.1:8080\`) or a port`;
  const port = Number(portText);
  if (port > 65535) return `port ${port} is out of range (0 to 65535)`;
  return { host, port };
}

/**
 * Binds `server` (HTTP, TCP or TLS) to `address`. A failure rejects with a `NativeError` naming
 * the owner (`label`) and the address (`address_in_use`, `listen_denied`,
 * `listen_failed`) in one sentence, whose hint names `setting` (the
 * setting or option that chose the address, `listen` unless told);
 * resolves with the bound address (its real port when 0 was asked for).
 * `backlog` is the queue of connections accepted by the kernel but not yet
 * by Node (Node's default is 511; the kernel caps it at
 * `net.core.somaxconn`): a burst of new clients past it waits for a SYN retry.
 */
export function listenOn(server: Server, address: ListenAddress, label: string, options: { setting?: string; backlog?: number } = {}): Promise<ListenAddress> {
  const setting = options.setting ?? 'listen';
  return new Promise((resolve, reject) => {
    const shown = formatAddress(address);
    function onError(error: NodeJS.ErrnoException): void {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(new NativeError('address_in_use', `${label}: cannot listen on ${shown}: the address is already in use (another process or node listens there; change \`${setting}\`)`, { cause: error }));
      } else if (error.code === 'EACCES' || error.code === 'EPERM') {
        reject(new NativeError('listen_denied', `${label}: cannot listen on ${shown}: permission denied (ports below 1024 need privileges)`, { cause: error, cure: 'settings' }));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new NativeError('listen_failed', `${label}: cannot listen on ${shown}: no such local address`, { cause: error, cure: 'settings' }));
      } else {
        reject(new NativeError('listen_failed', `${label}: cannot listen on ${shown}: ${error.message}`, { cause: error }));
      }
    }
    function onListening(): void {
      server.off('error', onError);
      const bound = server.address() as AddressInfo;
      resolve({ host: address.host, port: bound.port });
    }
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port: address.port, host: address.host, backlog: options.backlog });
  });
}

/**
 * Closes a server and resolves once its port is free and every connection
 * has ended; connections still open after `graceMs` are destroyed.
 */
export function closeServer(server: HttpServer, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    const timer = setTimeout(function forceConnectionsClosed() {
      server.closeAllConnections();
    }, graceMs);
    server.close(function serverClosed() {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
