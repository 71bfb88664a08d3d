/**
 * `POST /api/v1/cdn/cache/purge` on a run's admin server (`--ui`): when the
 * running graph has a `cache` node with a `purge_bus`, a purge posted here
 * goes out on that bus to every edge on its channel (the body and answers
 * are `handlePurgeRequest`'s). Read at each request, so a reload that adds
 * or changes an edge is followed. Behind the admin token like all of `/api/`.
 */
import type { AdminServer } from '../runtime/server/admin.ts';
import { readBody, sendJson } from '../runtime/server/http-kit.ts';
import type { Engine } from '../runtime/engine.ts';
import { busOptions } from '../nodes/cdn/purge/bus-setting.ts';
import { handlePurgeRequest } from '../nodes/cdn/purge/http.ts';

const path = '/api/v1/cdn/cache/purge';
const maxBody = 64 * 1024;

type BusSettings = { redis?: string; brokers?: string[]; channel: string };

/** The purge bus of the graph's first `cache` node that has one. */
function graphBus(engine: Engine): BusSettings | undefined {
  for (const node of engine.graph.nodes.values()) {
    if (node.op !== 'cache') continue;
    const bus = (node.settings as { purge_bus?: BusSettings }).purge_bus;
    if (bus) return bus;
  }
  return undefined;
}

export function addPurgeRoute(server: AdminServer, engine: Engine): void {
  server.route(async function purgeRoute(request, response, url) {
    if (url.pathname !== path) return false;
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      sendJson(response, 405, { error: { code: 'method_not_allowed', message: `${path} takes POST` } });
      return true;
    }
    const bus = graphBus(engine);
    if (!bus) {
      sendJson(response, 404, { error: { code: 'no_purge_bus', message: 'no `cache` node of the running graph has a `purge_bus`' } });
      return true;
    }
    let body: string;
    try {
      body = await readBody(request, maxBody);
    } catch {
      sendJson(response, 413, { error: { code: 'too_large', message: `the body is over ${maxBody} bytes` } });
      return true;
    }
    const { status, json } = await handlePurgeRequest(body, busOptions(bus));
    sendJson(response, status, json);
    return true;
  });
}
