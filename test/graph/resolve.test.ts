/**
 * `${env:NAME:-default}`: a default for a variable that is unset or empty,
 * as in the shell; `${params.NAME}` takes its defaults from `params:`.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { registry } from '../../nodes/all.ts';

const text = `streams: 1
name: defaults
params: { seed: 5 }
nodes:
  gen:
    op: generate
    with: { count: "\${env:COUNT:-3}", seed: "\${params.seed}", fields: { tag: '"\${env:TAG:-a b}-\${env:EMPTY:-}"' } }
  out:
    op: stdout
    in: gen
`;

function settingsWith(env: Record<string, string>) {
  const result = checkPipeline({ file: 'p.yaml', text, registry, env });
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  return result.graph!.nodes.get('gen')!.rawSettings;
}

describe('environment defaults', () => {
  it('uses the default of an unset variable, a whole-value number staying a number', () => {
    expect(settingsWith({})).toEqual({ count: 3, seed: 5, fields: { tag: '"a b-"' } });
  });

  it('prefers the environment when the variable is set', () => {
    expect(settingsWith({ COUNT: '7', TAG: 'x' })).toEqual({ count: 7, seed: 5, fields: { tag: '"x-"' } });
  });

  it('uses the default of a variable set but empty, as the shell does', () => {
    expect(settingsWith({ COUNT: '' })).toEqual({ count: 3, seed: 5, fields: { tag: '"a b-"' } });
  });

  it('still reports a variable without a default, located inside the string', () => {
    const result = checkPipeline({ file: 'p.yaml', text: text.replace('${env:COUNT:-3}', '${env:COUNT}'), registry, env: {} });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:7:21: error: environment variable `COUNT` is not set (export COUNT=...)']);
  });
});

describe('references inside parameter defaults', () => {
  const withSecret = `streams: 1
name: secret-in-param
params:
  url: "postgres://app:\${env:PG_PASSWORD}@db/app"
nodes:
  gen:
    op: generate
    with: { count: 1, fields: { url: '"\${params.url}"' } }
  out:
    op: stdout
    in: gen
`;

  it('substitutes the environment into a default before a node reads it', () => {
    const result = checkPipeline({ file: 'p.yaml', text: withSecret, registry, env: { PG_PASSWORD: 'pw' } });
    expect(result.diagnostics).toEqual([]);
    expect(result.graph!.params.url).toBe('postgres://app:pw@db/app');
    expect(result.graph!.nodes.get('gen')!.rawSettings).toMatchObject({ fields: { url: '"postgres://app:pw@db/app"' } });
  });

  it('reports an unset variable in a default where the default is written', () => {
    const result = checkPipeline({ file: 'p.yaml', text: withSecret, registry, env: {} });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:4:24: error: environment variable `PG_PASSWORD` is not set (export PG_PASSWORD=...)']);
  });

  it('does not read a default the command line replaces', () => {
    const result = checkPipeline({ file: 'p.yaml', text: withSecret, registry, env: {}, params: { url: 'postgres://db/app' } });
    expect(result.diagnostics).toEqual([]);
  });
});

describe('a file without references', () => {
  it('resolves a reference spelt with an escape (`\\x24{`), and leaves text with a lone `$` or `{` as written', () => {
    const escaped = `streams: 1
name: escaped
params: { n: 4 }
nodes:
  gen:
    op: generate
    with: { count: "\\x24{params.n}", fields: { tag: '"$" + "{"' } }
  out:
    op: stdout
    in: gen
`;
    const result = checkPipeline({ file: 'p.yaml', text: escaped, registry, env: {} });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
    expect(result.graph!.nodes.get('gen')!.rawSettings).toEqual({ count: 4, fields: { tag: '"$" + "{"' } });
  });
});
