/**
 * The web connectors' shared helpers, table-driven: `listen` addresses,
 * constant-time comparison, backoff and `Retry-After`, URL redaction, the
 * SSE replay buffer and the per-client send window.
 */
import { describe, expect, it } from 'vitest';
import { safeEqual } from '../../native/http/auth.ts';
import { backoffDelay, retryAfterMs } from '../../runtime/retry.ts';
import { SendWindow } from '../../native/http/client-queue.ts';
import { parseListen } from '../../native/http/listen.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { ReplayBuffer } from '../../nodes/io/web/replay-buffer.ts';
import { withoutCredentials } from '../../nodes/io/http-request.ts';

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    [':9000', { host: '127.0.0.1', port: 9000 }],
    ['9000', { host: '127.0.0.1', port: 9000 }],
    [9000, { host: '127.0.0.1', port: 9000 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('reads %j', (text, expected) => {
    expect(parseListen(text)).toEqual(expected);
  });

  it.each([
    ['localhost', '`localhost` is not an address: use `host:port` (`127.0.0.1:8080`) or a port'],
    ['::1:8080', '`::1:8080` is not an address: write an IPv6 host in brackets, `[::1]:8080`'],
    ['127.0.0.1:99999', 'port 99999 is out of range (0 to 65535)'],
    ['127.0.0.1:', '`127.0.0.1:` is not an address: use `host:port` (`127.0.0.1:8080`) or a port'],
  ])('refuses %j', (text, reason) => {
    expect(parseListen(text)).toBe(reason);
  });
});

describe('safeEqual', () => {
  it.each([
    ['same', 'same', true],
    ['same', 'Same', false],
    ['short', 'shorter', false],
    ['', 'x', false],
  ])('%j and %j: %s', (a, b, expected) => {
    expect(safeEqual(a, b)).toBe(expected);
  });
});

describe('backoffDelay and retryAfterMs', () => {
  it('doubles from the initial delay up to the maximum, jittered between half and all of it', () => {
    expect([0, 1, 2, 3, 10].map((attempt) => backoffDelay(attempt, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect([0, 1, 2, 3, 10].map((attempt) => backoffDelay(attempt, 100, 1000, () => 0))).toEqual([50, 100, 200, 400, 500]);
  });

  it.each([
    ['3', 3000],
    ['0', 0],
    [' 12 ', 12_000],
    ['Wed, 21 Oct 2015 07:28:10 GMT', 10_000],
    ['soon', undefined],
    [null, undefined],
  ])('reads Retry-After %j', (header, expected) => {
    expect(retryAfterMs(header, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(expected);
  });
});

describe('redactUrl and withoutCredentials', () => {
  it.each([
    ['ws://user:pa55@host:1/x', 'ws://user:***@host:1/x'],
    ['https://host/x?token=abc&keep=1', 'https://host/x?token=***&keep=1'],
    ['https://host/x?api_key=abc', 'https://host/x?api_key=***'],
    ['http://host/plain', 'http://host/plain'],
    ['not a url //u:p@h', 'not a url //***@h'],
    ['mqtt://u:pa/ss@host:1883', 'mqtt://u:***@host:1883'],
    ['mqtt://u:p@ss@host:1883', 'mqtt://u:***@host:1883'],
  ])('redacts %j', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it('moves credentials from a URL to a Basic authorization header', () => {
    expect(withoutCredentials('https://us%40er:p%3Ass@host/x')).toEqual({ url: 'https://host/x', authorization: `Basic ${Buffer.from('us@er:p:ss').toString('base64')}` });
    expect(withoutCredentials('https://host/x')).toEqual({ url: 'https://host/x' });
  });
});

describe('ReplayBuffer', () => {
  function filled(limit: number, limitBytes: number, count: number): ReplayBuffer {
    const buffer = new ReplayBuffer(limit, limitBytes);
    for (let i = 0; i < count; i++) {
      const id = buffer.nextId();
      buffer.add(id, `id: ${id}\n\n`);
    }
    return buffer;
  }

  it('gives the events after an id, oldest first', () => {
    expect(filled(10, 1e6, 5).since(3)).toBe('id: 4\n\nid: 5\n\n');
    expect(filled(10, 1e6, 5).since(5)).toBe('');
    expect(filled(10, 1e6, 5).since(99)).toBe('');
  });

  it('keeps the newest `limit` events, and no more bytes than its bound', () => {
    expect(filled(3, 1e6, 5000).since(0)).toBe('id: 4998\n\nid: 4999\n\nid: 5000\n\n');
    expect(filled(100, 10, 10).since(0)).toBe('id: 10\n\n');
    expect(filled(0, 1e6, 10).size).toBe(0);
  });

  it('carries its ids and events to a successor', () => {
    const before = filled(10, 1e6, 4);
    const after = new ReplayBuffer(10, 1e6, before.state());
    expect(after.nextId()).toBe(5);
    expect(after.since(2)).toBe('id: 3\n\nid: 4\n\n');
    expect(new ReplayBuffer(10, 1e6, { something: 'else' }).nextId()).toBe(1);
  });
});

describe('SendWindow', () => {
  it('lets anything through while the socket holds nothing, and bounds messages and bytes otherwise', () => {
    let buffered = 0;
    const window = new SendWindow({ messages: 2, bytes: 100 }, () => buffered);
    const done = [window.track(), window.track(), window.track()];
    expect(window.fits(1_000)).toBe(true);
    buffered = 50;
    expect(window.fits(10)).toBe(false); // three writes waiting, two allowed
    done[0]();
    done[1]();
    expect(window.pending).toBe(1);
    expect(window.fits(50)).toBe(true);
    expect(window.fits(51)).toBe(false);
  });
});
