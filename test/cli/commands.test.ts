import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEnvFiles } from '../../cli/env-file.ts';
import { readTextFile } from '../../cli/text-file.ts';

function streams(args: string[], env: NodeJS.ProcessEnv = process.env): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'streams-commands-'));
const binary = join(dir, 'image.yaml');
writeFileSync(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x1b, 0x5b, 0x32, 0x4a]));
const latin1 = join(dir, 'latin1.yaml');
writeFileSync(latin1, Buffer.from('name: caf\xe9\n', 'latin1'));
const folder = join(dir, 'folder.yaml');
mkdirSync(folder);
const secret = join(dir, 'secret.yaml');
writeFileSync(secret, 'streams: 1\nname: secret\nnodes:\n  src: { op: generate, with: { count: 1, fields: { token: \'"${env:CLI_TEST_TOKEN}"\' } } }\n  out: { op: stdout, in: src }\n');
const envFile = join(dir, 'test.env');
writeFileSync(envFile, '# a secret for the test\nCLI_TEST_TOKEN="s3cr3t value"\n');

describe('streams validate with several files', () => {
  it('reports every file even when one is unreadable, and exits 2 when any is', () => {
    const result = streams(['validate', join(dir, 'missing.yaml'), folder, binary, 'pipelines/demo.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot read `.*missing\.yaml`: no such file/);
    expect(result.stderr).toMatch(/cannot read `.*folder\.yaml`: is a directory/);
    expect(result.stderr).toMatch(/cannot read `.*image\.yaml`: is not a text file/);
    expect(result.stdout).toContain('pipelines/demo.yaml: ok');
    // The binary's bytes (an escape sequence among them) never reach the terminal.
    expect(result.stderr).not.toContain('\x1b');
    expect(result.stderr).not.toContain('PNG');
  });

  it('exits 1 when every file is readable and one is invalid, still reporting the valid ones', () => {
    const env = { ...process.env };
    delete env.CLI_TEST_TOKEN;
    const result = streams(['validate', secret, 'pipelines/demo.yaml'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('environment variable `CLI_TEST_TOKEN` is not set');
    expect(result.stdout).toContain('pipelines/demo.yaml: ok');
  });
});

describe('readTextFile', () => {
  it('refuses NUL bytes and invalid UTF-8 as not text, naming the file', () => {
    expect(() => readTextFile(binary)).toThrow(/image\.yaml`: is not a text file \(it holds NUL bytes\)/);
    expect(() => readTextFile(latin1)).toThrow(/latin1\.yaml`: is not a text file \(it is not valid UTF-8\)/);
    expect(readTextFile(envFile)).toContain('CLI_TEST_TOKEN');
  });
});

describe('--env-file', () => {
  it('feeds `${env:NAME}` from a dotenv file without printing the value', () => {
    const env = { ...process.env };
    delete env.CLI_TEST_TOKEN;
    const without = streams(['validate', secret], env);
    expect(without.code).toBe(1);
    const valid = streams(['validate', '--env-file', envFile, secret], env);
    expect(valid.stderr).toBe('');
    expect(valid.code).toBe(0);
    const run = streams(['run', '--env-file', envFile, '--log-level', 'silent', secret], env);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ token: 's3cr3t value' });
    expect(run.stderr).not.toContain('s3cr3t');
  });

  it('parses comments and quotes, a later file overrides an earlier one, and the environment wins over both', () => {
    const second = join(dir, 'second.env');
    writeFileSync(second, "B='two # not a comment'\nC=from-file\n");
    const first = join(dir, 'first.env');
    writeFileSync(first, '# comment\nA=one\nB=overridden\n');
    const env: NodeJS.ProcessEnv = { C: 'from-environment' };
    expect(loadEnvFiles([first, second], env).sort()).toEqual(['A', 'B']);
    expect(env).toEqual({ A: 'one', B: 'two # not a comment', C: 'from-environment' });
  });

  it('names an env file it cannot read and fails', () => {
    expect(() => loadEnvFiles([join(dir, 'nope.env')], {})).toThrow(/cannot read `.*nope\.env`: no such file/);
    // Node itself looks for `--env-file` among a script's arguments and
    // stops on a missing file (nodejs/node#54232) before the CLI runs.
    const result = streams(['validate', '--env-file', join(dir, 'nope.env'), 'pipelines/demo.yaml']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/nope\.env.*(not found|no such file)/);
  });
});

describe('streams test', () => {
  it('given a pipeline file, says so and points at the test file and the commands that take it', () => {
    const result = streams(['test', 'pipelines/demo.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('`pipelines/demo.yaml` is a pipeline file; `streams test` takes test files (streams_test: 1) such as `pipelines/demo.test.yaml`');
    expect(result.stderr).toContain('`streams run pipelines/demo.yaml`');
    expect(result.stderr).toContain('`streams validate pipelines/demo.yaml`');
  });
});

describe('--help', () => {
  it('lists every option of every command with what it does', () => {
    for (const command of ['validate', 'ops', 'graph', 'plan', 'run', 'test']) {
      const help = streams([command, '--help']);
      expect(help.code).toBe(0);
      const options = help.stdout.slice(help.stdout.indexOf('Options:\n') + 9).trimEnd().split('\n');
      expect(options.length).toBeGreaterThan(0);
      // Each row: the option, then at least two spaces, then words saying what it does.
      for (const row of options) expect(row, `${command}: ${row}`).toMatch(/^\s+(-\w, )?--[\w-]+( \S+)?\s{2,}[a-z`].{8,}/);
    }
    expect(streams(['run', '--help']).stdout).toMatch(/--env-file FILE\s+read variables for `\$\{env:NAME\}`/);
  });
});

describe('bin/streams.js, the file npm links', () => {
  it('runs the TypeScript sources in a checkout', () => {
    const result = spawnSync(process.execPath, ['bin/streams.js', 'validate', 'pipelines/demo.yaml'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('pipelines/demo.yaml: ok');
  });
});

describe('a closed stdout', () => {
  it('ends `streams run` quietly when the reader goes away (`| head`)', () => {
    const result = spawnSync('sh', ['-c', `"${process.execPath}" bin/streams.ts run pipelines/demo.yaml --log-level warn | head -n 1`], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toBe('');
  });
});
