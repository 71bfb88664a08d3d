import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedFiles } from '../../cli/docs.ts';

const root = join(import.meta.dirname, '..', '..');

function read(path: string): string | undefined {
  const file = join(root, path);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

describe('generated files', () => {
  for (const file of generatedFiles()) {
    it(`${file.path} matches what the generator produces from the registry`, () => {
      expect(read(file.path), 'stale docs: run `npm run docs`').toBe(file.text);
    });
  }

  it('are the same on every run, ending in a newline', () => {
    const again = generatedFiles();
    for (const [i, file] of generatedFiles().entries()) {
      expect(again[i].text).toBe(file.text);
      expect(file.text.endsWith('\n')).toBe(true);
    }
  });
});
