import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../../graph/check.ts';
import type { OperatorSpec } from '../../../graph/operator-spec.ts';
import { z } from '../../../graph/settings.ts';
import { settingsSchema } from '../../../cli/docs.ts';
import { describeSettings } from '../../../cli/settings-doc.ts';
import { accessSettingsSchema } from '../../../nodes/cdn/access/settings.ts';
import { registry } from '../../../nodes/all.ts';

/** An operator with an `access:` setting, as the cache has, to check the schema the way pipelines use it. */
const guarded: OperatorSpec<any> = {
  name: 'guarded.test',
  summary: 'An operator with an access setting, for tests.',
  doc: 'The test operator `guarded.test`.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'Nothing.' } },
  settings: z.object({ access: accessSettingsSchema.prefault({}) }),
};
const withGuarded = new Map([...registry, [guarded.name, guarded]]);

function check(access: string, env: Record<string, string> = {}) {
  const text = `streams: 1\nname: edge\nnodes:\n  edge:\n    op: guarded.test\n    with:\n      access:\n${access}\n  out: { op: stdout, in: edge }\n`;
  return checkPipeline({ file: 'edge.yaml', text, registry: withGuarded, env });
}

describe('the access setting in a pipeline', () => {
  it('takes the key from ${env:...} and marks it as a secret to redact', () => {
    const result = check("        signed: ['/private/']\n        sign_key: ${env:CDN_SIGN_KEY}", { CDN_SIGN_KEY: 'a-key-from-the-environment' });
    expect(result.diagnostics).toEqual([]);
    const node = result.graph!.nodes.get('edge')!;
    expect((node.settings as { access: { sign_key: string } }).access.sign_key).toBe('a-key-from-the-environment');
    expect(node.envSettings).toEqual([['access', 'sign_key']]);
  });

  it('reports a bad CIDR and a missing key at their lines, without the key\'s value', () => {
    const result = check("        signed: ['/private/']\n        ip:\n          deny: ['10.0.0.0/8', '10.1.0.0/8']");
    const shown = result.diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
    expect(shown).toContain('10:32: setting `access.ip.deny.1` of `guarded.test`: `10.1.0.0/8` has bits set past its /8 prefix (did you mean `10.0.0.0/8`?)');
    expect(shown.some((line) => line.includes('`signed` paths need a `sign_key`'))).toBe(true);
    const short = check("        signed: ['/private/']\n        sign_key: ${env:CDN_SIGN_KEY}", { CDN_SIGN_KEY: 'short-secret' });
    expect(short.diagnostics.map((d) => d.message).join('\n')).toMatch(/signing key is too short/);
    expect(JSON.stringify(short.diagnostics)).not.toContain('short-secret');
  });

  it('says when the key\'s variable is not set', () => {
    const result = check("        signed: ['/private/']\n        sign_key: ${env:CDN_SIGN_KEY}");
    expect(result.diagnostics.map((d) => d.message)).toContain('environment variable `CDN_SIGN_KEY` is not set');
  });

  it('renders as JSON Schema for editors and as rows for the operator docs', () => {
    const { schema, definitions } = settingsSchema(guarded);
    const text = JSON.stringify({ schema, definitions });
    expect(text).toContain('max_connections_per_client');
    expect(text).toContain('HMAC-SHA256');
    const rows = describeSettings(guarded.settings).map((row) => row.name);
    expect(rows).toEqual(expect.arrayContaining(['access', 'access.signed', 'access.sign_key', 'access.ip.deny', 'access.rate_limit.rate', 'access.geo.table']));
  });
});
