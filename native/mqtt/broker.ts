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
import { CertificateWatch, loadCertificate } from '../http/certificate-watch.ts';

export type { AedesPublishPacket };

/** How the broker listens and whom it lets in. */
export interface BrokerOptions {
  listen: ListenAddress;
  /** When set, clients must connect with this user name and `password`. */
  username?: string;
  password?: string;
  /** PEM files: with both, the broker speaks MQTT over TLS; renewed files are picked up without a restart. */
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
  const files = options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : undefined;
  const names = { cert: 'cert', key: 'key' };
  const certificate = files ? loadCertificate(owner, files, names) : undefined;
  const { Aedes: AedesBroker } = await import('aedes');
  const broker: Aedes = await AedesBroker.createBroker(
    authentication(options, (clientId) => owner.log.warn({ clientId }, `${owner.label}: refused client \`${clientId}\`: bad user name or password`)),
  );
  broker.on('clientError', (client, error) => owner.log.debug({ clientId: client.id, error: error.message }, 'client error'));
  const handle = broker.handle;
  const secure = certificate ? createTlsServer(certificate.context, (socket) => handle(socket)) : undefined;
  const server: Server = secure ?? createServer((socket) => handle(socket));
  // The same renewal watch as the HTTP servers': new clients get a renewed certificate, connected ones keep theirs.
  const watch = secure && files && certificate ? new CertificateWatch(secure, owner, files, names, certificate, 200) : undefined;
  server.on('connection', (socket) => socket.setNoDelay(true));
  const close = (): Promise<void> => {
    watch?.stop();
    return Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), new Promise<void>((resolve) => broker.close(() => resolve()))]).then(() => undefined);
  };
  let address: ListenAddress;
  try {
    address = await listenOn(server, options.listen, owner.label);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    address,
    url: `${certificate ? 'mqtts' : 'mqtt'}://${formatAddress(address)}`,
    subscribe: (filter, deliver) => new Promise<void>((resolve) => broker.subscribe(filter, deliver, resolve)),
    close,
  };
}
