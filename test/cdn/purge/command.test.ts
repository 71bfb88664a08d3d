/**
 * The purge bus's pure parts: message validation, duplicate detection, the
 * registry's liveness classes, option checks, the CLI's arguments and
 * report, and the HTTP body.
 */
import { describe, expect, it } from 'vitest';
import { formatPurgeReport, purgeArguments } from '../../../cli/purge.ts';
import { UsageError } from '../../../cli/usage-error.ts';
import { newPurgeCommand, parseBusMessage, RecentCommands, type PurgeOutcome } from '../../../nodes/cdn/purge/command.ts';
import { handlePurgeRequest, parsePurgeBody } from '../../../nodes/cdn/purge/http.ts';
import { busOptionsProblem, classifyEdges, kafkaNames, redisNames, redisTiming } from '../../../nodes/cdn/purge/registry.ts';

const selector = { kind: 'prefix', value: '/live/', soft: false } as const;

describe('parseBusMessage', () => {
  it('reads a command as written by newPurgeCommand', () => {
    const command = newPurgeCommand(selector, 1_700_000_000_000);
    const parsed = parseBusMessage(JSON.stringify(command));
    expect(parsed).toEqual({ ok: true, message: command });
    expect(command.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('reads an ack, a heartbeat and a probe from bytes', () => {
    for (const message of [
      { v: 1, type: 'ack', id: 'abcdefgh', edge: 'edge-a', removed: 3, ms: 0.2 },
      { v: 1, type: 'ack', id: 'abcdefgh', edge: 'edge-a', removed: 0, ms: 0.2, error: 'closed' },
      { v: 1, type: 'heartbeat', edge: 'edge-a', at: 1 },
      { v: 1, type: 'probe', nonce: 'abcdefgh' },
    ]) {
      expect(parseBusMessage(Buffer.from(JSON.stringify(message)))).toEqual({ ok: true, message });
    }
  });

  it.each([
    ['not JSON', '{oops', /^not JSON: /],
    ['another version', '{"v":2,"type":"purge"}', /^protocol version 2 is not 1$/],
    ['no version', '{"type":"purge"}', /`v`/],
    ['an unknown type', '{"v":1,"type":"explode"}', /`type`/],
    ['an unknown kind', '{"v":1,"type":"purge","id":"abcdefgh","selector":{"kind":"all","value":"/","soft":false},"sent_at":1}', /`selector.kind`/],
    ['an empty value', '{"v":1,"type":"purge","id":"abcdefgh","selector":{"kind":"url","value":"","soft":false},"sent_at":1}', /`selector.value`/],
    ['soft missing', '{"v":1,"type":"purge","id":"abcdefgh","selector":{"kind":"url","value":"/a"},"sent_at":1}', /`selector.soft`/],
    ['a short id', '{"v":1,"type":"purge","id":"x","selector":{"kind":"url","value":"/a","soft":false},"sent_at":1}', /`id`/],
    ['an extra field', '{"v":1,"type":"purge","id":"abcdefgh","selector":{"kind":"url","value":"/a","soft":false},"sent_at":1,"all":true}', /all/],
    ['a JSON array', '[1,2]', /not a purge bus message/],
    ['null', 'null', /not a purge bus message/],
    ['a bad edge name', '{"v":1,"type":"ack","id":"abcdefgh","edge":"a b","removed":1,"ms":1}', /`edge`/],
    ['a negative count', '{"v":1,"type":"ack","id":"abcdefgh","edge":"a","removed":-1,"ms":1}', /`removed`/],
  ])('refuses %s with a reason, without throwing', (_name, text, reason) => {
    const parsed = parseBusMessage(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('refuses a message over 16 KiB before parsing it', () => {
    const parsed = parseBusMessage('x'.repeat(17 * 1024));
    expect(parsed).toEqual({ ok: false, reason: 'message of 17408 bytes is over the 16384-byte limit' });
  });
});

describe('RecentCommands', () => {
  it('remembers results by id and forgets the oldest past its capacity', async () => {
    const recent = new RecentCommands(2);
    const outcome = (removed: number): Promise<PurgeOutcome> => Promise.resolve({ removed, ms: 0 });
    recent.remember('a', outcome(1));
    recent.remember('b', outcome(2));
    expect(await recent.get('a')).toEqual({ removed: 1, ms: 0 });
    recent.remember('c', outcome(3));
    expect(recent.get('a')).toBeUndefined();
    expect(await recent.get('c')).toEqual({ removed: 3, ms: 0 });
  });
});

describe('the registry', () => {
  it('splits entries into alive and stale by last heartbeat, keeps the latest per edge and drops forgotten ones', () => {
    const now = 1_000_000_000;
    const { alive, stale } = classifyEdges(
      [
        { edge: 'b', lastSeen: now - 1_000 },
        { edge: 'a', lastSeen: now - 30_000 },
        { edge: 'a', lastSeen: now - 5_000 },
        { edge: 'c', lastSeen: now - 11_000 },
        { edge: 'gone', lastSeen: now - 11 * 60_000 },
      ],
      now,
      redisTiming,
    );
    expect(alive).toEqual([
      { edge: 'a', lastSeen: now - 5_000 },
      { edge: 'b', lastSeen: now - 1_000 },
    ]);
    expect(stale).toEqual([{ edge: 'c', lastSeen: now - 11_000 }]);
  });

  it('names Redis keys after the channel and Kafka topics with `:` as `.`', () => {
    expect(redisNames('streams:cdn:purge')).toEqual({ commands: 'streams:cdn:purge', acks: 'streams:cdn:purge:acks', registry: 'streams:cdn:purge:edges' });
    expect(kafkaNames('streams:cdn:purge')).toEqual({ commands: 'streams.cdn.purge', acks: 'streams.cdn.purge.acks', registry: 'streams.cdn.purge.edges' });
  });

  it.each([
    [{ channel: 'c' }, /exactly one/],
    [{ channel: 'c', redis: 'redis://h', kafka: ['h:9092'] }, /exactly one/],
    [{ channel: 'c', redis: 'http://h' }, /redis:\/\//],
    [{ channel: 'c', kafka: [] }, /empty/],
    [{ channel: 'a b', redis: 'redis://h' }, /channel `a b`/],
  ])('refuses bus options %j', (options, problem) => {
    expect(busOptionsProblem(options)).toMatch(problem);
  });
});

describe('streams purge arguments', () => {
  const usage = (values: Record<string, unknown>, positionals: string[] = []): string => {
    try {
      purgeArguments(values, positionals);
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(2);
      return (error as Error).message;
    }
    throw new Error('no usage error');
  };

  it('reads the bus, the selector, the channel default and the timeout', () => {
    expect(purgeArguments({ redis: 'redis://127.0.0.1:6379', tag: 'm', soft: true, timeout: '250ms' }, [])).toEqual({
      bus: { channel: 'streams:cdn:purge', redis: 'redis://127.0.0.1:6379' },
      selector: { kind: 'tag', value: 'm', soft: true },
      timeoutMs: 250,
    });
    expect(purgeArguments({ kafka: 'a:1, b:2', channel: 'x' }, ['/a.m3u8']).bus).toEqual({ channel: 'x', kafka: ['a:1', 'b:2'] });
  });

  it('refuses usage mistakes with exit 2', () => {
    expect(usage({ redis: 'redis://h' })).toMatch(/exactly one of URL, --url, --prefix or --tag/);
    expect(usage({ redis: 'redis://h', url: '/a', prefix: '/b' })).toMatch(/got url, prefix/);
    expect(usage({ url: '/a' })).toMatch(/--redis URL or --kafka BROKERS/);
    expect(usage({ redis: 'redis://h', url: '/a', timeout: '5' })).toMatch(/--timeout: `5` is not a duration/);
    expect(usage({ redis: 'redis://h', url: '/a', timeout: '0s' })).toMatch(/more than 0/);
    expect(usage({ redis: 'redis://h' }, ['/a', '/b'])).toMatch(/at most one URL/);
  });

  it('prints one line per edge: applied, failed, missing with why', () => {
    const text = formatPurgeReport(
      {
        id: 'abc',
        applied: [{ edge: 'edge-a', removed: 1, ms: 2.345, applyMs: 0.1 }],
        failed: [{ edge: 'edge-b', error: 'closed', ms: 3 }],
        missing: ['edge-c', 'edge-old'],
        stale: [{ edge: 'edge-old', lastSeen: 40_000 }],
        registered: 4,
      },
      { kind: 'url', value: '/a', soft: false },
      'streams:cdn:purge',
      5000,
      100_000,
    );
    expect(text).toBe(
      [
        'purge url /a (hard) on streams:cdn:purge: applied by 1 of 4 edges (id abc)',
        'applied  edge-a    1 object  2.3 ms',
        'failed   edge-b    closed',
        'missing  edge-c    no acknowledgement within 5000 ms',
        'missing  edge-old  down: last heartbeat 60 s ago',
        '',
      ].join('\n'),
    );
  });
});

describe('the purge endpoint body', () => {
  it('reads url, prefix or tag with soft and timeout', () => {
    expect(parsePurgeBody('{"url":"/a"}')).toEqual({ selector: { kind: 'url', value: '/a', soft: false }, timeoutMs: 5000 });
    expect(parsePurgeBody({ tag: 't', soft: true, timeout: '2s' })).toEqual({ selector: { kind: 'tag', value: 't', soft: true }, timeoutMs: 2000 });
  });

  it.each([
    ['text that is not JSON', '{', /not JSON/],
    ['no selector', {}, /exactly one of `url`, `prefix` or `tag`/],
    ['two selectors', { url: '/a', tag: 't' }, /got url, tag/],
    ['an unknown field', { url: '/a', everything: true }, /everything/],
    ['a string soft', { url: '/a', soft: 'yes' }, /`soft`/],
    ['a bad timeout', { url: '/a', timeout: 'soon' }, /`timeout`/],
    ['a timeout too long', { url: '/a', timeout: '2h' }, /at most 60000 ms/],
  ])('answers 400 to %s, before touching the bus', async (_name, body, message) => {
    // No server behind this URL: a 400 must come without trying to connect.
    const answer = await handlePurgeRequest(body, { redis: 'redis://127.0.0.1:1', channel: 'c' });
    expect(answer.status).toBe(400);
    expect((answer.json.error as { message: string }).message).toMatch(message);
  });
});
