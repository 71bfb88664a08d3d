import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { registry } from '../../nodes/all.ts';
import { isSecretKey, redactSettings, redactValue, redacted } from '../../runtime/server/redaction.ts';
import { planOf } from '../../runtime/server/protocol.ts';

describe('redaction of secrets', () => {
  it.each(['password', 'token', 'secret', 'key', 'authorization', 'api_token', 'apiKey', 'client-secret', 'stream_key', 'X-Authorization', 'passphrase', 'DB_PASSWORD'])('treats `%s` as a secret', (key) => {
    expect(isSecretKey(key)).toBe(true);
  });

  it.each(['keyframe', 'monkey', 'tokens', 'device', 'value', 'topic', 'url'])('leaves `%s` shown', (key) => {
    expect(isSecretKey(key)).toBe(false);
  });

  it('hides secret-named values at any depth, in lists too, and cuts long strings', () => {
    const shown = redactValue({ user: 'ann', auth: { password: 'p' }, list: [{ api_token: 't', ok: 1 }], deep: { a: { b: { secret: { nested: 'x' } } } }, long: 'x'.repeat(50) }, { maxString: 10 });
    expect(shown).toEqual({ user: 'ann', auth: redacted, list: [{ api_token: redacted, ok: 1 }], deep: { a: { b: { secret: redacted } } }, long: `${'x'.repeat(10)}… (50 chars)` });
    expect(JSON.stringify(shown)).not.toContain('"p"');
  });

  it('shows binary data as its size, not its bytes', () => {
    expect(redactValue({ body: Buffer.from('hello') })).toEqual({ body: '[5 bytes]' });
  });

  it('hides every value that came from ${env:...}, whatever its key, and nothing else', () => {
    const text = [
      'streams: 1',
      'name: env',
      'nodes:',
      '  gen:',
      '    op: generate',
      '    with:',
      '      count: 1',
      '      fields: { device: "${env:DEVICE_EXPR}", value: "1.0", host: "\\"${env:HOSTNAME_PART}-x\\"" }',
      '  out: { op: stdout, in: gen }',
    ].join('\n');
    const checked = checkPipeline({ file: 'env.yaml', text, registry, env: { DEVICE_EXPR: '"sekrit"', HOSTNAME_PART: 'inner' } });
    expect(checked.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const gen = checked.graph!.nodes.get('gen')!;
    expect(gen.envSettings).toEqual([['fields', 'device'], ['fields', 'host']]);
    const plan = planOf(checked.graph!, 0);
    const settings = plan.nodes.find((n) => n.id === 'gen')!.settings;
    expect(settings).toEqual({ count: 1, fields: { device: redacted, value: '1.0', host: redacted } });
    expect(JSON.stringify(plan)).not.toMatch(/sekrit|inner/);
  });

  it('replaces the whole settings when a path is empty', () => {
    expect(redactSettings({ a: 1 }, [[]])).toBe(redacted);
  });
});
