import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeSettings, exampleSettings, renderOperator } from '../cli/ops.ts';
import { operators, registry } from '../nodes/all.ts';
import type { OperatorDefinition } from '../runtime/api.ts';

const nodesDir = join(import.meta.dirname, '..', 'nodes');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** What `defineOperator` returns: a definition with a name, a settings schema and `create`. */
function isDefinition(value: unknown): value is OperatorDefinition {
  const candidate = value as Partial<OperatorDefinition> | undefined;
  return typeof candidate?.name === 'string' && typeof candidate.create === 'function' && typeof candidate.settings?.safeParse === 'function';
}

/**
 * Every operator file under `nodes/`, by its default export. Helper modules
 * (`nodes/events/windowing/`, ...) export no definition and are left out.
 */
async function definitionFiles(): Promise<Map<OperatorDefinition, string>> {
  const found = new Map<OperatorDefinition, string>();
  for (const file of sourceFiles(nodesDir)) {
    if (file === join(nodesDir, 'registry.ts')) continue;
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    if (isDefinition(module.default)) found.set(module.default, relative(nodesDir, file));
  }
  return found;
}

describe('the operator registry', () => {
  it('lists every operator file under nodes/, and every entry comes from one', async () => {
    const files = await definitionFiles();
    const unregistered = [...files].filter(([definition]) => registry.get(definition.name) !== definition).map(([, file]) => `nodes/${file}`);
    expect(unregistered, 'operator files missing from nodes/all.ts').toEqual([]);
    const orphans = operators.filter((definition) => !files.has(definition)).map((definition) => definition.name);
    expect(orphans, 'registry entries with no default export under nodes/').toEqual([]);
  });

  it('has no two operators of the same name', () => {
    expect(registry.size).toBe(operators.length);
  });

  describe.each(operators.map((op) => [op.name, op] as const))('%s', (name, op) => {
    it('is named `family.verb`, `family.noun` or one word, in lower case', () => {
      expect(name).toMatch(/^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)?$/);
    });

    it('has a one-line summary and a doc of at least one sentence', () => {
      expect(op.summary.trim()).not.toBe('');
      expect(op.summary).not.toContain('\n');
      expect(op.doc.trim()).toMatch(/^[A-Z`].{10,}[.!?]$/s);
    });

    it('documents every port', () => {
      for (const port of [...Object.values(op.inputs), ...Object.values(op.outputs)]) expect(port.doc.trim()).not.toBe('');
    });

    it('describes every setting', () => {
      for (const setting of describeSettings(op.settings)) {
        expect(setting.description?.trim(), `setting \`${setting.name}\` has no description`).toBeTruthy();
      }
    });

    it('has an example `with:` block its own settings schema accepts', () => {
      const example = exampleSettings(op);
      const required = describeSettings(op.settings).some((s) => s.required);
      if (required) expect(example, 'an operator with required settings needs an `example` (or examples on them)').toBeDefined();
      const result = op.settings.safeParse(example ?? {});
      expect(result.success, result.success ? '' : result.error.message).toBe(true);
    });

    it('mentions every setting in `streams ops NAME`', () => {
      const text = renderOperator(op);
      for (const setting of describeSettings(op.settings)) expect(text).toContain(`${setting.name}:`);
      expect(text).toContain('dlq');
    });
  });
});
