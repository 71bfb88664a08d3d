import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { accessSettingsSchema, createAccessPolicy, type AccessPolicy } from '../../../nodes/cdn/access/policy.ts';
import { signingKey, signPath } from '../../../nodes/cdn/access/signed-url.ts';

const key = 'http-test-key-0123456789abcdef';
let server: Server | undefined;
/** Responses held open by `/slow`, ended by the test. */
const held: ServerResponse[] = [];

/**
 * A server that admits each request through the policy the way the edge
 * cache does: one `admit` per request, the refusal sent as it is, and
 * `release` when the response closes (finished or abandoned). It listens on
 * an IPv4-mapped address, so Node reports clients as `::ffff:127.0.0.1`, as
 * on a dual-stack socket.
 */
async function serve(policy: AccessPolicy, port: number): Promise<string> {
  server = createServer(function admitThenServe(request, response) {
    const url = new URL(request.url ?? '/', 'http://edge');
    const decision = policy.admit({ path: url.pathname, query: url.searchParams, ip: request.socket.remoteAddress ?? '', headers: request.headers }, Date.now());
    if (!decision.ok) {
      response.writeHead(decision.status, { 'content-type': 'text/plain; charset=utf-8', 'x-refusal': decision.reason, ...decision.headers });
      response.end(decision.body);
      return;
    }
    response.once('close', decision.release);
    if (url.pathname === '/slow') {
      response.writeHead(200);
      response.write('started\n');
      held.push(response);
      return;
    }
    response.end(`served to ${request.socket.remoteAddress}\n`);
  });
  server.listen(port, '::ffff:127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${port}`;
}

afterEach(async () => {
  for (const response of held.splice(0)) response.end();
  server?.closeAllConnections();
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
});

describe('the access policy in front of a real HTTP server', () => {
  it('serves a signed link, refuses an unsigned or tampered one with 403 and a plain body', async () => {
    const policy = createAccessPolicy(accessSettingsSchema.parse({ signed: ['/private/'], sign_key: key }));
    const base = await serve(policy, 18202);
    const link = signPath('/private/a.m3u8', Math.floor(Date.now() / 1000) + 60, signingKey(key));
    const good = await fetch(base + link);
    expect(good.status).toBe(200);
    expect(await good.text()).toBe('served to ::ffff:127.0.0.1\n');
    const unsigned = await fetch(`${base}/private/a.m3u8`);
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toBe('forbidden: this path needs a signed URL\n');
    const tampered = await fetch(base + link.replace('/a.m3u8', '/b.m3u8'));
    expect([tampered.status, tampered.headers.get('x-refusal')]).toEqual([403, 'bad_signature']);
    // fetch resolves `..` and `%2e%2e` itself (WHATWG URL rules); an encoded letter reaches the server as written.
    const sneaky = await fetch(`${base}/%70rivate/a.m3u8`);
    expect([sneaky.status, sneaky.headers.get('x-refusal')]).toEqual([403, 'unsigned']);
    expect(policy.refusals()).toMatchObject({ unsigned: 2, bad_signature: 1 });
  });

  it('matches an IPv4 rule against the IPv4-mapped address Node reports', async () => {
    const base = await serve(createAccessPolicy(accessSettingsSchema.parse({ ip: { deny: ['127.0.0.0/8'] } })), 18203);
    const response = await fetch(`${base}/a`);
    expect([response.status, response.headers.get('x-refusal')]).toEqual([403, 'ip_denied']);
  });

  it('answers 429 with Retry-After past the rate limit', async () => {
    const base = await serve(createAccessPolicy(accessSettingsSchema.parse({ rate_limit: { rate: 0.1, burst: 2 } })), 18204);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${base}/a`);
      statuses.push(response.status);
      if (response.status === 429) expect(response.headers.get('retry-after')).toBe('10');
      await response.text();
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('caps open requests per client and frees a slot when a response ends or its client goes away', async () => {
    const policy = createAccessPolicy(accessSettingsSchema.parse({ max_connections_per_client: 2 }));
    const base = await serve(policy, 18205);
    const gone = new AbortController();
    const first = await fetch(`${base}/slow`, { signal: gone.signal });
    const second = await fetch(`${base}/slow`);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await fetch(`${base}/a`);
    expect([third.status, third.headers.get('retry-after'), third.headers.get('x-refusal')]).toEqual([429, '1', 'too_many_connections']);
    await third.text();
    // The first client gives up: its slot comes back without the response finishing.
    gone.abort();
    await expect.poll(async () => {
      const response = await fetch(`${base}/a`);
      await response.text();
      return response.status;
    }, { timeout: 5000 }).toBe(200);
    // The second finishes: the slot comes back too, so two may be open again.
    held[1].end();
    await second.text();
    const again = await Promise.all([fetch(`${base}/slow`), fetch(`${base}/slow`)]);
    expect(again.map((response) => response.status)).toEqual([200, 200]);
    // At least the one above; more if the abort took a moment to reach the server while polling.
    expect(policy.refusals().too_many_connections).toBeGreaterThanOrEqual(1);
  });
});
