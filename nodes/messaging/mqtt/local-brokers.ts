/**
 * The embedded brokers (`mqtt.broker`) of one engine, so that an
 * `mqtt.subscribe` or `mqtt.publish` node of the same pipeline waits for
 * its broker to listen instead of racing it: the engine starts every node
 * at once, and a client's first attempt would otherwise meet a closed port
 * and log a failure that is no failure at all.
 */
import type { ListenAddress } from '../../../native/http/listen.ts';
import type { NodeContext } from '../../../runtime/api.ts';

const loopback = new Set(['127.0.0.1', 'localhost', '::1']);
const anyAddress = new Set(['0.0.0.0', '::']);

/** Whether a client connecting to `host:port` reaches a server listening on `address`. */
function reaches(host: string, port: number, address: ListenAddress): boolean {
  if (port !== address.port) return false;
  if (host === address.host || anyAddress.has(address.host)) return true;
  return loopback.has(host) && loopback.has(address.host);
}

/** The host and port a broker URL names (`mqtt://h:p`, `mqtts://`, `ws://`), if it can be read. */
function hostAndPort(url: string): { host: string; port: number } | undefined {
  try {
    const parsed = new URL(url.replace(/^(mqtt|tcp)s?:/, 'http:'));
    const port = Number(parsed.port || (url.startsWith('mqtts') ? 8883 : 1883));
    return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
  } catch {
    return undefined;
  }
}

/** Brokers starting in this engine, each with a promise that settles once it listens or has failed to. */
export class LocalBrokers {
  readonly #starting = new Map<ListenAddress, Promise<void>>();

  /** A broker is starting on `address`; `listening` settles once it accepts clients (or cannot). Returns the withdrawal. */
  announce(address: ListenAddress, listening: Promise<unknown>): () => void {
    const settled = listening.then(
      () => undefined,
      () => undefined,
    );
    this.#starting.set(address, settled);
    return () => {
      if (this.#starting.get(address) === settled) this.#starting.delete(address);
    };
  }

  /**
   * Resolves once no broker of this engine that `url` reaches is still
   * starting. Looks only after the nodes started together with the caller
   * have all been created (a broker may come later in the start order).
   */
  async ready(url: string): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const target = hostAndPort(url);
    if (!target) return;
    const waits = [...this.#starting].filter(([address]) => reaches(target.host, target.port, address)).map(([, settled]) => settled);
    await Promise.all(waits);
  }
}

/** The embedded brokers of the engine that runs this node. */
export function localBrokers(ctx: NodeContext<unknown>): LocalBrokers {
  return ctx.shared('mqtt.brokers', () => new LocalBrokers());
}
