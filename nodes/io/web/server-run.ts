/**
 * The life of one web server node (`http.server`, `ws.server`,
 * `sse.server`), written once: it listens and says so, a failure to listen
 * fails the node, a drain (the signal, or the end of the input) lets the
 * node close its clients before the port is freed and the node completes,
 * and a teardown frees everything at once.
 */
import type { Server } from 'node:http';
import type { Subscriber } from 'rxjs';
import { closeServer, formatAddress, listenOn, type ListenAddress } from '../../../native/http/listen.ts';
import { isSecure } from '../../../native/http/server.ts';
import type { Batch, NodeContext } from '../../../runtime/api.ts';

/** Where a node's server listens: the address, the paths it serves (for the log line), and its listen backlog (Node's default 511 unless set). */
export interface ServerWhere {
  listen: ListenAddress;
  path: string[];
  backlog?: number;
}

/** What the node does at each step of its server's life. */
export interface ServerRunHooks {
  /** What the log line says once the server listens: `listening for requests`. */
  readonly serving: string;
  /** Work before listening (loading a library); the server does not listen if the node stopped meanwhile. */
  prepare?(): Promise<void>;
  /** A drain: closes the clients gracefully; the port is freed once this resolves. */
  closeClients(): Promise<void> | void;
  /** A forced stop: drops the clients at once. */
  dropClients(): void;
}

/** One running server of a node; `stopping` tells request handlers to refuse new work. */
export class ServerRun {
  #stopping = false;
  readonly #ctx: NodeContext<unknown>;
  readonly #server: Server;
  readonly #subscriber: Subscriber<Batch>;
  readonly #hooks: ServerRunHooks;
  /** Whether the server listened. */
  readonly #listening: Promise<boolean>;
  readonly #onAbort = (): void => void this.drain();

  constructor(ctx: NodeContext<unknown>, server: Server, subscriber: Subscriber<Batch>, where: ServerWhere, hooks: ServerRunHooks) {
    this.#ctx = ctx;
    this.#server = server;
    this.#subscriber = subscriber;
    this.#hooks = hooks;
    this.#listening = this.#listen(where);
    ctx.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  async #listen(where: ServerWhere): Promise<boolean> {
    try {
      await this.#hooks.prepare?.();
      if (this.#stopping) return false;
      const bound = await listenOn(this.#server, where.listen, this.#ctx.label, { backlog: where.backlog });
      this.#ctx.log.info({ address: formatAddress(bound), path: where.path, scheme: isSecure(this.#server) ? 'https' : 'http' }, this.#hooks.serving);
      return true;
    } catch (error) {
      this.#stopping = true;
      this.#subscriber.error(error);
      return false;
    }
  }

  /** Stops taking work, closes the clients, frees the port, then completes the node. */
  async drain(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (!(await this.#listening)) {
      this.#subscriber.complete();
      return;
    }
    await this.#hooks.closeClients();
    await closeServer(this.#server, 1000);
    this.#subscriber.complete();
  }

  /** The node's teardown: everything closed at once, nothing waited for. */
  teardown(): void {
    this.#stopping = true;
    this.#ctx.signal.removeEventListener('abort', this.#onAbort);
    this.#hooks.dropClients();
    this.#server.close();
    this.#server.closeAllConnections();
  }
}
