/**
 * The node-level fields and `hosts:` come from one schema
 * (`graph/node-fields.ts`): the checker, the editor schema and the docs
 * read the same choices, and diagnostics carry the name they suggest.
 */
import { describe, expect, it } from 'vitest';
import { pipelineSchema, operatorsMarkdown } from '../../cli/docs.ts';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { onErrorActions, whenFullPolicies } from '../../graph/node-fields.ts';
import { registry } from '../../nodes/all.ts';

function check(text: string) {
  return checkPipeline({ file: 'p.yaml', text, registry, env: {} });
}

const twoNodes = (fields: string) => `streams: 1
name: fields
nodes:
  gen:
    op: generate
    with: { count: 1 }
  out:
    op: stdout
    in: gen
${fields}`;

describe('node fields from one schema', () => {
  it('gives the editor schema the same `when_full` and `on_error` choices the checker accepts', () => {
    const node = (pipelineSchema(registry).definitions as Record<string, { properties: Record<string, { anyOf?: { enum?: string[] }[] }> }>).node;
    expect(node.properties.when_full.anyOf?.[0].enum).toEqual([...whenFullPolicies]);
    expect(node.properties.on_error.anyOf?.[0].enum).toEqual([...onErrorActions]);
  });

  it('documents every node field in docs/operators.md', () => {
    const text = operatorsMarkdown(registry);
    for (const field of ['place', 'parallelism', 'on_error', 'capacity', 'capacity_bytes', 'when_full']) expect(text).toContain(`| \`${field}\` |`);
  });

  it('accepts every choice of `when_full` and keeps it on the node', () => {
    for (const policy of whenFullPolicies) {
      const result = check(twoNodes(`    when_full: ${policy}\n    capacity_bytes: 1KiB`));
      expect(result.diagnostics).toEqual([]);
      expect(result.graph!.nodes.get('out')!.channel).toEqual({ whenFull: policy, capacityBytes: 1024 });
    }
  });

  it('carries the suggested name as data, and words the hint once', () => {
    const [diagnostic] = check(twoNodes('    when_full: drop_olds')).diagnostics;
    expect(diagnostic).toMatchObject({ code: 'bad_field', suggestion: 'drop_oldest', hint: 'did you mean `drop_oldest`?' });
    const [unknown] = check(twoNodes('    on_eror: drop')).diagnostics;
    expect(unknown).toMatchObject({ code: 'unknown_field', suggestion: 'on_error' });
  });

  it('checks a host field by its schema: a role must be a string', () => {
    const text = `streams: 1
name: hosts
hosts:
  box: { role: 5, offers: [ffmpeg, gpuu] }
nodes:
  gen:
    op: generate
`;
    expect(check(text).diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:4:16: error: `role` of host `box` must be a string, found `5`',
      'p.yaml:4:36: error: unknown capability `gpuu` (did you mean `gpu`?)',
      'p.yaml:6:3: warning: the output of node `gen` (`generate`) is not used (connect it or remove the node)',
    ]);
  });

  it('checks `place` fields by their schema, naming the node', () => {
    const result = check(twoNodes('    place: { role: [a], labels: [x] }'));
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:10:20: error: `role` in `place` of node `out` must be a string, found a list',
      'p.yaml:10:33: error: `labels` in `place` of node `out` must be a map of label names to values, found a list',
    ]);
  });

  it('refuses a zero or malformed `capacity_bytes` as a size', () => {
    expect(check(twoNodes('    capacity_bytes: 0')).diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:10:21: error: `capacity_bytes` of node `out`: must be more than 0']);
  });
});
