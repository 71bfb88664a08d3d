/**
 * The shipped examples validate in a fresh clone: with no environment but
 * their secrets, and without those, fail only with the located "missing
 * variable" error naming a secret.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { registry } from '../../nodes/all.ts';

const folder = new URL('../../pipelines/', import.meta.url);
const examples = readdirSync(folder).filter((name) => name.endsWith('.yaml') && !name.endsWith('.test.yaml')).sort();
const secret = /PASSWORD|TOKEN|SECRET|KEY/;

describe('shipped examples and the environment', () => {
  it.each(examples)('%s needs no variable but its secrets', (name) => {
    const text = readFileSync(new URL(name, folder), 'utf8');
    const file = `pipelines/${name}`;
    const bare = checkPipeline({ file, text, registry, env: {} });
    for (const d of bare.diagnostics) {
      expect(d.code, `${d.line}:${d.col}: ${d.message}`).toBe('missing_variable');
      expect(d.message).toMatch(secret);
    }
    // Every variable without a default named in the file, given a stand-in value: none but secrets, as checked above.
    const secrets = Object.fromEntries([...text.matchAll(/\$\{env:(\w+)\}/g)].map((m) => [m[1], 'stand-in-secret-0123456789abcdef']));
    expect(Object.keys(secrets).every((name) => secret.test(name))).toBe(true);
    const withSecrets = checkPipeline({ file, text, registry, env: secrets });
    expect(withSecrets.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});
