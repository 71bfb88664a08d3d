/**
 * Requests the edge refuses before anything is forwarded: path traversal in
 * every spelling, encoded slashes, backslashes, control characters (raw
 * and encoded, CR/LF header injection), overlong URLs. The origin must see
 * none of them.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { targetProblem } from '../../nodes/cdn/edge/request-check.ts';
import { rawGet, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

afterEach(stopAll);

const attacks = [
  '/../etc/passwd',
  '/live/../../etc/passwd',
  '/live/%2e%2e/%2e%2e/etc/passwd',
  '/live/%2E%2E/secret',
  '/live/.%2e/secret',
  '/live/%252e%252e/secret',
  '/live/..%2fsecret',
  '/live%2f..%2fsecret',
  '/live/%5c..%5csecret',
  '/live\\..\\secret',
  '/file%00.m3u8',
  '/a%0d%0aSet-Cookie:%20x=1',
  '/./hidden',
  `/${'a'.repeat(9000)}`,
];

/** Sends bytes as they are on a raw connection; resolves with the status line's code. */
function rawRequest(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.on('data', (data) => {
      text += data.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

describe('cache: request checks', () => {
  it('refuses traversal, encoded slashes, control characters and overlong URLs with 400, never forwarding them', async () => {
    const origin = await startOrigin((_request, response) => response.end('should not be asked'));
    const edge = await startEdge(origin.url);
    for (const target of attacks) {
      const answer = await rawGet(edge.base, target);
      expect([target.slice(0, 40), answer.status]).toEqual([target.slice(0, 40), 400]);
      expect(answer.body).toMatch(/^bad request: /);
    }
    const port = Number(new URL(edge.base).port);
    // CR/LF and a raw control character in the request line: refused by the HTTP parser or the edge, never forwarded.
    expect(await rawRequest(port, 'GET /a\rInjected: 1 HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(await rawRequest(port, 'GET /a\u0001b HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(await rawRequest(port, 'GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(origin.requests).toEqual([]);
    await until(() => edge.log().filter((record) => record.status === 400).length >= attacks.length);
  });

  it('forwards ordinary paths and queries', async () => {
    const origin = await startOrigin((_request, response) => response.end('fine'));
    const edge = await startEdge(origin.url);
    for (const target of ['/live/k/index.m3u8', '/a%20b/c.ts', '/x.ts?token=abc&e=1', '/..hidden/file', '/dots.../x']) {
      expect((await rawGet(edge.base, target)).status).toBe(200);
    }
    expect(origin.requests.map((r) => r.path)).toEqual(['/live/k/index.m3u8', '/a%20b/c.ts', '/x.ts?token=abc&e=1', '/..hidden/file', '/dots.../x']);
  });

  it('names the problem', () => {
    expect(targetProblem('/a/../b')).toBe('dot segments (`..`) in the path');
    expect(targetProblem('/a%2fb')).toBe('encoded slashes in the path');
    expect(targetProblem('/a%ZZ')).toBe('malformed percent-encoding in the path');
    expect(targetProblem('/ok')).toBeUndefined();
  });
});
