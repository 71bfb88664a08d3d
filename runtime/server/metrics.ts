/**
 * The Prometheus endpoint: `GET /metrics` on a loopback address unless told
 * otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { Scrape } from '../metrics.ts';
import { listenOn, parseListen, type ListenAddress } from '../../native/http/listen.ts';

/**
 * The `--metrics` address, parsed as every `listen` is
 * (`native/http/listen.ts`); undefined when it is not an address.
 */
export function metricsAddress(text: string): ListenAddress | undefined {
  const parsed = parseListen(text);
  return typeof parsed === 'string' ? undefined : parsed;
}

/**
 * Serves `GET /metrics` from `registry` on `listen`; resolves once the port
 * is bound, or rejects with a `NativeError` whose message is whole:
 * `--metrics: cannot listen on 127.0.0.1:9464: the address is already in use (…)`.
 */
export function serveMetrics(registry: Scrape, listen: { host: string; port: number }): Promise<Server> {
  const server = createServer(function metricsRequest(request, response) {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  return listenOn(server, listen, '`--metrics`', { setting: '--metrics' }).then(() => server);
}
