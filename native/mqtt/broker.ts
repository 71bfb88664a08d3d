/**
 * An MQTT broker inside the process (aedes, imported when the first broker
 * opens): a TCP or TLS listener, optional user name and password, and a
 * way to receive what clients publish. The `mqtt.broker` operator runs one;
 * demos run with no external server thanks to it.
 */
import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Aedes, AedesOptions, AedesPublishPacket, AuthenticateError } from 'aedes';
import type { ClientOwner } from '../client-owner.ts';
import { safeEqual } from '../http/auth.ts';
import { formatAddress, listenOn, type ListenAddress } from '../http/listen.ts';
import { readTlsFile } from '../tls-file.ts';

export type { AedesPublishPacket };

/** How the broker listens and whom it lets in. */
export interface BrokerOptions {
  listen: ListenAddress;
  /** When set, clients must connect with this user name and `password`. */
  username?: string;
  password?: string;
  /** PEM files: with both, the broker speaks MQTT over TLS. */
  cert?: string;
  key?: string;
}

/** Called for each message published on a subscribed filter; the publisher's next packet is read after `done`. */
export type DeliverMessage = (packet: AedesPublishPacket, done: () => void) => void;

/** A running broker. */
export interface EmbeddedBroker {
  /** The bound address (its real port when port 0 was asked for). */
  readonly address: ListenAddress;
  /** `mqtt://host:port`, or `mqtts://` with TLS. */
  readonly url: string;
  /** Receives what clients publish on `filter`. */
  subscribe(filter: string, deliver: DeliverMessage): Promise<void>;
  /** Disconnects every client and frees the port. */
  close(): Promise<void>;
}

/** The broker's client checks: a user name and password when configured. */
function authentication(options: BrokerOptions, onRefused: (clientId: string) => void): AedesOptions {
  if (options.username === undefined) return {};
  return {
    authenticate(client, username, password, done) {
      if (username === options.username && password !== undefined && safeEqual(password.toString('utf8'), options.password ?? '')) {
        done(null, true);
        return;
      }
      onRefused(client.id);
      const error = new Error('bad user name or password') as AuthenticateError;
      error.returnCode = 4;
      done(error, null);
    },
  };
}

/** Starts a broker listening on `options.listen`; rejects with a located error when it cannot. */
export async function openBroker(owner: ClientOwner, options: BrokerOptions): Promise<EmbeddedBroker> {
  const [cert, key] = await Promise.all([readTlsFile(owner, 'cert', options.cert), readTlsFile(owner, 'key', options.key)]);
  const { Aedes: AedesBroker } = await import('aedes');
  const broker: Aedes = await AedesBroker.createBroker(
    authentication(options, (clientId) => owner.log.warn({ clientId }, `${owner.label}: refused client \`${clientId}\`: bad user name or password`)),
  );
  broker.on('clientError', (client, error) => owner.log.debug({ clientId: client.id, error: error.message }, 'client error'));
  const handle = broker.handle;
  const server: Server = cert && key ? createTlsServer({ cert, key }, (socket) => handle(socket)) : createServer((socket) => handle(socket));
  server.on('connection', (socket) => socket.setNoDelay(true));
  const close = (): Promise<void> =>
    Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), new Promise<void>((resolve) => broker.close(() => resolve()))]).then(() => undefined);
  let address: ListenAddress;
  try {
    address = await listenOn(server, options.listen, owner.label);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    address,
    url: `${cert ? 'mqtts' : 'mqtt'}://${formatAddress(address)}`,
    subscribe: (filter, deliver) => new Promise<void>((resolve) => broker.subscribe(filter, deliver, resolve)),
    close,
  };
}
