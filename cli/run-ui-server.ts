/**
 * The admin server of `streams run --ui`: its live feed, taps and the
 * visualiser. `run.ts` imports this file only when `--ui` is given, so a
 * run without it loads none of the server, the feed or `ws`.
 */
import type { Engine } from '../runtime/engine.ts';
import type { Logger } from '../runtime/types.ts';
import { startAdminServer, type AdminServer } from '../runtime/server/admin.ts';
import { LiveFeed } from '../runtime/server/live-feed.ts';
import { Taps } from '../runtime/server/taps.ts';
import { addPurgeRoute } from './cdn-purge-route.ts';
import { UsageError } from './pipeline-file.ts';
import type { Reloader, UiOptions } from './run-ui.ts';

/** The admin server of a run, with its feed and taps. */
export interface RunUi {
  server: AdminServer;
  feed: LiveFeed;
  taps: Taps;
  close(): Promise<void>;
}

/** Starts the feed, the taps and the admin server for a running engine; rejects with a `UsageError` when it cannot listen. */
export async function startRunUi(engine: Engine, options: UiOptions & { reloader: Reloader; ownsTimings: boolean; log?: Logger }): Promise<RunUi> {
  const feed = new LiveFeed(engine, { ownsTimings: options.ownsTimings });
  const taps = new Taps(engine);
  options.reloader.feed = feed;
  const server = await startAdminServer({
    listen: options.listen,
    ...(options.token ? { token: options.token } : {}),
    feed,
    taps,
    reload: (text) => options.reloader.apply(text, 'api'),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.log ? { log: options.log } : {}),
  }).catch((error: Error) => {
    throw new UsageError(error.message);
  });
  addPurgeRoute(server, engine);
  feed.start();
  return {
    server,
    feed,
    taps,
    async close() {
      feed.stop();
      taps.stop();
      await server.close();
    },
  };
}
