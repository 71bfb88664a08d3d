import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputFile, withFolderMemo } from '../../runtime/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'ami-paths-'));
mkdirSync(join(dir, 'folder', 'inner'), { recursive: true });
writeFileSync(join(dir, 'plain'), 'x');
writeFileSync(join(dir, 'folder', 'existing.ndjson'), '');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Outputs and what `checkOutputFile` says of each (undefined: writable). */
const cases: [string, string | undefined][] = [
  ['folder/new.ndjson', undefined],
  ['folder/existing.ndjson', undefined],
  ['missing/deeper/out.ndjson', undefined],
  ['folder/missing/out.ndjson', undefined],
  ['folder/inner', 'is a folder, not a file'],
  ['folder', 'is a folder, not a file'],
  ['plain/out.ndjson', `cannot be created: \`${join(dir, 'plain')}\` is a file, not a folder`],
  ['plain/deeper/out.ndjson', `cannot be created: \`${join(dir, 'plain')}\` is a file, not a folder`],
];

describe('checkOutputFile', () => {
  it.each(cases)('says of %s: %s', (path, problem) => {
    const found = checkOutputFile('path', join(dir, path));
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toEqual({ setting: 'path', message: `output \`${join(dir, path)}\` ${problem}` });
  });

  it('answers the same when the folders are looked at once in a pass, in any order', () => {
    const alone = cases.map(([path]) => checkOutputFile('path', join(dir, path)));
    const forwards = withFolderMemo(() => cases.map(([path]) => checkOutputFile('path', join(dir, path))));
    const backwards = withFolderMemo(() => [...cases].reverse().map(([path]) => checkOutputFile('path', join(dir, path)))).reverse();
    expect(forwards).toEqual(alone);
    expect(backwards).toEqual(alone);
  });

  it('forgets the folders after the pass: a folder made later is seen', () => {
    const output = join(dir, 'later', 'out.ndjson');
    withFolderMemo(() => expect(checkOutputFile('path', output)).toBeUndefined());
    writeFileSync(join(dir, 'later'), 'now a file');
    expect(checkOutputFile('path', output)?.message).toContain('is a file, not a folder');
  });
});
