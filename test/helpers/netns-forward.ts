/**
 * A TCP forwarder for the network-namespace harness (`netns.ts`), run as its
 * own process: `node netns-forward.ts LISTEN_ADDRESS TARGET_ADDRESS PORT...`
 * listens on LISTEN_ADDRESS:PORT for each PORT and pipes every connection to
 * TARGET_ADDRESS:PORT. Inside a namespace it is started with
 * `ip netns exec`, listening on the namespace's 127.0.0.1 and forwarding to
 * the bridge address of the root side; the same code, in-process
 * (`forwardPorts`), listens on that bridge address and reaches the services
 * on the root namespace's loopback. So Kafka, which advertises
 * 127.0.0.1:PORT, is found at that very address from every namespace.
 * Prints `ready` on stdout once every port listens.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Listening forwarders; `close()` stops them and drops their connections. */
export interface Forwarders {
  close(): Promise<void>;
}

/**
 * Forwards LISTEN:PORT to TARGET:PORT for each port. Each side is destroyed
 * when the other ends or fails, so a stalled peer (a cut link) never pins the
 * other side open forever: keep-alive probes end such a connection too.
 */
export async function forwardPorts(listen: string, target: string, ports: number[]): Promise<Forwarders> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  for (const port of ports) {
    const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 5_000 }, function pipeConnection(inbound) {
      track(inbound);
      const outbound = createConnection({ host: target, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 5_000 });
      track(outbound);
      // A connect that stalls (SYN lost on a cut link) would otherwise wait for the kernel's ~2 min.
      outbound.setTimeout(10_000, () => {
        if (outbound.connecting) outbound.destroy();
      });
      outbound.on('connect', () => outbound.setTimeout(0));
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, listen, () => resolve());
    });
    servers.push(server);
  }
  return {
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [listen, target, ...ports] = process.argv.slice(2);
  if (!listen || !target || ports.length === 0) {
    process.stderr.write('usage: node netns-forward.ts LISTEN_ADDRESS TARGET_ADDRESS PORT...\n');
    process.exit(2);
  }
  forwardPorts(listen, target, ports.map(Number)).then(
    () => process.stdout.write('ready\n'),
    (error: Error) => {
      process.stderr.write(`netns-forward: ${error.message}\n`);
      process.exit(1);
    },
  );
}
