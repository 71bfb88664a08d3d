/**
 * The Prometheus endpoint: `GET /metrics` on a loopback address unless told
 * otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Parses `HOST:PORT` or `PORT` (host 127.0.0.1). */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  return { host: match[1] || '127.0.0.1', port };
}

export function serveMetrics(registry: Registry, listen: { host: string; port: number }): Promise<Server> {
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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
