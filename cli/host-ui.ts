/**
 * The visualiser of a plan spread over hosts, for `streams worker --ui`
 * (the whole deployed plan, this host's nodes live, the others greyed) and
 * `streams plan --ui` (the plan alone, nothing running). Unlike
 * `streams run --ui` there is no one engine for the server's life: a
 * worker's engine comes with its first version and is replaced when its
 * share finishes, so the feed and the taps read whichever runs now.
 */
import type { Graph } from '../graph/model.ts';
import type { Plan } from '../graph/plan.ts';
import type { Engine } from '../runtime/engine.ts';
import type { Logger } from '../runtime/types.ts';
import { startAdminServer, type AdminServer } from '../runtime/server/admin.ts';
import { LiveFeed, type FeedEngine } from '../runtime/server/live-feed.ts';
import { Taps, type TapEngine } from '../runtime/server/taps.ts';
import { UsageError } from './usage-error.ts';
import type { UiOptions } from './run-ui.ts';

/** What the page shows: the whole checked graph and its plan, and the host this process runs (none for `plan --ui`). */
export interface HostView {
  graph: Graph;
  plan: Plan;
  here?: string;
}

/** A started host visualiser. */
export interface HostUi {
  server: AdminServer;
  feed: LiveFeed;
  /** The page's address, for people (the token is never in it). */
  page: string;
  /** Shows a new version: its whole graph and plan, and the engine now running this host's share. */
  show(view: HostView, engine?: Engine): void;
  close(): Promise<void>;
}

/** Starts the admin server over a view that changes; rejects with a `UsageError` when it cannot listen. */
export async function startHostUi(options: UiOptions & { view: HostView; log?: Logger }): Promise<HostUi> {
  let view = options.view;
  let engine: Engine | undefined;
  const planOnly = view.here === undefined;
  const feedEngine: FeedEngine = {
    get graph() {
      return view.graph;
    },
    nodeStats: () => engine?.nodeStats() ?? [],
    edgeStats: () => engine?.edgeStats() ?? [],
  };
  const noRunners: TapEngine['runners'] = new Map();
  const tapEngine: TapEngine = {
    get runners() {
      return engine?.runners ?? noRunners;
    },
    get channels() {
      return engine?.channels ?? [];
    },
  };
  const feed = new LiveFeed(feedEngine, { plan: () => ({ graph: view.graph, plan: view.plan, ...(view.here !== undefined && { here: view.here }), planOnly }) });
  const taps = new Taps(tapEngine);
  const server = await startAdminServer({
    listen: options.listen,
    ...(options.token ? { token: options.token } : {}),
    feed,
    taps,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.log ? { log: options.log } : {}),
  }).catch((error: Error) => {
    throw new UsageError(error.message);
  });
  feed.start();
  const host = server.address.host.includes(':') ? `[${server.address.host}]` : server.address.host;
  return {
    server,
    feed,
    page: `${options.tls ? 'https' : 'http'}://${host}:${server.address.port}/`,
    show(next, running) {
      view = next;
      engine = running;
      feed.refreshPlan();
    },
    async close() {
      feed.stop();
      taps.stop();
      await server.close();
    },
  };
}

/**
 * A worker's `--ui`: served from the first version the worker runs (before
 * it there is no plan to draw), then shown again with each version. A
 * server that cannot listen is logged and given up; the worker goes on.
 */
export class WorkerUi {
  readonly #options: UiOptions;
  readonly #host: string;
  readonly #log: Logger;
  #ui: Promise<HostUi | undefined> | undefined;

  constructor(options: UiOptions, host: string, log: Logger) {
    this.#options = options;
    this.#host = host;
    this.#log = log;
  }

  /** Shows a version's whole graph and plan, with the engine running this host's share. */
  async show(graph: Graph, plan: Plan, engine: Engine | undefined): Promise<void> {
    const view: HostView = { graph, plan, here: this.#host };
    this.#ui ??= startHostUi({ ...this.#options, view, log: this.#log }).then(
      (ui) => {
        this.#log.info({ url: ui.page }, 'serving the visualiser of the deployed plan');
        return ui;
      },
      (error: Error) => {
        this.#log.error({ error: error.message }, '--ui could not start; the worker runs without it');
        return undefined;
      },
    );
    (await this.#ui)?.show(view, engine);
  }

  async close(): Promise<void> {
    await (await this.#ui)?.close();
  }
}
