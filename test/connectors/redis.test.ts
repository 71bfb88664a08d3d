/**
 * The Redis operators without a server: settings checks located in a
 * pipeline, and the mapping between records and stream entries (the
 * definitions' docs and examples are checked for every operator in
 * test/registry.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { registry } from '../../nodes/all.ts';
import redisStream from '../../nodes/messaging/redis-stream.ts';
import redisSubscribe from '../../nodes/messaging/redis-subscribe.ts';
import redisWrite from '../../nodes/messaging/redis-write.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { entryArgs, entryRecord, fieldText, valueOf } from '../../nodes/messaging/redis/entries.ts';
import type { OperatorDefinition } from '../../runtime/api.ts';

const operators: OperatorDefinition[] = [redisStream, redisWrite, redisSubscribe];
const withRedis = new Map<string, OperatorDefinition>([...registry, ...operators.map((op) => [op.name, op] as const)]);

function diagnostics(yaml: string): string[] {
  return checkPipeline({ file: 'p.yaml', text: yaml, registry: withRedis, env: {} }).diagnostics.map(formatDiagnostic);
}

describe('redis settings', () => {
  it('parses durations and applies defaults', () => {
    const parsed = redisStream.settings.parse({ stream: ['a', 'b'], group: 'g', claim_idle: '30s' });
    expect(parsed).toMatchObject({ url: 'redis://127.0.0.1:6379', stream: ['a', 'b'], from: 'latest', format: 'fields', id_field: '_id', stream_field: '_stream', batch_size: 500, claim_idle: 30_000 });
    expect(redisStream.settings.parse({ stream: 's', group: 'g' }).claim_idle).toBe(60_000);
  });

  it('reports `key` and `key_expr` given together, at the setting', () => {
    expect(
      diagnostics(`streams: 1
name: p
nodes:
  src:
    op: generate
    with: { count: 1 }
  out:
    op: redis.write
    in: src
    with: { command: set, key: a, key_expr: '"b"', maxlen: 5 }
`),
    ).toEqual([
      expect.stringMatching(/^p\.yaml:10:\d+: error: .*give exactly one of `key` \(a fixed key\) and `key_expr`/),
      expect.stringMatching(/^p\.yaml:10:\d+: error: .*`maxlen` applies only to `command: xadd`/),
    ]);
  });

  it('refuses a subscription with neither channels nor patterns', () => {
    const result = redisSubscribe.settings.safeParse({});
    expect(result.success).toBe(false);
    expect(result.error!.issues[0].message).toContain('give at least one of `channels` and `patterns`');
  });

  it('types redis.subscribe output as Bytes, or events with `format: json`', () => {
    const yaml = (format: string) => `streams: 1
name: p
nodes:
  sub:
    op: redis.subscribe
    with: { channels: [a], format: ${format} }
  parse:
    op: decode.json
    in: sub
  out:
    op: stdout
    in: parse
`;
    expect(diagnostics(yaml('bytes'))).toEqual([]);
    expect(diagnostics(yaml('json'))).toEqual([expect.stringContaining('p.yaml:9:')]);
  });
});

describe('records and stream entries', () => {
  it('writes each field as text, lists and maps as JSON', () => {
    expect(entryArgs({ a: 'x', n: 1.5, ok: true, tags: ['t'], nested: { k: 1 }, gone: undefined, none: null }, 'fields', 'data')).toEqual([
      'a', 'x', 'n', '1.5', 'ok', 'true', 'tags', '["t"]', 'nested', '{"k":1}', 'none', '',
    ]);
  });

  it('writes the whole record as JSON in one field with `json`, and Bytes as they are', () => {
    expect(entryArgs({ a: 1 }, 'json', 'payload')).toEqual(['payload', '{"a":1}']);
    const data = Buffer.from([1, 2]);
    expect(entryArgs({ data }, 'fields', 'body')).toEqual(['body', data]);
    expect(entryArgs({ text: 'hi' }, 'json', 'body')).toEqual(['body', 'hi']);
  });

  it('refuses a record with no field', () => {
    expect(() => entryArgs({}, 'fields', 'data')).toThrow(/at least one field/);
  });

  it('reads entries back as records', () => {
    expect(entryRecord(['a', '1', 'b', 'x'], 'fields', 'data')).toEqual({ a: '1', b: 'x' });
    expect(entryRecord(['meta', 'm', 'data', '{"v":2}'], 'json', 'data')).toEqual({ v: 2 });
    expect(() => entryRecord(['other', '{}'], 'json', 'data')).toThrow(/no field `data`/);
    expect(() => entryRecord(['data', '[1]'], 'json', 'data')).toThrow(/not an object/);
    expect(() => entryRecord(['data', 'nope'], 'json', 'data')).toThrow();
  });

  it('turns CEL integers and dates into text', () => {
    expect(fieldText(7n)).toBe('7');
    expect(fieldText(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(valueOf({ a: 1n })).toBe('{"a":1}');
  });
});

describe('redactUrl', () => {
  it.each([
    ['redis://:secret@host:6379/0', 'redis://:***@host:6379/0'],
    ['redis://user:secret@host:6379', 'redis://user:***@host:6379'],
    ['redis://host:6379', 'redis://host:6379'],
    ['not a url //user:secret@host', 'not a url //***@host'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});
